import { type Static, type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * What every event looks like on the wire, whatever carries it (the Postgres
 * outbox today, NATS JetStream later). `payload` is the only part a producer
 * designs; the rest is stamped by the platform's `emitEvent`.
 */
export type EventEnvelope<EventType extends string = string, Payload = unknown> = {
  /** UUIDv7: unique, and sorts roughly by creation time. Consumers deduplicate on it. */
  id: string;
  /** `<service>.<event_past_tense>.v<major>`, e.g. `orders.order_placed.v1`. */
  type: EventType;
  /** The kind of thing the event is about (`order`); ordering is per (aggregateType, aggregateId). */
  aggregateType: string;
  aggregateId: string;
  /** ISO 8601 (UTC) time of the business fact, from the producer's clock. */
  occurredAt: string;
  /**
   * Revision of the payload schema within the type's major version: additive,
   * backwards-compatible changes bump it; breaking changes get a new type (`.v2`).
   */
  schemaVersion: number;
  /** W3C trace context of the producing request, so consumers continue its trace. */
  traceparent?: string;
  payload: Payload;
};

/** Event types are lower snake case segments ending in a major version: `orders.order_placed.v1`. */
export const EVENT_TYPE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$/;

const TRACEPARENT_PATTERN = '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$';

/** One problem found by `parse`, addressed by a JSON pointer into the envelope (`/payload/total`). */
export type EventValidationProblem = { pointer: string; detail: string };

/**
 * A value that is not a valid envelope of the expected event. It is permanent:
 * redelivering the same bytes cannot fix it, so the platform's dispatcher
 * dead-letters it without retrying (as it does an `invalid` AppError).
 */
export class EventValidationError extends Error {
  readonly kind = 'invalid';
  readonly code = 'events.invalid_envelope';
  readonly problems: EventValidationProblem[];

  constructor(type: string, problems: EventValidationProblem[]) {
    // Pointers and keywords only: the offending values may be personal data.
    super(`Not a valid ${type} event: ${problems.map((problem) => problem.pointer || '/').join(', ')}`);
    this.name = 'EventValidationError';
    this.problems = problems;
  }
}

/** The TypeBox schema of an envelope whose `type` is `type` and whose payload matches `payload`. */
export function envelopeSchema<const EventType extends string, Payload extends TSchema>(
  type: EventType,
  payload: Payload,
) {
  // Unknown envelope members are allowed: a newer producer may add one, and
  // older consumers must keep working (the payload schema decides for itself).
  return Type.Object({
    id: Type.String({ format: 'uuid' }),
    type: Type.Literal(type),
    aggregateType: Type.String({ minLength: 1, maxLength: 100 }),
    aggregateId: Type.String({ minLength: 1, maxLength: 200 }),
    occurredAt: Type.String({ format: 'date-time' }),
    schemaVersion: Type.Integer({ minimum: 1 }),
    traceparent: Type.Optional(Type.String({ pattern: TRACEPARENT_PATTERN })),
    payload,
  });
}

export type EventDefinition<EventType extends string, PayloadSchema extends TSchema> = {
  type: EventType;
  /** The payload revision producers stamp (`schemaVersion` of the envelope). */
  schemaVersion: number;
  payloadSchema: PayloadSchema;
  /** The whole envelope's schema, for docs and for validators elsewhere. */
  schema: ReturnType<typeof envelopeSchema<EventType, PayloadSchema>>;
  /** Returns `value` typed as this event's envelope, or throws `EventValidationError`. */
  parse(value: unknown): EventEnvelope<EventType, Static<PayloadSchema>>;
  /** True when `value` is a valid envelope of this event. */
  isEvent(value: unknown): value is EventEnvelope<EventType, Static<PayloadSchema>>;
};

/**
 * Declares an event contract: its versioned type and its payload schema.
 * Producers pass the definition to `emitEvent`, consumers `parse` what they
 * receive, so both sides are held to the same schema.
 *
 * @example
 * export const OrderPlacedV1 = defineEvent(
 *   'orders.order_placed.v1',
 *   Type.Object({ orderId: Type.String({ format: 'uuid' }), totalMinor: Type.Integer() }),
 * );
 * const event = OrderPlacedV1.parse(received); // event.payload.totalMinor: number
 */
export function defineEvent<const EventType extends string, PayloadSchema extends TSchema>(
  type: EventType,
  payloadSchema: PayloadSchema,
  options: { schemaVersion?: number } = {},
): EventDefinition<EventType, PayloadSchema> {
  if (!EVENT_TYPE_PATTERN.test(type)) {
    throw new Error(`Event type ${type} must look like <service>.<event_past_tense>.v<major>`);
  }
  const schemaVersion = options.schemaVersion ?? 1;
  if (!Number.isInteger(schemaVersion) || schemaVersion < 1) {
    throw new Error(`Event ${type}: schemaVersion must be an integer from 1`);
  }
  const schema = envelopeSchema(type, payloadSchema);
  const checker = Compile(schema);
  type Envelope = EventEnvelope<EventType, Static<PayloadSchema>>;
  const isEvent = (value: unknown): value is Envelope => checker.Check(value);
  return {
    type,
    schemaVersion,
    payloadSchema,
    schema,
    isEvent,
    parse(value) {
      if (isEvent(value)) return value;
      const problems = [...checker.Errors(value)].slice(0, 20).map((error) => ({
        pointer: error.instancePath,
        detail: error.message,
      }));
      throw new EventValidationError(type, problems);
    },
  };
}
