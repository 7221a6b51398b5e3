import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  isDatabaseOutage,
  isTransientDatabaseError,
  isUniqueViolation,
  markConnectFailure,
  sqlState,
} from './pg-errors.ts';

/** The error node-postgres builds from a server ErrorResponse. */
function serverError(code: string, options: { constraint?: string; severity?: string } = {}) {
  const error = new pg.DatabaseError(`server error ${code}`, 0, 'error');
  error.code = code;
  error.severity = options.severity ?? 'ERROR';
  error.constraint = options.constraint;
  return error;
}

/** The error Node's net module raises for a failed socket. */
function socketError(code: string) {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
}

type Case = { name: string; error: unknown; isTransient: boolean; isOutage: boolean };

const CASES: Case[] = [
  // The server cannot be reached or refuses new sessions: retry and count towards the breaker.
  {
    name: '57P03 cannot_connect_now',
    error: serverError('57P03', { severity: 'FATAL' }),
    isTransient: true,
    isOutage: true,
  },
  {
    name: '53300 too_many_connections',
    error: serverError('53300', { severity: 'FATAL' }),
    isTransient: true,
    isOutage: true,
  },
  {
    name: '08001 unable_to_establish_connection',
    error: serverError('08001'),
    isTransient: true,
    isOutage: true,
  },
  {
    name: '08004 server_rejected_connection',
    error: serverError('08004'),
    isTransient: true,
    isOutage: true,
  },
  { name: 'ECONNREFUSED', error: socketError('ECONNREFUSED'), isTransient: true, isOutage: true },
  { name: 'ETIMEDOUT', error: socketError('ETIMEDOUT'), isTransient: true, isOutage: true },
  { name: 'EHOSTUNREACH', error: socketError('EHOSTUNREACH'), isTransient: true, isOutage: true },
  { name: 'EAI_AGAIN', error: socketError('EAI_AGAIN'), isTransient: true, isOutage: true },
  {
    name: 'AggregateError of ECONNREFUSED (happy eyeballs over ::1 and 127.0.0.1)',
    error: new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], 'connect failed'),
    isTransient: true,
    isOutage: true,
  },
  {
    name: "'Connection terminated due to connection timeout'",
    error: new Error('Connection terminated due to connection timeout'),
    isTransient: true,
    isOutage: true,
  },
  {
    name: "'timeout exceeded when trying to connect' (pool checkout)",
    error: new Error('timeout exceeded when trying to connect'),
    isTransient: true,
    isOutage: true,
  },
  // An established session was lost: retry on a fresh connection, whose own
  // attempt decides whether the database is down.
  {
    name: '57P01 admin_shutdown (pg_terminate_backend)',
    error: serverError('57P01', { severity: 'FATAL' }),
    isTransient: true,
    isOutage: false,
  },
  {
    name: '57P02 crash_shutdown',
    error: serverError('57P02', { severity: 'FATAL' }),
    isTransient: true,
    isOutage: false,
  },
  {
    name: '08003 connection_does_not_exist',
    error: serverError('08003'),
    isTransient: true,
    isOutage: false,
  },
  { name: '08006 connection_failure', error: serverError('08006'), isTransient: true, isOutage: false },
  { name: 'ECONNRESET', error: socketError('ECONNRESET'), isTransient: true, isOutage: false },
  { name: 'EPIPE', error: socketError('EPIPE'), isTransient: true, isOutage: false },
  {
    name: "'Connection terminated unexpectedly'",
    error: new Error('Connection terminated unexpectedly'),
    isTransient: true,
    isOutage: false,
  },
  {
    name: "'Client has encountered a connection error and is not queryable'",
    error: new Error('Client has encountered a connection error and is not queryable'),
    isTransient: true,
    isOutage: false,
  },
  // Rolled back by the server and safe to run again, but the server is healthy.
  { name: '40001 serialization_failure', error: serverError('40001'), isTransient: true, isOutage: false },
  { name: '40P01 deadlock_detected', error: serverError('40P01'), isTransient: true, isOutage: false },
  // Would fail the same way every time.
  { name: '23505 unique_violation', error: serverError('23505'), isTransient: false, isOutage: false },
  { name: '23514 check_violation', error: serverError('23514'), isTransient: false, isOutage: false },
  { name: '23503 foreign_key_violation', error: serverError('23503'), isTransient: false, isOutage: false },
  { name: '23502 not_null_violation', error: serverError('23502'), isTransient: false, isOutage: false },
  {
    name: '22P02 invalid_text_representation',
    error: serverError('22P02'),
    isTransient: false,
    isOutage: false,
  },
  { name: '42P01 undefined_table', error: serverError('42P01'), isTransient: false, isOutage: false },
  { name: '42601 syntax_error', error: serverError('42601'), isTransient: false, isOutage: false },
  // A statement timeout: retrying would only add load to a slow database.
  { name: '57014 query_canceled', error: serverError('57014'), isTransient: false, isOutage: false },
  {
    name: '25P02 in_failed_sql_transaction',
    error: serverError('25P02'),
    isTransient: false,
    isOutage: false,
  },
  {
    name: "'Client was closed and is not queryable' (our own shutdown)",
    error: new Error('Client was closed and is not queryable'),
    isTransient: false,
    isOutage: false,
  },
  { name: 'a plain Error', error: new Error('boom'), isTransient: false, isOutage: false },
  { name: 'a string', error: 'Connection terminated unexpectedly', isTransient: false, isOutage: false },
  { name: 'undefined', error: undefined, isTransient: false, isOutage: false },
  { name: 'null', error: null, isTransient: false, isOutage: false },
];

describe('database error classification', () => {
  it.each(CASES)(
    'classifies $name as transient=$isTransient, outage=$isOutage',
    ({ error, isTransient, isOutage }) => {
      expect(isTransientDatabaseError(error)).toBe(isTransient);
      expect(isDatabaseOutage(error)).toBe(isOutage);
    },
  );

  it('counts a lost connection as an outage once it is marked as raised while connecting', () => {
    const error = new Error('Connection terminated unexpectedly');
    expect(isDatabaseOutage(error)).toBe(false);

    markConnectFailure(error);

    expect(isDatabaseOutage(error)).toBe(true);
    expect(isTransientDatabaseError(error)).toBe(true);
  });

  it('ignores marks on values that are not errors', () => {
    markConnectFailure('refused');
    markConnectFailure(undefined);
    expect(isDatabaseOutage('refused')).toBe(false);
  });

  it('treats every outage as transient', () => {
    for (const { name, error, isOutage } of CASES) {
      if (isOutage) expect(isTransientDatabaseError(error), name).toBe(true);
    }
  });
});

describe('sqlState', () => {
  it('returns the SQLSTATE of a server error and the code of a socket error', () => {
    expect(sqlState(serverError('40001'))).toBe('40001');
    expect(sqlState(socketError('ECONNRESET'))).toBe('ECONNRESET');
  });

  it('returns undefined when there is no string code', () => {
    expect(sqlState(new Error('boom'))).toBeUndefined();
    expect(sqlState(Object.assign(new Error('errno'), { code: 42 }))).toBeUndefined();
    expect(sqlState(undefined)).toBeUndefined();
    expect(sqlState(null)).toBeUndefined();
  });
});

describe('isUniqueViolation', () => {
  it('is true for 23505 and, when a constraint is named, only for that constraint', () => {
    const violation = serverError('23505', { constraint: 'users_email_key' });
    expect(isUniqueViolation(violation)).toBe(true);
    expect(isUniqueViolation(violation, 'users_email_key')).toBe(true);
    expect(isUniqueViolation(violation, 'users_pkey')).toBe(false);
  });

  it('is false for other constraint violations', () => {
    expect(isUniqueViolation(serverError('23514', { constraint: 'users_email_key' }))).toBe(false);
    expect(isUniqueViolation(new Error('duplicate key'))).toBe(false);
  });
});
