/**
 * Classifies PostgreSQL and socket errors for the retry and breaker policies.
 * Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

// The statement was rolled back and can run again as it is.
const RETRYABLE_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

// The server or the connection to it is going away or refusing work.
const OUTAGE_SQLSTATES = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend, restart)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, in recovery)
  '53300', // too_many_connections
  '08000', // connection_exception
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08003', // connection_does_not_exist
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '08006', // connection_failure
]);

const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

// node-postgres reports some connection losses only through the message.
const CONNECTION_LOST_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
];

export const UNIQUE_VIOLATION = '23505';
export const QUERY_CANCELED = '57014';

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The database, or the way to it, is down: counts towards opening the breaker. */
export function isDatabaseOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = sqlState(error);
  if (code !== undefined && (OUTAGE_SQLSTATES.has(code) || SOCKET_ERROR_CODES.has(code))) return true;
  if (error instanceof AggregateError) return error.errors.some(isDatabaseOutage);
  return CONNECTION_LOST_MESSAGES.some((message) => error.message.includes(message));
}

/**
 * Safe to run the whole unit of work again. Never true for constraint,
 * validation or syntax errors: those would fail the same way every time.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const code = sqlState(error);
  return (code !== undefined && RETRYABLE_SQLSTATES.has(code)) || isDatabaseOutage(error);
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== UNIQUE_VIOLATION) return false;
  return constraint === undefined || (error as { constraint?: string }).constraint === constraint;
}
