import { randomUUID } from 'node:crypto';
import type { Response } from 'light-my-request';
import { expect } from 'vitest';

export type UserInput = { name: string; email: string; phone: string };

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
