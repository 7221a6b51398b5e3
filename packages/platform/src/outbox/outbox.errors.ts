import { AppError } from '../errors/index.ts';

/** Every error code the outbox feature produces or stores with a failed delivery. */
export type OutboxErrorCode =
  | 'events.invalid_event'
  | 'events.invalid_subscription'
  | 'events.dead_letter_not_found'
  | 'events.invalid_limit'
  /** Stored for a handler failure that carries no code of its own (a bug, a plain Error). */
  | 'events.handler_failed';

/** The SQLSTATE the outbox's append-only trigger raises on UPDATE (migration 0004). */
export const OUTBOX_APPEND_ONLY_SQLSTATE = 'KE001';

/** A producer bug (bad type, payload off its contract): nothing a client can fix. */
export function invalidEvent(type: string, reason: string): AppError {
  return new AppError(
    'internal',
    'events.invalid_event' satisfies OutboxErrorCode,
    `Event ${type}: ${reason}`,
  );
}

export function invalidSubscription(name: string, reason: string): AppError {
  return new AppError(
    'internal',
    'events.invalid_subscription' satisfies OutboxErrorCode,
    `Subscription ${name}: ${reason}`,
  );
}

export function deadLetterNotFound(): AppError {
  return new AppError(
    'not_found',
    'events.dead_letter_not_found' satisfies OutboxErrorCode,
    'No dead letter for this subscriber and event',
  );
}

export function invalidLimit(max: number): AppError {
  return new AppError(
    'invalid',
    'events.invalid_limit' satisfies OutboxErrorCode,
    `The page size must be a whole number from 1 to ${max}`,
    { errors: [{ pointer: '/query/limit', detail: `must be an integer from 1 to ${max}` }] },
  );
}
