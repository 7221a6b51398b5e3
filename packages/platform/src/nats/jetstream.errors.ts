import { AppError } from '../errors/index.ts';

/** Every error code the NATS feature produces, and the outbox stores with a failed relay attempt. */
export type NatsErrorCode =
  /** No answer from NATS: refused, timed out, disconnected, no stream responded. Retried. */
  | 'nats.unavailable'
  /** JetStream answered with an error (limits, permissions, a subject owned by another stream). */
  | 'nats.publish_rejected'
  /** A consumed message is not an event envelope: redelivering the same bytes cannot help. */
  | 'nats.invalid_message'
  /** A programming or configuration mistake: bad service name, a type of another service. */
  | 'nats.invalid_settings';

// Library errors are recognised by name rather than `instanceof`, so that a
// second copy of the nats packages in node_modules still maps correctly.
const UNAVAILABLE_ERROR_NAMES = new Set([
  'ConnectionError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'ProtocolError',
  'RequestError',
  'TimeoutError',
  'NoResponders',
  // What a JetStream publish reports when no stream answered (no responders).
  'JetStreamNotEnabled',
  'JetStreamStatusError',
]);

export function natsUnavailable(operation: string, cause?: unknown): AppError {
  return new AppError(
    'unavailable',
    'nats.unavailable' satisfies NatsErrorCode,
    `NATS did not answer (${operation})`,
    cause === undefined ? {} : { cause },
  );
}

export function publishRejected(cause: unknown): AppError {
  return new AppError(
    'internal',
    'nats.publish_rejected' satisfies NatsErrorCode,
    'JetStream rejected the message',
    { cause },
  );
}

/** Permanent (kind `invalid`): the consumer dead-letters the message at once. */
export function invalidMessage(reason: string): AppError {
  return new AppError(
    'invalid',
    'nats.invalid_message' satisfies NatsErrorCode,
    `The message is not an event envelope: ${reason}`,
  );
}

export function invalidNatsSettings(reason: string): AppError {
  return new AppError('internal', 'nats.invalid_settings' satisfies NatsErrorCode, reason);
}

/** True when `error` is a NATS client failure that says "no answer", not "refused". */
export function isNatsUnavailableError(error: unknown): boolean {
  return error instanceof Error && UNAVAILABLE_ERROR_NAMES.has(error.name);
}

/**
 * Turns what the NATS client threw into an `AppError` the outbox can classify:
 * `unavailable` (retried) when NATS did not answer, `internal` (also retried,
 * but logged as unexpected) when JetStream refused. The cause is kept for the
 * log; only the code is stored with the delivery.
 */
export function toNatsFailure(error: unknown, operation: string): AppError {
  if (error instanceof AppError) return error;
  if (isNatsUnavailableError(error)) return natsUnavailable(operation, error);
  return publishRejected(error);
}
