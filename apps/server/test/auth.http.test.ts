import { createTestAccount, signIn, TEST_PASSWORD, useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// A clock the tests move; everything (tokens, sessions, locks) reads it.
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };

const harness = useTestApp({
  modules: ALL_MODULES,
  clock,
  env: { RATE_LIMIT_ENABLED: 'false', AUTH_SESSION_CACHE_TTL_MS: '2000' },
});

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);

function login(email: string, password: string) {
  return inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
}

describe('register', () => {
  it('creates an account with no roles and refuses the same email in another case with auth.email_taken', async () => {
    const email = `Reg-${Date.now()}@Example.test`;
    const created = await inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email, password: TEST_PASSWORD },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ email, roles: [], status: 'active', mfa_enabled: false });

    const again = await inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: email.toLowerCase(), password: TEST_PASSWORD },
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('auth.email_taken');
  });

  it('rejects a short, a common and an email-containing password with auth.weak_password', async () => {
    for (const password of ['short', 'qwerty123456', 'weakling-user-pass-1234']) {
      const response = await inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: 'weakling-user@example.test', password },
      });
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.json()).toMatchObject({
        code: 'auth.weak_password',
        errors: [{ pointer: '/body/password' }],
      });
    }
  });

  it('refuses a service that offers no self-registration with auth.unknown_service', async () => {
    const response = await inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'svc@example.test', password: TEST_PASSWORD, service: 'user-metadata' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('auth.unknown_service');
  });

  it('rejects unknown fields, so a client cannot ask for roles', async () => {
    const response = await inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'roles@example.test', password: TEST_PASSWORD, roles: ['platform:admin'] },
    });
    expect(response.statusCode).toBe(400);
  });
});

describe('login', () => {
  it('returns tokens that authenticate getMe', async () => {
    const account = await createTestAccount(harness.testApp, { roles: ['user-metadata:reader'] });
    const response = await login(account.email.toUpperCase(), account.password);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ status: 'authenticated', token_type: 'Bearer', expires_in: 900 });
    expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const me = await inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({
      id: account.id,
      kind: 'user',
      roles: ['user-metadata:reader'],
      permissions: ['user-metadata:read'],
      mfa_authenticated: false,
      session_id: body.session_id,
    });
  });

  it('answers an unknown email exactly like a wrong password', async () => {
    const account = await createTestAccount(harness.testApp);
    const wrongPassword = await login(account.email, 'not the right password at all');
    const unknownEmail = await login(`nobody-${Date.now()}@example.test`, 'not the right password at all');
    for (const response of [wrongPassword, unknownEmail]) {
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.invalid_credentials');
    }
    const strip = (body: Record<string, unknown>) => ({ ...body, instance: undefined, traceId: undefined });
    expect(strip(wrongPassword.json())).toEqual(strip(unknownEmail.json()));
    expect(Object.keys(wrongPassword.headers).sort()).toEqual(Object.keys(unknownEmail.headers).sort());
  });

  it('locks an email after repeated failures, whether or not it has an account, and says when to retry', async () => {
    const account = await createTestAccount(harness.testApp);
    const unknown = `ghost-${Date.now()}@example.test`;
    for (const email of [account.email, unknown]) {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        expect((await login(email, 'wrong password, again')).statusCode).toBe(401);
      }
      const locked = await login(email, email === account.email ? account.password : 'anything at all');
      expect(locked.statusCode).toBe(429);
      expect(locked.json().code).toBe('auth.login_locked');
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    }
    // The lock grows: after it passes, one more failure locks for twice as long.
    offsetMs += 31_000;
    expect((await login(account.email, 'wrong password, again')).statusCode).toBe(401);
    const relocked = await login(account.email, account.password);
    expect(relocked.statusCode).toBe(429);
    expect(Number(relocked.headers['retry-after'])).toBeGreaterThan(30);
    offsetMs += 61_000;
    expect((await login(account.email, account.password)).statusCode).toBe(200);
  });

  it('refuses a disabled account with the same answer as a wrong password', async () => {
    const account = await createTestAccount(harness.testApp);
    const admin = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
    await harness.testApp.security.identity.accounts.setAccountStatus(
      { id: admin.id },
      account.id,
      'disabled',
      {
        requestId: null,
        ip: null,
        userAgent: null,
      },
    );
    const response = await login(account.email, account.password);
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('auth.invalid_credentials');
  });
});

describe('refresh tokens', () => {
  it('rotates on every use and revokes the whole family when a used token comes back', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const refresh = (token: string) =>
      inject({ method: 'POST', url: '/auth/token/refresh', payload: { refresh_token: token } });

    const first = await refresh(session.refreshToken);
    expect(first.statusCode).toBe(200);
    const rotated = first.json();
    expect(rotated.refresh_token).not.toBe(session.refreshToken);
    expect(rotated.session_id).toBe(session.sessionId);

    const reused = await refresh(session.refreshToken);
    expect(reused.statusCode).toBe(401);
    expect(reused.json().code).toBe('auth.refresh_token_reused');

    // The thief's replay ended the session for the rightful holder too.
    const afterReuse = await refresh(rotated.refresh_token);
    expect(afterReuse.statusCode).toBe(401);
    const me = await inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: `Bearer ${rotated.access_token}` },
    });
    expect(me.statusCode).toBe(401);
    expect(me.json().code).toBe('auth.session_revoked');

    const audit = await harness.testDb.database.pool.query(
      `select outcome from platform.audit_events where action = 'auth.refresh_token_reused' and resource_id = $1`,
      [session.sessionId],
    );
    expect(audit.rows).toEqual([{ outcome: 'denied' }]);
  });

  it('lets exactly one of many concurrent refreshes with one token win', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        inject({
          method: 'POST',
          url: '/auth/token/refresh',
          payload: { refresh_token: session.refreshToken },
        }),
      ),
    );
    expect(responses.filter((response) => response.statusCode === 200)).toHaveLength(1);
    expect(responses.filter((response) => response.statusCode === 401)).toHaveLength(19);
  });

  it('refuses an unknown refresh token and one past its idle lifetime', async () => {
    const unknown = await inject({
      method: 'POST',
      url: '/auth/token/refresh',
      payload: { refresh_token: 'A'.repeat(43) },
    });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().code).toBe('auth.invalid_refresh_token');

    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    offsetMs += 8 * 24 * 3_600_000;
    const idle = await inject({
      method: 'POST',
      url: '/auth/token/refresh',
      payload: { refresh_token: session.refreshToken },
    });
    expect(idle.statusCode).toBe(401);
    expect(idle.json().code).toBe('auth.invalid_refresh_token');
  });
});

describe('sessions', () => {
  it('logout ends this session only; logoutAll ends every session', async () => {
    const account = await createTestAccount(harness.testApp);
    const [one, two, three] = [
      await signIn(harness.testApp, account),
      await signIn(harness.testApp, account),
      await signIn(harness.testApp, account),
    ];
    const me = (authorization: string) =>
      inject({ method: 'GET', url: '/auth/me', headers: { authorization } });

    expect(
      (await inject({ method: 'POST', url: '/auth/logout', headers: { authorization: one.authorization } }))
        .statusCode,
    ).toBe(204);
    expect((await me(one.authorization)).statusCode).toBe(401);
    expect((await me(two.authorization)).statusCode).toBe(200);

    const all = await inject({
      method: 'POST',
      url: '/auth/logout-all',
      headers: { authorization: two.authorization },
    });
    expect(all.json()).toEqual({ sessions_revoked: 2 });
    expect((await me(two.authorization)).statusCode).toBe(401);
    expect((await me(three.authorization)).statusCode).toBe(401);
  });

  it('refuses a disabled user’s access token on the next request, before the token expires', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const admin = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
    const me = () =>
      inject({ method: 'GET', url: '/auth/me', headers: { authorization: session.authorization } });
    expect((await me()).statusCode).toBe(200);
    await harness.testApp.security.identity.accounts.setAccountStatus(
      { id: admin.id },
      account.id,
      'disabled',
      {
        requestId: null,
        ip: null,
        userAgent: null,
      },
    );
    const refused = await me();
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('auth.session_revoked');
  });

  it('refuses a disabled user within the cache TTL even when the cache was not told (another process disabled it)', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const me = () =>
      inject({ method: 'GET', url: '/auth/me', headers: { authorization: session.authorization } });
    expect((await me()).statusCode).toBe(200);
    // Disable behind the app's back: only the cache TTL (2 s here) stands between it and the refusal.
    await harness.testDb.database.pool.query(
      `update platform.accounts set status = 'disabled' where id = $1`,
      [account.id],
    );
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect((await me()).statusCode).toBe(401);
  });
});

describe('password change and reset', () => {
  it('changes the password after checking the current one and ends the other sessions', async () => {
    const account = await createTestAccount(harness.testApp);
    const current = await signIn(harness.testApp, account);
    const other = await signIn(harness.testApp, account);
    const change = (body: Record<string, string>) =>
      inject({
        method: 'POST',
        url: '/auth/password/change',
        headers: { authorization: current.authorization },
        payload: body,
      });

    const wrong = await change({
      current_password: 'not my password!!',
      new_password: 'a brand new passphrase 9',
    });
    expect(wrong.statusCode).toBe(401);
    const ok = await change({ current_password: account.password, new_password: 'a brand new passphrase 9' });
    expect(ok.statusCode).toBe(204);

    const me = (authorization: string) =>
      inject({ method: 'GET', url: '/auth/me', headers: { authorization } });
    expect((await me(current.authorization)).statusCode).toBe(200);
    expect((await me(other.authorization)).statusCode).toBe(401);
    expect((await login(account.email, account.password)).statusCode).toBe(401);
    expect((await login(account.email, 'a brand new passphrase 9')).statusCode).toBe(200);
  });

  it('resets with a single-use token sent through the notifier, for known emails only, with the same answer', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const before = harness.testApp.notifications.length;
    const known = await inject({
      method: 'POST',
      url: '/auth/password/reset-request',
      payload: { email: account.email },
    });
    const unknown = await inject({
      method: 'POST',
      url: '/auth/password/reset-request',
      payload: { email: `nobody-${Date.now()}@example.test` },
    });
    expect(known.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(known.body).toBe(unknown.body);
    await new Promise((resolve) => setImmediate(resolve));
    const sent = harness.testApp.notifications.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ to: account.email, template: 'password_reset' });
    const token = sent[0]?.secrets?.resetToken ?? '';

    const reset = (newPassword: string) =>
      inject({ method: 'POST', url: '/auth/password/reset', payload: { token, new_password: newPassword } });
    expect((await reset('reset passphrase number 1')).statusCode).toBe(204);
    const again = await reset('reset passphrase number 2');
    expect(again.statusCode).toBe(400);
    expect(again.json().code).toBe('auth.invalid_reset_token');

    expect(
      (await inject({ method: 'GET', url: '/auth/me', headers: { authorization: session.authorization } }))
        .statusCode,
    ).toBe(401);
    expect((await login(account.email, 'reset passphrase number 1')).statusCode).toBe(200);
  });

  it('refuses a reset token after 30 minutes', async () => {
    const account = await createTestAccount(harness.testApp);
    const before = harness.testApp.notifications.length;
    await inject({ method: 'POST', url: '/auth/password/reset-request', payload: { email: account.email } });
    await new Promise((resolve) => setImmediate(resolve));
    const token = harness.testApp.notifications[before]?.secrets?.resetToken ?? '';
    offsetMs += 31 * 60_000;
    const expired = await inject({
      method: 'POST',
      url: '/auth/password/reset',
      payload: { token, new_password: 'too late passphrase 77' },
    });
    expect(expired.statusCode).toBe(400);
    expect(expired.json().code).toBe('auth.invalid_reset_token');
  });
});

describe('JWKS', () => {
  it('publishes the public signing keys and nothing private', async () => {
    const response = await inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(response.statusCode).toBe(200);
    const { keys } = response.json();
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
  });
});
