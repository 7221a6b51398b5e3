/**
 * Classifies PostgreSQL and socket errors for the retry and breaker policies.
 * Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

// The statement was rolled back and can run again as it is.
const RETRYABLE_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

// The server cannot be reached or refuses new sessions: the database is down.
const UNAVAILABLE_SQLSTATES = new Set([
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '53300', // too_many_connections
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
]);

// An established session was lost. Safe to retry on a fresh connection, but
// no evidence of an outage by itself: a failover, a proxy restart or
// pg_terminate_backend drops every pooled connection at once, and counting
// each would open the breaker on a database that is up. The retry's own
// connection attempt tells whether the server is really gone.
const SESSION_LOST_SQLSTATES = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend, restart)
  '57P02', // crash_shutdown
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
]);

const UNREACHABLE_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const SESSION_LOST_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

// node-postgres reports some failures only through the message.
const CONNECT_FAILED_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
];
const SESSION_LOST_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
];

// Errors raised while opening a connection, whatever their shape: a server
// behind a proxy or pooler that is gone often shows up as a closed socket
// rather than a refused one.
const connectFailures = new WeakSet<object>();

export const UNIQUE_VIOLATION = '23505';
export const QUERY_CANCELED = '57014';

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Records that `error` was raised while opening a connection, so it counts as an outage. */
export function markConnectFailure(error: unknown): void {
  if (typeof error === 'object' && error !== null) connectFailures.add(error);
}

/** The database, or the way to it, is down: counts towards opening the breaker. */
export function isDatabaseOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (connectFailures.has(error)) return true;
  const code = sqlState(error);
  if (code !== undefined && (UNAVAILABLE_SQLSTATES.has(code) || UNREACHABLE_SOCKET_CODES.has(code)))
    return true;
  if (error instanceof AggregateError) return error.errors.some(isDatabaseOutage);
  return CONNECT_FAILED_MESSAGES.some((message) => error.message.includes(message));
}

/** The session died under the unit of work; a fresh connection may well succeed. */
export function isSessionLost(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = sqlState(error);
  if (code !== undefined && (SESSION_LOST_SQLSTATES.has(code) || SESSION_LOST_SOCKET_CODES.has(code)))
    return true;
  if (error instanceof AggregateError) return error.errors.some(isSessionLost);
  return SESSION_LOST_MESSAGES.some((message) => error.message.includes(message));
}

/**
 * Safe to run the whole unit of work again. Never true for constraint,
 * validation or syntax errors: those would fail the same way every time.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const code = sqlState(error);
  return (
    (code !== undefined && RETRYABLE_SQLSTATES.has(code)) || isDatabaseOutage(error) || isSessionLost(error)
  );
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== UNIQUE_VIOLATION) return false;
  return constraint === undefined || (error as { constraint?: string }).constraint === constraint;
}
