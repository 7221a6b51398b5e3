import { EVENT_TYPE_PATTERN, type EventEnvelope } from '@keel/contracts';
import { WILDCARD_EVENT_TYPE } from '../outbox/index.ts';
import { invalidMessage, invalidNatsSettings } from './jetstream.errors.ts';

/** Where events live: `keel.events.<event type>`, so `keel.events.orders.order_placed.v1`. */
export const EVENTS_SUBJECT_PREFIX = 'keel.events';
/** Where a consumer puts what it gave up on: `keel.dead.<service>.<subscriber>`. */
export const DEAD_LETTER_SUBJECT_PREFIX = 'keel.dead';

/** Retention and dedupe of a service's event stream. */
export type StreamSettings = {
  /** Messages older than this are deleted (limits retention). Default 7 days. */
  maxAgeMs: number;
  /** How long the server remembers a `Nats-Msg-Id` to drop a republish. Default 2 minutes. */
  duplicateWindowMs: number;
  /** Copies kept in a cluster (1 on a single server). Default 1. */
  replicas: number;
};

export const DEFAULT_STREAM_SETTINGS: StreamSettings = {
  maxAgeMs: 7 * 86_400_000,
  duplicateWindowMs: 2 * 60_000,
  replicas: 1,
};

/** Dead letters are kept longer: someone has to look at them. */
export const DEFAULT_DEAD_LETTER_STREAM_SETTINGS: StreamSettings = {
  maxAgeMs: 30 * 86_400_000,
  duplicateWindowMs: 2 * 60_000,
  replicas: 1,
};

// The first segment of an event type; it becomes part of a stream name, so it
// must stay within what both a subject token and a stream name accept.
const SERVICE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertServiceName(service: string): void {
  if (!SERVICE_NAME.test(service)) {
    throw invalidNatsSettings(`Service name ${service} must match ${SERVICE_NAME.source}`);
  }
}

/** `orders.order_placed.v1` → `orders`: the producing service owns the stream the event goes to. */
export function serviceOfEventType(type: string): string {
  if (!EVENT_TYPE_PATTERN.test(type)) {
    throw invalidNatsSettings(`${type} is not an event type`);
  }
  return type.slice(0, type.indexOf('.'));
}

/** `orders.order_placed.v1` → `keel.events.orders.order_placed.v1`. Types are lower snake segments, safe as subject tokens. */
export function eventSubject(type: string): string {
  return `${EVENTS_SUBJECT_PREFIX}.${type}`;
}

/** Every subject of one service's events: `keel.events.orders.>`. */
export function serviceEventsSubject(service: string): string {
  assertServiceName(service);
  return `${EVENTS_SUBJECT_PREFIX}.${service}.>`;
}

/** `orders` → `KEEL_EVENTS_ORDERS`. */
export function eventStreamName(service: string): string {
  assertServiceName(service);
  return `KEEL_EVENTS_${service.toUpperCase()}`;
}

/** `orders` → `KEEL_DEAD_ORDERS`. */
export function deadLetterStreamName(service: string): string {
  assertServiceName(service);
  return `KEEL_DEAD_${service.toUpperCase()}`;
}

export function deadLetterSubjects(service: string): string {
  assertServiceName(service);
  return `${DEAD_LETTER_SUBJECT_PREFIX}.${service}.>`;
}

/** `keel.dead.orders.analytics.order_totals`: the subscriber's dots become further tokens. */
export function deadLetterSubject(service: string, subscriber: string): string {
  assertServiceName(service);
  return `${DEAD_LETTER_SUBJECT_PREFIX}.${service}.${subscriber}`;
}

/**
 * A durable consumer name for a subscriber: names may not contain dots, so
 * `orders.analytics` becomes `orders_analytics`. Two subscribers differing
 * only by `.` versus `_` would collide; pass `durableName` to separate them.
 */
export function durableNameFor(subscriber: string): string {
  return subscriber.replaceAll('.', '_');
}

/**
 * The subjects a consumer of `service` filters on: the whole service for
 * `['*']`, else one subject per type. Every type must belong to `service`:
 * a service's stream only holds its own events.
 */
export function consumerFilterSubjects(service: string, eventTypes: readonly string[]): string[] {
  if (eventTypes.includes(WILDCARD_EVENT_TYPE)) return [serviceEventsSubject(service)];
  assertServiceName(service);
  return eventTypes.map((type) => {
    if (serviceOfEventType(type) !== service) {
      throw invalidNatsSettings(
        `${type} is not an event of ${service}; consume it from its own service's stream`,
      );
    }
    return eventSubject(type);
  });
}

/**
 * Reads a message body as an envelope, checking the members every consumer
 * relies on. The payload is left to the subscriber (its contract's `parse`).
 * Throws `nats.invalid_message` (permanent).
 */
export function parseEnvelope(data: Uint8Array): EventEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw invalidMessage('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidMessage('not a JSON object');
  }
  const envelope = value as Record<string, unknown>;
  for (const member of ['id', 'type', 'aggregateType', 'aggregateId', 'occurredAt'] as const) {
    if (typeof envelope[member] !== 'string' || envelope[member] === '') {
      throw invalidMessage(`${member} is missing`);
    }
  }
  // The inbox keys on a uuid column: anything else would fail there, retried as a database error.
  if (!UUID.test(envelope.id as string)) throw invalidMessage('id is not a UUID');
  if (!EVENT_TYPE_PATTERN.test(envelope.type as string)) throw invalidMessage('type is malformed');
  if (!Number.isInteger(envelope.schemaVersion)) throw invalidMessage('schemaVersion is missing');
  if (!('payload' in envelope)) throw invalidMessage('payload is missing');
  if (envelope.traceparent !== undefined && typeof envelope.traceparent !== 'string') {
    throw invalidMessage('traceparent is not a string');
  }
  return envelope as EventEnvelope;
}

/** True when the server's version (`2.10.22`) is at least `major.minor`. */
export function isServerAtLeast(version: string | undefined, major: number, minor: number): boolean {
  const match = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (match === null) return false;
  const [serverMajor, serverMinor] = [Number(match[1]), Number(match[2])];
  return serverMajor > major || (serverMajor === major && serverMinor >= minor);
}
