import { performance } from 'node:perf_hooks';
import type { EventEnvelope } from '@keel/contracts';
import type { Transaction } from 'kysely';
import type { Database } from '../db/database.ts';
import { assertNever, isAppError } from '../errors/index.ts';
import type { Clock } from '../module/service-module.ts';
import type { Logger } from '../observability/logger.ts';
import type { Registry } from '../observability/metrics.ts';
import { listenForNotifications, type NotificationListener } from './outbox.listener.ts';
import { createOutboxMetrics, type DeliveryOutcome, type OutboxMetrics } from './outbox.metrics.ts';
import {
  type ClaimedDelivery,
  claimDueDeliveries,
  createSavepoint,
  deleteInboxEntries,
  EVENTS_CHANNEL,
  MAX_DELIVERIES_PER_BATCH_CALL,
  MAX_DELIVERIES_PER_TRANSACTION,
  type OutboxTables,
  type RestoredDelivery,
  replaceSubscription,
  restoreDeliveries,
  rollbackToSavepoint,
} from './outbox.repository.ts';
import {
  listDeadLetters,
  replayDeadLetter,
  runBatchHandlerInSpan,
  runHandlerInSpan,
} from './outbox.service.ts';
import {
  classifyFailure,
  computeRetryDelayMs,
  DEFAULT_RETRY_POLICY,
  type DeadLetter,
  type EventPublisher,
  isSubscribedTo,
  type RetryPolicy,
  type Subscription,
  toPublisherSubscription,
  validateSubscriptions,
} from './outbox.ts';

export type EventBusOptions = {
  database: Database;
  logger: Logger;
  subscriptions: readonly Subscription[];
  /** Relays to another transport (see `EventPublisher`); delivered like ordered subscriptions. */
  publishers?: readonly EventPublisher[];
  /** How often an idle dispatcher looks for due deliveries when no notification woke it. */
  pollIntervalMs: number;
  /** Deliveries one `runOnce` handles at most. */
  batchSize: number;
  /** Decides when a retry is due; tests move it forward instead of waiting. */
  clock: Clock;
  /** Deliveries handled in parallel, each on its own pooled connection (default 4). */
  concurrency?: number;
  /** Default backoff for subscriptions without their own (1 s doubling up to 5 min). */
  retry?: RetryPolicy;
  /** Jitter source in [0, 1); tests pin it. */
  random?: () => number;
  /** Wake on LISTEN/NOTIFY instead of waiting for the next poll (default true). */
  isListening?: boolean;
};

export type EventBus = {
  /** Records this bus's subscriptions in the database; events emitted afterwards are fanned out to them. `start` and `runOnce` call it. */
  register(): Promise<void>;
  /** Registers, starts listening and dispatches in the background until `stop`. */
  start(): Promise<void>;
  /** Stops claiming, waits for handlers in flight to finish, closes the listener. */
  stop(): Promise<void>;
  /** Handles due deliveries until none is left or `batchSize` were attempted; returns how many were attempted. */
  runOnce(): Promise<number>;
  listDeadLetters(subscriber?: string): Promise<DeadLetter[]>;
  replayDeadLetter(subscriber: string, eventId: string): Promise<void>;
  registerMetrics(registry: Registry): void;
};

type Attempt =
  | { kind: 'delivered'; lagSeconds: number; handlerSeconds: number }
  | { kind: 'duplicate' }
  | { kind: 'unsubscribed' }
  | { kind: 'retrying' | 'dead'; error: unknown; errorCode: string; attempts: number; nextAttemptAt: Date };

type DeliveryAttempt = { event: EventEnvelope; position: string; attempt: Attempt };

/**
 * Undoes a fast-path batch to its savepoint when a handler failed: `failure`
 * names the delivery whose `handler` threw, undefined when a `handleBatch` did.
 */
class HandlerFailedInBatch extends Error {
  readonly failure: { position: string; error: unknown } | undefined;
  constructor(failure: { position: string; error: unknown } | undefined) {
    super('a handler failed in a batch run without savepoints');
    this.name = 'HandlerFailedInBatch';
    this.failure = failure;
  }
}

/**
 * Delivers committed outbox events to this process's subscriptions, at least
 * once, with an exactly-once effect. A worker claims a batch of one
 * subscriber's due deliveries (`FOR UPDATE SKIP LOCKED`, so any number of
 * dispatchers in any number of processes share the work and never run the
 * same delivery twice at once), records the events in the subscriber's inbox,
 * deletes the deliveries, runs the handlers and commits, all in one
 * transaction. When a handler fails, the batch runs again in that transaction
 * with each handler behind a savepoint: the failing one's work is rolled back
 * to it and, still under the claim's lock, its delivery is put back with the
 * attempt counted and the next one scheduled with exponential backoff, or it
 * is dead-lettered (permanent error, or `maxAttempts` reached). An emitter's
 * commit signals `keel_events` (see `CommitSignals`): a dispatcher of the same
 * process is woken in memory at once, one of another process by the NOTIFY
 * that follows; polling every `pollIntervalMs` is the fallback.
 *
 * @example
 * const bus = createEventBus({
 *   database, logger, clock: systemClock, pollIntervalMs: 1000, batchSize: 100,
 *   subscriptions: [{
 *     name: 'orders.analytics', eventTypes: ['orders.order_placed.v1'],
 *     isOrderedPerAggregate: true, maxAttempts: 10,
 *     handler: (event, trx) => projectOrderPlaced(trx, OrderPlacedV1.parse(event)),
 *   }],
 * });
 * await bus.start();
 * // on shutdown:
 * await bus.stop();
 */
export function createEventBus(options: EventBusOptions): EventBus {
  const subscriptions = [
    ...options.subscriptions,
    ...(options.publishers ?? []).map(toPublisherSubscription),
  ];
  validateSubscriptions(subscriptions);
  const { database, logger, clock } = options;
  const db = database.typed<OutboxTables>();
  const concurrency = options.concurrency ?? 4;
  const retry = options.retry ?? DEFAULT_RETRY_POLICY;
  const random = options.random ?? Math.random;
  let metrics: OutboxMetrics | undefined;

  let registration: Promise<void> | undefined;
  function register(): Promise<void> {
    registration ??= db
      .transaction(async (trx) => {
        for (const subscription of subscriptions) {
          await replaceSubscription(trx, subscription.name, subscription.eventTypes);
        }
      })
      .catch((error: unknown) => {
        registration = undefined;
        throw error;
      });
    return registration;
  }

  /**
   * Claims up to `limit` due deliveries of one subscriber and handles them in
   * one transaction. Returns how many deliveries it attempted (0: nothing due).
   *
   * Handlers almost always succeed, so a batch first takes the fast path:
   * one statement claims the deliveries, records them in the inbox and
   * deletes them; a savepoint; the handlers (`handleBatch` once when the
   * subscription has it); the commit: 4 round trips plus the handlers'.
   * Should a handler fail, its batch's work is rolled back to the savepoint
   * and the batch runs again one event at a time in the same transaction
   * (`rerunIsolated`). The claim's row locks are held throughout, so no other
   * dispatcher can take a delivery of a failed batch before its attempt is
   * counted.
   */
  async function deliverBatch(subscription: Subscription, limit: number): Promise<number> {
    const attempts = await db.transaction(async (trx): Promise<DeliveryAttempt[]> => {
      const claimed = await claimDueDeliveries(trx, {
        subscriber: subscription.name,
        eventTypes: subscription.eventTypes,
        isOrdered: subscription.isOrderedPerAggregate,
        now: clock.now(),
        limit,
      });
      const claimedAt = performance.now();
      const firsts = claimed.filter((delivery) => delivery.isFirst);
      let handlerSeconds = new Map<string, number>();
      if (firsts.length > 0) {
        await createSavepoint(trx, 'batch');
        try {
          handlerSeconds = await runHandlers(trx, subscription, firsts);
        } catch (error) {
          if (!(error instanceof HandlerFailedInBatch)) throw error;
          await rollbackToSavepoint(trx, 'batch');
          return rerunIsolated(trx, subscription, claimed, error.failure);
        }
      }
      const sinceClaimSeconds = (performance.now() - claimedAt) / 1000;
      return claimed.map((delivery): DeliveryAttempt => {
        const { event, position, lagSeconds } = delivery;
        const settled = settledWithoutHandler(subscription, delivery);
        if (settled !== undefined) return { event, position, attempt: settled };
        return {
          event,
          position,
          attempt: {
            kind: 'delivered',
            lagSeconds: lagSeconds + sinceClaimSeconds,
            handlerSeconds: handlerSeconds.get(position) ?? 0,
          },
        };
      });
    });
    for (const { event, attempt } of attempts) report(subscription.name, event, attempt);
    return attempts.length;
  }

  /** Runs the fast path's handlers without savepoints; returns each one's seconds by position. */
  async function runHandlers(
    trx: Transaction<OutboxTables>,
    subscription: Subscription,
    firsts: readonly ClaimedDelivery[],
  ): Promise<Map<string, number>> {
    const handlerSeconds = new Map<string, number>();
    const { handleBatch } = subscription;
    if (handleBatch === undefined) {
      for (const { event, position } of firsts) {
        const startedAt = performance.now();
        try {
          await runHandlerInSpan(trx, subscription, event);
        } catch (error) {
          throw new HandlerFailedInBatch({ position, error });
        }
        handlerSeconds.set(position, (performance.now() - startedAt) / 1000);
      }
      return handlerSeconds;
    }
    const startedAt = performance.now();
    try {
      await runBatchHandlerInSpan(
        trx,
        { name: subscription.name, handleBatch },
        firsts.map((delivery) => delivery.event),
      );
    } catch (error) {
      // Logged because the isolated rerun hides it: a batch handler that
      // always fails would only show as a slow subscriber.
      logger.warn(
        { subscriber: subscription.name, events: firsts.length, err: describeError(error) },
        'batch handler failed; handling the batch one event at a time',
      );
      throw new HandlerFailedInBatch(undefined);
    }
    // One call for the batch: each event is counted an equal share of it.
    const share = (performance.now() - startedAt) / 1000 / firsts.length;
    for (const delivery of firsts) handlerSeconds.set(delivery.position, share);
    return handlerSeconds;
  }

  /**
   * A failed batch again, in the transaction that claimed it, each `handler`
   * behind a savepoint of its own: a failing one's work is rolled back to it,
   * its inbox entry taken back and its delivery put back with the attempt
   * counted and the next one scheduled with exponential backoff, or
   * dead-lettered (permanent error, or `maxAttempts` reached). The rest
   * commit. `knownFailure`, the delivery whose handler failed the fast path,
   * is counted with the error it gave, without a second call. Savepoints are
   * subtransactions, so at most 32 events are tried, oldest first; the rest
   * are handed back untried. Should the culprit lie beyond them, the next
   * fast batch fails again and the next rerun gets nearer to it.
   */
  async function rerunIsolated(
    trx: Transaction<OutboxTables>,
    subscription: Subscription,
    claimed: readonly ClaimedDelivery[],
    knownFailure: { position: string; error: unknown } | undefined,
  ): Promise<DeliveryAttempt[]> {
    const now = clock.now();
    const claimedAt = performance.now();
    const putBack: RestoredDelivery[] = [];
    const takenBackFromInbox: string[] = [];
    const results: DeliveryAttempt[] = [];
    let tried = 0;
    for (const delivery of claimed) {
      const { event, position } = delivery;
      const settled = settledWithoutHandler(subscription, delivery);
      if (settled !== undefined) {
        results.push({ event, position, attempt: settled });
        continue;
      }
      if (tried === MAX_DELIVERIES_PER_TRANSACTION) {
        takenBackFromInbox.push(event.id);
        putBack.push(restoredAsClaimed(delivery));
        continue;
      }
      tried += 1;
      const startedAt = performance.now();
      const isKnownFailure = position === knownFailure?.position;
      try {
        if (isKnownFailure) throw knownFailure.error;
        await createSavepoint(trx, 'handler');
        await runHandlerInSpan(trx, subscription, event);
        const handlerSeconds = (performance.now() - startedAt) / 1000;
        const lagSeconds = delivery.lagSeconds + (performance.now() - claimedAt) / 1000;
        results.push({ event, position, attempt: { kind: 'delivered', lagSeconds, handlerSeconds } });
      } catch (error) {
        if (!isKnownFailure) await rollbackToSavepoint(trx, 'handler');
        takenBackFromInbox.push(event.id);
        const failure = classifyFailure(error);
        const attempts = delivery.attempts + 1;
        const isDead = failure.isPermanent || attempts >= subscription.maxAttempts;
        const nextAttemptAt = new Date(
          now.getTime() + computeRetryDelayMs(attempts, subscription.retry ?? retry, random),
        );
        putBack.push({
          ...restoredAsClaimed(delivery),
          status: isDead ? 'dead' : 'pending',
          attempts,
          nextAttemptAt,
          lastErrorCode: failure.code,
          lastAttemptedAt: now,
          deadAt: isDead ? now : null,
        });
        const kind = isDead ? 'dead' : 'retrying';
        results.push({
          event,
          position,
          attempt: { kind, error, errorCode: failure.code, attempts, nextAttemptAt },
        });
      }
    }
    await restoreDeliveries(trx, subscription.name, putBack);
    await deleteInboxEntries(trx, subscription.name, takenBackFromInbox);
    return results;
  }

  /** Logs and counts an attempt once its transaction has committed. */
  function report(subscriber: string, event: EventEnvelope, attempt: Attempt): void {
    const outcome = toOutcome(subscriber, attempt);
    if (outcome !== undefined) metrics?.record(outcome);
    if (attempt.kind !== 'retrying' && attempt.kind !== 'dead') return;
    const fields = {
      subscriber,
      eventId: event.id,
      eventType: event.type,
      attempt: attempt.attempts,
      errorCode: attempt.errorCode,
      // AppErrors are described by their code; anything else is unexpected and
      // needs its message to be diagnosed. Payloads are never logged.
      ...(isAppError(attempt.error) ? {} : { err: describeError(attempt.error) }),
    };
    if (attempt.kind === 'dead') logger.error(fields, 'event delivery dead-lettered');
    else logger.warn({ ...fields, nextAttemptAt: attempt.nextAttemptAt }, 'event handler failed; will retry');
  }

  let isStopping = false;
  // Which subscriber a worker serves next: workers take turns over all of
  // them, so a subscriber with a backlog cannot starve the others.
  let rotation = 0;
  // Batches in flight per subscriber, for `maxConcurrentBatches`.
  const batchesInFlight = new Map<string, number>();
  function nextSubscription(isExhausted: (name: string) => boolean): Subscription | undefined {
    for (let step = 0; step < subscriptions.length; step += 1) {
      const candidate = subscriptions[rotation % subscriptions.length];
      rotation = (rotation + 1) % subscriptions.length;
      if (candidate === undefined || isExhausted(candidate.name)) continue;
      const limit = candidate.maxConcurrentBatches ?? concurrency;
      if ((batchesInFlight.get(candidate.name) ?? 0) >= limit) continue;
      return candidate;
    }
    return undefined;
  }

  async function runOnce(): Promise<number> {
    await register();
    let attempted = 0;
    const errors: unknown[] = [];
    // Subscribers with nothing due (or only deliveries held back behind an
    // ordered predecessor in flight) are not asked again in this run until a
    // poll interval has passed since they came up empty; the loop runs again
    // at once after a run that found work. Without the interval, a run that
    // other subscribers keep busy (a steady trickle of events can keep one
    // going for its whole batchSize, seconds under load) held back every event
    // that reached an exhausted subscriber meanwhile: 10-30 s of lag for the
    // search cache under telemed-mixed.
    const exhaustedAt = new Map<string, number>();
    const isExhausted = (name: string) => {
      const since = exhaustedAt.get(name);
      return since !== undefined && performance.now() - since < options.pollIntervalMs;
    };
    const work = async () => {
      while (!isStopping && attempted < options.batchSize && errors.length === 0) {
        const subscription = nextSubscription(isExhausted);
        if (subscription === undefined) return;
        const perTransaction =
          subscription.handleBatch === undefined
            ? MAX_DELIVERIES_PER_TRANSACTION
            : MAX_DELIVERIES_PER_BATCH_CALL;
        const limit = Math.min(perTransaction, options.batchSize - attempted);
        // Reserved before the await so that parallel workers stay within batchSize.
        attempted += limit;
        let delivered = 0;
        batchesInFlight.set(subscription.name, (batchesInFlight.get(subscription.name) ?? 0) + 1);
        try {
          delivered = await deliverBatch(subscription, limit);
        } catch (error) {
          errors.push(error);
        } finally {
          batchesInFlight.set(subscription.name, (batchesInFlight.get(subscription.name) ?? 1) - 1);
        }
        attempted -= limit - delivered;
        if (delivered === 0) exhaustedAt.set(subscription.name, performance.now());
      }
    };
    await Promise.all(Array.from({ length: concurrency }, work));
    if (errors.length > 0) throw errors[0];
    return attempted;
  }

  let wakePending = false;
  let wakeUp: (() => void) | undefined;
  function wake(): void {
    wakePending = true;
    wakeUp?.();
  }
  function sleepUntilWoken(ms: number): Promise<void> {
    if (wakePending) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakeUp = done;
    });
  }

  async function runLoop(): Promise<void> {
    while (!isStopping) {
      // Anything committed before this point is visible to the run below.
      wakePending = false;
      let attempted = 0;
      try {
        attempted = await runOnce();
      } catch (error) {
        logger.warn({ err: describeError(error) }, 'event dispatch failed; retrying after the poll interval');
      }
      // Work found means more may be due (an ordered aggregate's next event).
      if (attempted === 0 && !isStopping) await sleepUntilWoken(options.pollIntervalMs);
    }
  }

  let running: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  let listener: NotificationListener | undefined;
  let stopSignals: (() => void) | undefined;
  return {
    register,
    start() {
      starting ??= (async () => {
        isStopping = false;
        await register();
        stopSignals = database.signals.subscribe(EVENTS_CHANNEL, wake);
        if (options.isListening ?? true) {
          listener = await listenForNotifications({
            connection: database.pool.options,
            channel: EVENTS_CHANNEL,
            logger,
            // This process's own commits woke it in memory already.
            onNotification: (origin) => {
              if (origin !== database.signals.origin) wake();
            },
            onConnected: wake,
          });
        }
        running = runLoop();
      })().catch((error: unknown) => {
        starting = undefined;
        throw error;
      });
      return starting;
    },
    async stop() {
      await starting?.catch(() => undefined);
      isStopping = true;
      stopSignals?.();
      stopSignals = undefined;
      wake();
      await running;
      running = undefined;
      starting = undefined;
      await listener?.close();
      listener = undefined;
    },
    runOnce,
    listDeadLetters: (subscriber) =>
      listDeadLetters(database, subscriber === undefined ? {} : { subscriber }),
    replayDeadLetter: (subscriber, eventId) => replayDeadLetter(database, subscriber, eventId),
    registerMetrics(registry) {
      metrics = createOutboxMetrics(registry);
    },
  };
}

/** What a claimed delivery came to when its handler is not called: a dropped type or a redelivery. */
function settledWithoutHandler(subscription: Subscription, delivery: ClaimedDelivery): Attempt | undefined {
  // Fanned out before the subscription dropped this type.
  if (!isSubscribedTo(subscription, delivery.event.type)) return { kind: 'unsubscribed' };
  // Already in the inbox: handled before, so no second effect.
  if (!delivery.isFirst) return { kind: 'duplicate' };
  return undefined;
}

/** A claimed delivery as it was before the claim, due again at once. */
function restoredAsClaimed(delivery: ClaimedDelivery): RestoredDelivery {
  return {
    position: delivery.position,
    aggregateType: delivery.event.aggregateType,
    aggregateId: delivery.event.aggregateId,
    status: 'pending',
    attempts: delivery.attempts,
    // It was due when claimed; '-infinity' (a new delivery's default) and any
    // past time order it the same way.
    nextAttemptAt: new Date(0),
    lastErrorCode: delivery.lastErrorCode,
    lastAttemptedAt: delivery.lastAttemptedAt,
    deadAt: null,
    createdAt: delivery.createdAt,
  };
}

function toOutcome(subscriber: string, attempt: Attempt): DeliveryOutcome | undefined {
  switch (attempt.kind) {
    case 'delivered':
      return {
        kind: 'delivered',
        subscriber,
        lagSeconds: attempt.lagSeconds,
        handlerSeconds: attempt.handlerSeconds,
      };
    case 'duplicate':
    case 'retrying':
    case 'dead':
      return { kind: attempt.kind, subscriber };
    case 'unsubscribed':
      return undefined;
    default:
      return assertNever(attempt);
  }
}

function describeError(error: unknown): { name: string; message: string; code?: string } {
  if (!(error instanceof Error)) return { name: 'non-error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string'
    ? { name: error.name, message: error.message, code }
    : { name: error.name, message: error.message };
}
