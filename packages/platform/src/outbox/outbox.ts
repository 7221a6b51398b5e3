import { EVENT_TYPE_PATTERN, type EventDefinition, type EventEnvelope } from '@keel/contracts';
import { isSpanContextValid, type SpanContext, TraceFlags } from '@opentelemetry/api';
import type { TSchema } from 'typebox';
import type { AnyTransaction } from '../db/database.ts';
import { assertNever, type ErrorKind, isAppError } from '../errors/index.ts';
import { invalidSubscription, type OutboxErrorCode } from './outbox.errors.ts';

/** What a service passes to `emitEvent`; the platform stamps the rest of the envelope. */
export type EventInput<EventType extends string = string, Payload = unknown> = {
  type: EventType;
  aggregateType: string;
  aggregateId: string;
  /** JSON-serialisable: it is stored as `jsonb` and read back through `JSON.parse`. */
  payload: Payload;
  /** Defaults to the definition's `schemaVersion`, else 1. */
  schemaVersion?: number;
  /** Defaults to now; pass the service's clock so tests control it. */
  occurredAt?: Date;
};

export type EmitOptions = {
  /** Validates the envelope against the contract before it is written (a mismatch is a bug: 500). */
  definition?: EventDefinition<string, TSchema>;
  /** Defaults to UUIDv7. */
  generateId?: () => string;
  /**
   * Wakes dispatchers once the transaction commits (default true): in memory
   * in this process, by a NOTIFY sent after the commit in others (see
   * `CommitSignals`). False leaves the event to the dispatchers' polling.
   */
  isNotifying?: boolean;
};

/**
 * Handles one event inside a transaction that also records the event in the
 * subscriber's inbox: the handler's writes and the "done" mark commit
 * together, so an event is never applied twice. Throw to fail the delivery:
 * an `AppError` of kind `invalid`, `conflict` or `unprocessable` (or an
 * `EventValidationError` from a contract's `parse`) dead-letters it at once;
 * anything else is retried with backoff until `maxAttempts`.
 */
export type EventHandler = (event: EventEnvelope, trx: AnyTransaction) => Promise<void>;

/**
 * Handles a batch of events in the transaction that records them all in the
 * subscriber's inbox: `events` are distinct, first deliveries, in emit order,
 * and for an ordered subscription at most one per aggregate. It must have
 * exactly the effect of calling the subscription's `handler` on each in turn
 * (the dispatcher falls back to that, one event at a time, whenever the batch
 * throws, to find and retry or dead-letter the event at fault), but in a few
 * statements instead of one or more per event: under load a dispatcher's
 * round trips, each waiting for a turn of a busy event loop, are what bound
 * its throughput.
 */
export type BatchEventHandler = (events: readonly EventEnvelope[], trx: AnyTransaction) => Promise<void>;

export type RetryPolicy = {
  /** Delay before the second attempt; doubles with every failure. */
  initialDelayMs: number;
  maxDelayMs: number;
};

export type Subscription = {
  /** Unique and stable: delivery state and the inbox are keyed by it. `orders.analytics`. */
  name: string;
  /** Exact types (`orders.order_placed.v1`), or `'*'` for every type. */
  eventTypes: readonly string[];
  /** Deliver an aggregate's events one at a time, in emit order; a failing event holds back the later ones until it succeeds or is dead-lettered. */
  isOrderedPerAggregate: boolean;
  /** Attempts before an event is dead-lettered (1 = no retry). */
  maxAttempts: number;
  handler: EventHandler;
  /**
   * Optional: the same effect as `handler` for a whole batch in fewer round
   * trips. Transports that deliver one event at a time (JetStream) and the
   * dispatcher's isolated retry of a failed batch use `handler`.
   */
  handleBatch?: BatchEventHandler;
  /** Overrides the bus's retry policy. */
  retry?: RetryPolicy;
  /**
   * Batches of this subscription one process handles at once (default: the
   * bus's concurrency). 1 for a handler that locks shared rows in event order
   * (a per-outlet counter): two batches in parallel would take those locks in
   * different orders and deadlock.
   */
  maxConcurrentBatches?: number;
};

/**
 * The seam to another transport (NATS JetStream): a publisher receives every
 * committed event of its types, per aggregate in order, and must be idempotent
 * on `event.id` (JetStream: `Nats-Msg-Id`), because a crash between publishing
 * and recording the delivery publishes again.
 */
export type EventPublisher = {
  name: string;
  eventTypes: readonly string[];
  publish(event: EventEnvelope): Promise<void>;
  /** Default 50: a relay should keep retrying an outage rather than dead-letter. */
  maxAttempts?: number;
  retry?: RetryPolicy;
};

/** A delivery that failed for good, as the admin listing shows it (no payload: it may hold personal data). */
export type DeadLetter = {
  subscriber: string;
  eventId: string;
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  occurredAt: Date;
  attempts: number;
  lastErrorCode: string | null;
  lastAttemptedAt: Date | null;
  deadAt: Date;
};

export const DEFAULT_RETRY_POLICY: RetryPolicy = { initialDelayMs: 1000, maxDelayMs: 5 * 60_000 };
export const DEFAULT_PUBLISHER_MAX_ATTEMPTS = 50;
export const WILDCARD_EVENT_TYPE = '*';
const SUBSCRIBER_NAME = /^[a-z][a-z0-9_.:-]{0,99}$/;

/** True when `type` looks like `orders.order_placed.v1`. */
export function isEventType(type: string): boolean {
  return type.length <= 200 && EVENT_TYPE_PATTERN.test(type);
}

export function isSubscribedTo(subscription: Pick<Subscription, 'eventTypes'>, type: string): boolean {
  return subscription.eventTypes.includes(WILDCARD_EVENT_TYPE) || subscription.eventTypes.includes(type);
}

/** Refuses a subscription set that would misbehave at run time: duplicate names, bad types, no attempts. */
export function validateSubscriptions(subscriptions: readonly Subscription[]): void {
  const names = new Set<string>();
  for (const subscription of subscriptions) {
    const { name } = subscription;
    if (!SUBSCRIBER_NAME.test(name)) {
      throw invalidSubscription(name, 'the name must be lower case letters, digits and _ . : -');
    }
    if (names.has(name)) throw invalidSubscription(name, 'the name is used twice');
    names.add(name);
    if (subscription.eventTypes.length === 0) throw invalidSubscription(name, 'it lists no event type');
    for (const type of subscription.eventTypes) {
      if (type !== WILDCARD_EVENT_TYPE && !isEventType(type)) {
        throw invalidSubscription(name, `${type} is not an event type`);
      }
    }
    if (!Number.isInteger(subscription.maxAttempts) || subscription.maxAttempts < 1) {
      throw invalidSubscription(name, 'maxAttempts must be an integer from 1');
    }
    const { maxConcurrentBatches } = subscription;
    if (
      maxConcurrentBatches !== undefined &&
      (!Number.isInteger(maxConcurrentBatches) || maxConcurrentBatches < 1)
    ) {
      throw invalidSubscription(name, 'maxConcurrentBatches must be an integer from 1');
    }
  }
}

/** Turns a publisher into the ordered subscription that feeds it. */
export function toPublisherSubscription(publisher: EventPublisher): Subscription {
  return {
    name: publisher.name,
    eventTypes: publisher.eventTypes,
    // The downstream stream should see an aggregate's events in emit order too.
    isOrderedPerAggregate: true,
    maxAttempts: publisher.maxAttempts ?? DEFAULT_PUBLISHER_MAX_ATTEMPTS,
    ...(publisher.retry === undefined ? {} : { retry: publisher.retry }),
    handler: (event) => publisher.publish(event),
  };
}

/**
 * Exponential backoff with equal jitter: attempt n (from 1) waits between half
 * and all of `initialDelayMs * 2^(n-1)`, capped at `maxDelayMs`. The jitter
 * spreads retries of events that failed together (a shared dependency down).
 */
export function computeRetryDelayMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const exponential = policy.initialDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30);
  const capped = Math.min(exponential, policy.maxDelayMs);
  return Math.round(capped / 2 + random() * (capped / 2));
}

export type FailureClass = {
  /** Stored with the delivery: a stable code, never a message. */
  code: string;
  /** True when retrying cannot help, so the delivery is dead-lettered at once. */
  isPermanent: boolean;
};

/**
 * Sorts a handler's failure (STYLE.md rule 18): input the handler rejects will
 * be rejected again, so `invalid`, `conflict` and `unprocessable` are permanent;
 * everything else (`unavailable`, a bug, a lost connection) may pass on a
 * later attempt.
 */
export function classifyFailure(error: unknown): FailureClass {
  if (isAppError(error)) return { code: error.code, isPermanent: isPermanentKind(error.kind) };
  if (isEnvelopeError(error)) return { code: error.code, isPermanent: true };
  const sqlState = (error as { code?: unknown } | null)?.code;
  if (typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState)) {
    return { code: `pg.${sqlState}`, isPermanent: false };
  }
  return { code: 'events.handler_failed' satisfies OutboxErrorCode, isPermanent: false };
}

function isPermanentKind(kind: ErrorKind): boolean {
  switch (kind) {
    case 'invalid':
    case 'conflict':
    case 'unprocessable':
      return true;
    case 'unauthenticated':
    case 'forbidden':
    case 'not_found':
    case 'method_not_allowed':
    case 'precondition_failed':
    case 'payload_too_large':
    case 'unsupported_media_type':
    case 'rate_limited':
    case 'unavailable':
    case 'internal':
      return false;
    default:
      return assertNever(kind);
  }
}

/** Duck-typed so that a contracts package loaded twice still counts. */
function isEnvelopeError(error: unknown): error is { code: string } {
  return (
    error instanceof Error &&
    error.name === 'EventValidationError' &&
    (error as { kind?: unknown }).kind === 'invalid' &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

/** W3C `traceparent` of a span, or undefined for the no-op span (tracing off). */
export function formatTraceparent(spanContext: SpanContext | undefined): string | undefined {
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** The remote span context a `traceparent` names, or undefined when it is missing or malformed. */
export function parseTraceparent(traceparent: string | null | undefined): SpanContext | undefined {
  if (traceparent === null || traceparent === undefined) return undefined;
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  if (match === null || match[1] === 'ff') return undefined;
  const spanContext: SpanContext = {
    traceId: match[2] ?? '',
    spanId: match[3] ?? '',
    traceFlags: Number.parseInt(match[4] ?? '0', 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}
