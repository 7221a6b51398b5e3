import { AppError } from '../errors/index.ts';

/** Every error code the audit feature can produce. */
export type AuditErrorCode = 'audit.invalid_cursor' | 'audit.invalid_limit';

/**
 * The SQLSTATE the append-only triggers raise (migration 0002) on UPDATE,
 * DELETE or TRUNCATE of an audit table.
 */
export const AUDIT_APPEND_ONLY_SQLSTATE = 'KA001';

export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'audit.invalid_cursor' satisfies AuditErrorCode,
    'The cursor is not one this API returned; start again without a cursor',
    { errors: [{ pointer: '/query/cursor', detail: 'is not a valid cursor' }] },
  );
}

export function invalidLimit(max: number): AppError {
  return new AppError(
    'invalid',
    'audit.invalid_limit' satisfies AuditErrorCode,
    `The page size must be a whole number from 1 to ${max}`,
    { errors: [{ pointer: '/query/limit', detail: `must be an integer from 1 to ${max}` }] },
  );
}
