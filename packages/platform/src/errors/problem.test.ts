import { describe, expect, it } from 'vitest';
import { AppError, type ErrorKind } from './app-error.ts';
import { presentKind, toProblem } from './problem.ts';

const PRESENTATIONS: [ErrorKind, number, string][] = [
  ['invalid', 400, 'Bad Request'],
  ['unauthenticated', 401, 'Unauthorized'],
  ['forbidden', 403, 'Forbidden'],
  ['not_found', 404, 'Not Found'],
  ['method_not_allowed', 405, 'Method Not Allowed'],
  ['conflict', 409, 'Conflict'],
  ['precondition_failed', 412, 'Precondition Failed'],
  ['payload_too_large', 413, 'Content Too Large'],
  ['unsupported_media_type', 415, 'Unsupported Media Type'],
  ['unprocessable', 422, 'Unprocessable Content'],
  ['rate_limited', 429, 'Too Many Requests'],
  ['unavailable', 503, 'Service Unavailable'],
  ['internal', 500, 'Internal Server Error'],
];

describe('presentKind', () => {
  it.each(PRESENTATIONS)('maps %s to status %i and title %s', (kind, status, title) => {
    expect(presentKind(kind)).toEqual({ status, title });
  });

  it('throws for a kind outside the closed union', () => {
    expect(() => presentKind('teapot' as ErrorKind)).toThrow(/Unhandled case/);
  });
});

describe('toProblem', () => {
  it('renders type from the code, status and title from the kind, and instance from the context', () => {
    const error = new AppError('not_found', 'users.not_found', 'No user with this id');
    expect(toProblem(error, { instance: '/user/42' })).toEqual({
      type: 'https://keel.dev/problems/users/not_found',
      title: 'Not Found',
      status: 404,
      detail: 'No user with this id',
      instance: '/user/42',
      code: 'users.not_found',
    });
  });

  it('includes traceId and errors only when present', () => {
    const error = new AppError('invalid', 'request.invalid', 'The request body is invalid', {
      errors: [{ pointer: '/body/email', detail: 'is required' }],
    });
    const problem = toProblem(error, { instance: '/user', traceId: 'abc123' });
    expect(problem.traceId).toBe('abc123');
    expect(problem.errors).toEqual([{ pointer: '/body/email', detail: 'is required' }]);

    const bare = toProblem(new AppError('conflict', 'x.y', 'conflict'), { instance: '/' });
    expect(bare).not.toHaveProperty('traceId');
    expect(bare).not.toHaveProperty('errors');
  });

  it('spreads extensions but never lets them override the standard members', () => {
    const error = new AppError('conflict', 'users.email_taken', 'Email taken', {
      extensions: { location: '/user/1', status: 200, code: 'spoofed', type: 'about:blank' },
    });
    const problem = toProblem(error, { instance: '/user' });
    expect(problem.location).toBe('/user/1');
    expect(problem.status).toBe(409);
    expect(problem.code).toBe('users.email_taken');
    expect(problem.type).toBe('https://keel.dev/problems/users/email_taken');
  });

  it('turns every dot of a multi-part code into a path segment of the type URI', () => {
    const error = new AppError('unavailable', 'database.pool.exhausted', 'busy');
    expect(toProblem(error, { instance: '/' }).type).toBe(
      'https://keel.dev/problems/database/pool/exhausted',
    );
  });
});
