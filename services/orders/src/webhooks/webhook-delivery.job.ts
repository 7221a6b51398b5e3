import type { FieldEncryption } from '@keel/platform/crypto';
import type { Db } from '@keel/platform/db';
import { assertNever } from '@keel/platform/errors';
import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { Clock } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import { createResilience, isBrokenCircuit, type Resilience } from '@keel/platform/resilience';
import { webhookDeliveryFailed, webhookDeliveryNotFound, webhookDeliveryRejected } from './webhook.errors.ts';
import { findDeliveryToSend, updateDeliveryAttempt, type WebhooksSchema } from './webhook.repository.ts';
import { webhookSecretAad } from './webhook.service.ts';
import {
  judgeResponseStatus,
  WEBHOOK_RETRY_LIMIT,
  WEBHOOK_TIMEOUT_MS,
  type WebhookAttemptError,
  type WebhookDeliveryStatus,
} from './webhook.ts';
import { signWebhook } from './webhook-signature.ts';

export const WEBHOOK_DELIVERY_QUEUE = 'orders.webhook-delivery';

export type WebhookDeliveryJob = { deliveryId: string };

export type WebhookDeliveryDeps = {
  db: Db<WebhooksSchema>;
  clock: Clock;
  encryption: FieldEncryption;
  fetch: typeof fetch;
  logger: Logger;
  /** Per attempt; `WEBHOOK_TIMEOUT_MS` unless a test shortens it. */
  timeoutMs?: number;
};

type AttemptOutcome =
  | { verdict: 'delivered'; statusCode: number }
  | { verdict: 'retryable' | 'permanent'; statusCode: number | null; error: WebhookAttemptError };

/** Thrown inside the breaker so that it counts the receiver's temporary failures, and only those. */
class RetryableAttempt extends Error {
  readonly outcome: AttemptOutcome;
  constructor(outcome: AttemptOutcome) {
    super(outcome.verdict === 'delivered' ? 'delivered' : outcome.error);
    this.outcome = outcome;
  }
}

/**
 * The `orders.webhook-delivery` queue: one job per (event, endpoint). Each
 * run POSTs the stored body, signed afresh (the timestamp is the attempt's),
 * and records the attempt on the delivery row. A 2xx is delivered; a
 * permanent refusal marks the row dead and dead-letters the job at once
 * (`invalid`); a temporary failure is retried by pg-boss with backoff
 * (`unavailable`), and marks the row dead when it was the last retry.
 * Replaying the dead letter (`/admin/jobs/orders.webhook-delivery/dead-letters`)
 * tries a dead delivery again.
 *
 * A breaker per endpoint stops a dead receiver from taking a connection and
 * a timeout from every job queued for it: after 5 temporary failures in a row
 * the endpoint's jobs fail fast for 30 s (still a used retry each), then one
 * probe goes through.
 */
export function createWebhookDeliveryQueue(
  deps: WebhookDeliveryDeps,
): JobQueueDefinition<WebhookDeliveryJob> {
  const breakers = new Map<string, Resilience>();
  const breakerOf = (endpointId: string): Resilience => {
    let breaker = breakers.get(endpointId);
    if (breaker === undefined) {
      breaker = createResilience({
        // pg-boss retries with backoff; the breaker only decides whether to try at all.
        maxAttempts: 1,
        budgetMs: 0,
        initialDelayMs: 1,
        maxDelayMs: 1,
        breakerThreshold: 5,
        halfOpenAfterMs: 30_000,
        isTransient: () => false,
        isOutage: (error) => error instanceof RetryableAttempt,
        onStateChange: (state) =>
          deps.logger.warn({ endpointId, state }, 'webhook endpoint circuit changed state'),
      });
      breakers.set(endpointId, breaker);
    }
    return breaker;
  };

  async function post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<AttemptOutcome> {
    let response: Response;
    try {
      response = await deps.fetch(url, {
        method: 'POST',
        headers,
        body,
        // A redirect is judged like any other non-2xx: following one would let
        // the receiver point our signed request (and our network) elsewhere.
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(deps.timeoutMs ?? WEBHOOK_TIMEOUT_MS)]),
      });
    } catch (error) {
      const isTimeout = (error as { name?: unknown }).name === 'TimeoutError';
      throw new RetryableAttempt({
        verdict: 'retryable',
        statusCode: null,
        error: isTimeout ? 'orders.webhook_timeout' : 'orders.webhook_network_error',
      });
    }
    // The body is never read: it is the receiver's, and may be large.
    await response.body?.cancel().catch(() => undefined);
    const verdict = judgeResponseStatus(response.status);
    if (verdict === 'delivered') return { verdict, statusCode: response.status };
    if (verdict === 'retryable')
      throw new RetryableAttempt({
        verdict,
        statusCode: response.status,
        error: 'orders.webhook_server_error',
      });
    return { verdict, statusCode: response.status, error: 'orders.webhook_rejected' };
  }

  return {
    name: WEBHOOK_DELIVERY_QUEUE,
    retryLimit: WEBHOOK_RETRY_LIMIT,
    retryDelaySeconds: 5,
    retryBackoff: true,
    retryDelayMaxSeconds: 15 * 60,
    // One attempt is one bounded POST and two small writes.
    expireInSeconds: 60,
    deadLetter: true,
    concurrency: 4,
    // A worker runs its fetch one job after another and pg-boss times the fetch as a whole
    // against expireInSeconds: two bounded POSTs fit in it with room to spare.
    fetchSize: 2,
    handler: async (job) => {
      const { deliveryId } = job.data;
      const delivery = await deps.db.run((db) => findDeliveryToSend(db, deliveryId));
      if (delivery === undefined) throw webhookDeliveryNotFound(deliveryId);
      // Delivered or cancelled: a rerun has nothing to do. A dead delivery is
      // tried again: the only second job a delivery ever gets is an operator's
      // replay of its dead letter.
      if (delivery.status === 'delivered' || delivery.status === 'cancelled') return;
      const record = (
        status: WebhookDeliveryStatus,
        statusCode: number | null,
        error: WebhookAttemptError | null,
        isAttempt = true,
      ) =>
        deps.db.run((db) =>
          updateDeliveryAttempt(db, deliveryId, {
            status,
            statusCode,
            error,
            at: deps.clock.now(),
            isAttempt,
          }),
        );
      if (!delivery.isEndpointActive) {
        await record('cancelled', null, 'orders.webhook_endpoint_inactive', false);
        return;
      }
      const secret = deps.encryption.decrypt(delivery.secretEncrypted, webhookSecretAad(delivery.endpointId));
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'keel-orders-webhooks/1',
        ...signWebhook(secret, {
          id: delivery.eventId,
          timestamp: Math.floor(deps.clock.now().getTime() / 1000),
          body: delivery.body,
        }),
      };
      let outcome: AttemptOutcome;
      try {
        outcome = await breakerOf(delivery.endpointId).execute(() =>
          post(delivery.url, headers, delivery.body, job.signal),
        );
      } catch (error) {
        if (error instanceof RetryableAttempt) outcome = error.outcome;
        else if (isBrokenCircuit(error))
          outcome = { verdict: 'retryable', statusCode: null, error: 'orders.webhook_circuit_open' };
        else throw error;
      }
      switch (outcome.verdict) {
        case 'delivered':
          await record('delivered', outcome.statusCode, null);
          return;
        case 'permanent':
          await record('dead', outcome.statusCode, outcome.error);
          throw webhookDeliveryRejected(outcome.statusCode);
        case 'retryable': {
          const isLastAttempt = job.retryCount >= WEBHOOK_RETRY_LIMIT;
          await record(isLastAttempt ? 'dead' : 'pending', outcome.statusCode, outcome.error);
          throw webhookDeliveryFailed(outcome.error, outcome.statusCode);
        }
        default:
          return assertNever(outcome);
      }
    },
  };
}
