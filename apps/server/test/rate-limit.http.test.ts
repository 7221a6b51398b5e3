import { randomUUID } from 'node:crypto';
import {
  buildTestApp,
  createTestAccount,
  createTestApiKey,
  signIn,
  type TestApp,
  useTestApp,
} from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// Small limits so a test can reach them; the window is long so nothing resets mid-test.
const LIMITS = {
  RATE_LIMIT_DEFAULT_MAX: '8',
  RATE_LIMIT_AUTH_PER_IP_MAX: '6',
  RATE_LIMIT_AUTH_PER_ACCOUNT_MAX: '3',
  RATE_LIMIT_WINDOW_SECONDS: '600',
  RATE_LIMIT_AUTH_WINDOW_SECONDS: '600',
};

function expectRateLimited(response: {
  statusCode: number;
  headers: Record<string, unknown>;
  json: () => unknown;
}) {
  expect(response.statusCode).toBe(429);
  expect(response.headers['content-type']).toContain('application/problem+json');
  expect(response.json()).toMatchObject({ status: 429, code: 'rate_limit.exceeded' });
  expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  expect(response.headers['ratelimit-limit']).toBeDefined();
  expect(response.headers['ratelimit-remaining']).toBe('0');
  expect(response.headers['ratelimit-reset']).toBeDefined();
}

// Each request gets its own client address, so per-IP counters never leak between
// tests (or, with Redis, between runs).
function randomAddress(): string {
  const octet = () => Math.floor(Math.random() * 250) + 1;
  return `10.${octet()}.${octet()}.${octet()}`;
}

describe('in-memory limits (no REDIS_URL)', () => {
  const harness = useTestApp({ modules: ALL_MODULES, env: LIMITS });

  it('limits login per account across addresses, answering 429 with Retry-After and RateLimit headers', async () => {
    const email = `limited-${randomUUID()}@example.test`;
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof harness.testApp.app.inject>> | undefined;
    for (let attempt = 0; attempt < 4; attempt += 1) {
      last = await harness.testApp.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: randomAddress(),
        payload: { email, password: 'some wrong password' },
      });
      statuses.push(last.statusCode);
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expectRateLimited(last as never);
  });

  it('limits login per IP across accounts', async () => {
    const address = randomAddress();
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 7; attempt += 1) {
      const response = await harness.testApp.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: address,
        payload: { email: `ip-${attempt}-${randomUUID()}@example.test`, password: 'some wrong password' },
      });
      statuses.push(response.statusCode);
      if (attempt === 6) expectRateLimited(response);
    }
    expect(statuses.filter((status) => status === 401)).toHaveLength(6);
  });

  it('limits registration and password-reset requests per IP', async () => {
    for (const [url, body] of [
      [
        '/auth/register',
        (n: number) => ({
          email: `reg-${n}-${randomUUID()}@example.test`,
          password: 'password for rate limits',
        }),
      ],
      ['/auth/password/reset-request', (n: number) => ({ email: `reset-${n}-${randomUUID()}@example.test` })],
    ] as const) {
      const address = randomAddress();
      const responses = [];
      for (let attempt = 0; attempt < 7; attempt += 1) {
        responses.push(
          await harness.testApp.app.inject({
            method: 'POST',
            url,
            remoteAddress: address,
            payload: body(attempt),
          }),
        );
      }
      expect(responses.slice(0, 6).every((response) => response.statusCode < 300)).toBe(true);
      expectRateLimited(responses[6] as never);
    }
  });

  it('limits MFA verification per challenge', async () => {
    const admin = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
    const login = await harness.testApp.app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress: randomAddress(),
      payload: { email: admin.email, password: admin.password },
    });
    const mfaToken = login.json().mfa_token as string;
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const response = await harness.testApp.app.inject({
        method: 'POST',
        url: '/auth/mfa/verify',
        remoteAddress: randomAddress(),
        payload: { mfa_token: mfaToken, code: '000000' },
      });
      statuses.push(response.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it('applies the default limit per signed-in caller, not per address, and never to health checks', async () => {
    const account = await createTestAccount(harness.testApp, { roles: ['user-metadata:reader'] });
    const session = await signIn(harness.testApp, account);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 9; attempt += 1) {
      const response = await harness.testApp.app.inject({
        method: 'GET',
        url: `/user/${randomUUID()}`,
        remoteAddress: randomAddress(),
        headers: { authorization: session.authorization },
      });
      statuses.push(response.statusCode);
      if (attempt === 8) expectRateLimited(response);
    }
    expect(statuses.slice(0, 8).every((status) => status === 404)).toBe(true);

    const address = randomAddress();
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const probe = await harness.testApp.app.inject({
        method: 'GET',
        url: '/health/live',
        remoteAddress: address,
      });
      expect(probe.statusCode).toBe(200);
    }
  });
  it('counts refused callers too: bad credentials cannot be sprayed without limit', async () => {
    const address = randomAddress();
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 9; attempt += 1) {
      const response = await harness.testApp.app.inject({
        method: 'GET',
        url: `/user/${randomUUID()}`,
        remoteAddress: address,
        headers: { authorization: `Bearer keel_${randomUUID().replaceAll('-', '')}_${'A'.repeat(43)}` },
      });
      statuses.push(response.statusCode);
      if (attempt === 8) expectRateLimited(response);
    }
    expect(statuses.slice(0, 8).every((status) => status === 401)).toBe(true);
  });

  it('does not mark an API key used when its secret is wrong', async () => {
    const key = await createTestApiKey(harness.testApp, ['user-metadata:read']);
    const [, idHex = ''] = /keel_([0-9a-f]{32})_/.exec(key) ?? [];
    const tampered = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    const response = await harness.testApp.app.inject({
      method: 'GET',
      url: `/user/${randomUUID()}`,
      remoteAddress: randomAddress(),
      headers: { authorization: tampered },
    });
    expect(response.statusCode).toBe(401);
    const row = await harness.testDb.database.pool.query(
      'select last_used_at from platform.api_keys where replace(id::text, $2, $3) = $1',
      [idHex, '-', ''],
    );
    expect(row.rows).toEqual([{ last_used_at: null }]);
  });
});

describe('limits shared through Redis (REDIS_URL)', () => {
  const apps: TestApp[] = [];
  const harness = useTestApp({
    modules: ALL_MODULES,
    env: { ...LIMITS, REDIS_URL: 'redis://127.0.0.1:6379' },
  });

  beforeAll(async () => {
    // A second process on the same database and Redis.
    apps.push(
      await buildTestApp({
        database: harness.testDb.database,
        modules: ALL_MODULES,
        env: { ...LIMITS, REDIS_URL: 'redis://127.0.0.1:6379' },
      }),
    );
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it('counts an account’s logins across processes', async () => {
    const email = `shared-${randomUUID()}@example.test`;
    const login = (testApp: TestApp, address: string) =>
      testApp.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: address,
        payload: { email, password: 'some wrong password' },
      });
    const other = apps[0] as TestApp;
    expect((await login(harness.testApp, randomAddress())).statusCode).toBe(401);
    expect((await login(other, randomAddress())).statusCode).toBe(401);
    expect((await login(harness.testApp, randomAddress())).statusCode).toBe(401);
    expectRateLimited((await login(other, randomAddress())) as never);
  });

  it('shares session revocation: a logout in one process is refused at once in the other', async () => {
    const account = await createTestAccount(harness.testApp, { roles: ['user-metadata:reader'] });
    const session = await signIn(harness.testApp, account, { remoteAddress: randomAddress() });
    const other = apps[0] as TestApp;
    const me = (testApp: TestApp) =>
      testApp.app.inject({
        method: 'GET',
        url: '/auth/me',
        remoteAddress: randomAddress(),
        headers: { authorization: session.authorization },
      });
    expect((await me(other)).statusCode).toBe(200);
    await harness.testApp.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { authorization: session.authorization },
    });
    const refused = await me(other);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('auth.session_revoked');
  });
});
