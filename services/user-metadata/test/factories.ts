import { randomUUID } from 'node:crypto';
import type { Response } from 'light-my-request';
import { expect } from 'vitest';

export type UserInput = { name: string; email: string; phone: string };

/** What a service calling user-metadata is given: everything the routes need. */
export const USER_METADATA_PERMISSIONS = ['user-metadata:read', 'user-metadata:write'];

/**
 * The id of the API key in an `Authorization: Bearer keel_<id, 32 hex>_<secret>`
 * value: the principal id, hence the caller's idempotency scope.
 */
export function apiKeyIdOf(authorization: string): string {
  const hex = /^Bearer keel_([0-9a-f]{32})_/.exec(authorization)?.[1];
  if (hex === undefined) throw new Error('not an API key Authorization value');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An email no other test uses, so tests never depend on each other's rows. */
export function uniqueEmail(): string {
  return `user-${randomUUID()}@example.com`;
}

/** A valid createUser body with a unique email; override any field. */
export function buildUserInput(overrides: Partial<UserInput> = {}): UserInput {
  return {
    name: 'Test User',
    email: uniqueEmail(),
    phone: '+14155552671',
    ...overrides,
  };
}

/** A fresh, valid Idempotency-Key. */
export function buildIdempotencyKey(): string {
  return `key-${randomUUID()}`;
}

/**
 * Asserts the response is an RFC 9457 problem with the given status and stable
 * code, and that it leaks nothing internal (no stack trace, no 5xx).
 * Returns the parsed problem for further assertions.
 */
export function expectProblem(response: Response, status: number, code: string): Record<string, unknown> {
  expect({ status: response.statusCode, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json() as Record<string, unknown>;
  expect(problem).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
  expectNoInternals(response);
  return problem;
}

/** No stack frames or error internals in a response body, whatever its status. */
export function expectNoInternals(response: Response): void {
  expect(response.statusCode).toBeLessThan(500);
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+/);
  expect(response.body).not.toContain('"stack"');
  expect(response.body).not.toContain('node_modules');
}
