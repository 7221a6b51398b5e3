import type { EventEnvelope } from '@keel/contracts';
import { headers } from '@nats-io/transport-node';
import type { Logger, Registry } from '../observability/index.ts';
import type { EventPublisher, RetryPolicy } from '../outbox/index.ts';
import { toNatsFailure } from './jetstream.errors.ts';
import { createRelayMetrics, type RelayMetrics } from './jetstream.metrics.ts';
import { ensureServiceStream } from './jetstream.streams.ts';
import {
  assertServiceName,
  eventStreamName,
  eventSubject,
  type StreamSettings,
  serviceOfEventType,
} from './jetstream.ts';
import type { NatsClient } from './nats.connection.ts';

export type JetStreamRelayOptions = {
  connection: NatsClient;
  logger: Logger;
  /** Relay only these services' events (default: every service). Others are skipped, not failed. */
  services?: readonly string[];
  /** Retention and dedupe window of the streams the relay creates or updates. */
  stream?: Partial<StreamSettings>;
  /** How long one publish waits for the stream's acknowledgement (default 5 s). It runs inside the outbox's delivery transaction, so keep it short. */
  publishTimeoutMs?: number;
  /** Outbox attempts before an event is dead-lettered in Postgres (default 50: outlive an outage). */
  maxAttempts?: number;
  retry?: RetryPolicy;
};

export type JetStreamRelay = EventPublisher & {
  /** Creates (or updates) these services' streams now instead of at their first event. */
  ensureStreams(services: readonly string[]): Promise<void>;
  registerMetrics(registry: Registry): void;
};

export const JETSTREAM_RELAY_NAME = 'relay.jetstream';

/**
 * An outbox publisher that copies every committed event to JetStream: subject
 * `keel.events.<type>` (`keel.events.orders.order_placed.v1`) in the
 * service's stream `KEEL_EVENTS_<SERVICE>` (created on the service's first
 * event), body the JSON envelope, `Nats-Msg-Id` the event id (so a republish
 * after a crash is dropped by the stream's duplicate window) and the
 * producer's `traceparent` header. A failed publish throws
 * (`nats.unavailable` when NATS did not answer), and the outbox retries it.
 *
 * @example
 * const relay = createJetStreamRelay({ connection: nats, logger });
 * relay.registerMetrics(registry);
 * const bus = createEventBus({ ..., publishers: [relay] });
 */
export function createJetStreamRelay(options: JetStreamRelayOptions): JetStreamRelay {
  const { connection } = options;
  const logger = options.logger.child({ component: 'jetstream-relay' });
  const services = options.services === undefined ? undefined : new Set(options.services);
  for (const service of services ?? []) assertServiceName(service);
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  let metrics: RelayMetrics | undefined;

  // One lookup per service and process; forgotten when no stream answered a
  // publish, so that a stream deleted by hand is created again on the next
  // attempt (but not on every timeout of an outage).
  const ensured = new Map<string, Promise<void>>();
  function ensureStreamOf(service: string): Promise<void> {
    let ensuring = ensured.get(service);
    if (ensuring === undefined) {
      ensuring = (async () => {
        const stream = await ensureServiceStream(await connection.manager(), {
          service,
          ...options.stream,
        });
        if (stream.outcome !== 'unchanged') logger.info({ stream }, 'jetstream event stream ready');
      })();
      ensured.set(service, ensuring);
      ensuring.catch(() => ensured.delete(service));
    }
    return ensuring;
  }

  async function publish(event: EventEnvelope): Promise<void> {
    const service = serviceOfEventType(event.type);
    if (services !== undefined && !services.has(service)) return;
    try {
      await ensureStreamOf(service);
      const messageHeaders = headers();
      if (event.traceparent !== undefined) messageHeaders.set('traceparent', event.traceparent);
      const ack = await connection.jetstream.publish(eventSubject(event.type), JSON.stringify(event), {
        msgID: event.id,
        headers: messageHeaders,
        timeout: publishTimeoutMs,
        // Refused unless the service's stream stores it: a subject claimed by
        // another stream would otherwise swallow the event silently.
        expect: { streamName: eventStreamName(service) },
      });
      metrics?.record(service, ack.duplicate ? 'duplicate' : 'stored');
    } catch (error) {
      if (isNoStreamError(error)) ensured.delete(service);
      metrics?.record(service, 'failed');
      throw toNatsFailure(error, `publish ${event.type}`);
    }
  }

  return {
    name: JETSTREAM_RELAY_NAME,
    eventTypes: ['*'],
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    publish,
    async ensureStreams(list) {
      for (const service of list) await ensureStreamOf(service);
    },
    registerMetrics(registry) {
      metrics = createRelayMetrics(registry);
    },
  };
}

/** No stream took the subject: the publish met no responders (nats.js reports it as "JetStream not enabled"). */
function isNoStreamError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'JetStreamNotEnabled' || error.name === 'NoResponders') return true;
  return error.cause instanceof Error && isNoStreamError(error.cause);
}
