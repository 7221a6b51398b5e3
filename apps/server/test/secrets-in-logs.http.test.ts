import { randomBytes, randomUUID } from 'node:crypto';
import { createTotp } from '@keel/platform/auth';
import { createLogNotifier } from '@keel/platform/notifier';
import { createLogger } from '@keel/platform/observability';
import { captureLogs, createTestAccount, useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// Drives every flow that handles a secret with the most verbose logging, keeps
// every secret it sees, and then looks for each in the captured log lines and
// in the audit trail. A secret is a password (right or wrong), a token of any
// kind, a TOTP secret or code, a recovery code or an API key.

let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
const totp = createTotp({ clock });

const harness = useTestApp({
  modules: ALL_MODULES,
  clock,
  env: { RATE_LIMIT_ENABLED: 'false', LOG_LEVEL: 'trace' },
});

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Every secret the test saw, by value, with a label that names it without repeating it. */
const secrets = new Map<string, string>();
function remember(label: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new Error(`expected a value for ${label}`);
  secrets.set(value, label);
  return value;
}

const uniquePassword = (label: string) =>
  remember(`${label} password`, `${label} passphrase ${randomUUID()}`);
const uniqueEmail = () => `secrets-${randomUUID()}@example.test`;

// Short secrets (6-digit codes) could occur by chance inside longer runs of
// digits and letters (ids, hashes) or as the microseconds of a timestamp
// (`12:33:37.123456+00`); they count only as a word of their own.
function occursIn(text: string, secret: string): boolean {
  if (secret.length >= 16) return text.includes(secret);
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![0-9A-Za-z.])${escaped}(?![0-9A-Za-z])`).test(text);
}

function leaksIn(text: string): string[] {
  return [...secrets].filter(([value]) => occursIn(text, value)).map(([, label]) => label);
}

async function auditTrailText(): Promise<string> {
  const result = await harness.testDb.database.pool.query<{ row: string }>(
    'select event::text as row from platform.audit_events event',
  );
  return result.rows.map((row) => row.row).join('\n');
}

async function expectNoLeaks(): Promise<void> {
  expect(secrets.size).toBeGreaterThan(0);
  expect(leaksIn(harness.testApp.logs.text()), 'secrets in the logs').toEqual([]);
  expect(leaksIn(await auditTrailText()), 'secrets in the audit trail').toEqual([]);
}

/** A 6-digit code that is not valid for the secret now (nor one step either side). */
async function wrongCodeFor(secret: string): Promise<string> {
  const now = clock.now().getTime();
  const valid = new Set(
    await Promise.all([-30_000, 0, 30_000].map((shift) => totp.generate(secret, new Date(now + shift)))),
  );
  let candidate = 123_456;
  while (valid.has(String(candidate))) candidate += 1;
  return String(candidate);
}

/** Recovery codes in the form they were shown and in the canonical form the server hashes. */
function rememberRecoveryCodes(codes: string[] | undefined): string[] {
  if (codes === undefined || codes.length === 0) throw new Error('expected recovery codes');
  for (const [index, code] of codes.entries()) {
    remember(`recovery code ${index}`, code);
    remember(`recovery code ${index} (canonical)`, code.replace(/-/g, ''));
  }
  return codes;
}

function rememberTokens(label: string, body: { access_token?: string; refresh_token?: string }) {
  return {
    accessToken: remember(`${label} access token`, body.access_token),
    refreshToken: remember(`${label} refresh token`, body.refresh_token),
  };
}

async function login(email: string, password: string) {
  return inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
}

// Shared by the MFA and API key tests.
let adminAccessToken = '';

describe('secrets in logs', () => {
  it('logs at trace level, so the checks below look at everything the app says', async () => {
    const response = await inject({ method: 'GET', url: '/health/live' });
    expect(response.statusCode).toBe(200);
    const lines = harness.testApp.logs.lines();
    expect(lines.some((line) => line.route === '/health/live' && line.msg === 'request completed')).toBe(
      true,
    );
    expect(harness.testApp.config.LOG_LEVEL).toBe('trace');
  });

  it('never logs a password or a session token through registration, sign-in, refresh and logout', async () => {
    const email = uniqueEmail();
    const password = uniquePassword('registered');
    expect(
      (await inject({ method: 'POST', url: '/auth/register', payload: { email, password } })).statusCode,
    ).toBe(201);
    const weak = remember('weak password', `zq${randomBytes(3).toString('hex')}`);
    expect(
      (
        await inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: uniqueEmail(), password: weak },
        })
      ).statusCode,
    ).toBe(400);

    expect((await login(email, uniquePassword('wrong'))).statusCode).toBe(401);
    expect((await login(uniqueEmail(), uniquePassword('unknown account'))).statusCode).toBe(401);
    const signedIn = await login(email, password);
    expect(signedIn.statusCode).toBe(200);
    const first = rememberTokens('login', signedIn.json());
    expect(
      (await inject({ method: 'GET', url: '/auth/me', headers: bearer(first.accessToken) })).statusCode,
    ).toBe(200);

    const refreshed = await inject({
      method: 'POST',
      url: '/auth/token/refresh',
      payload: { refresh_token: first.refreshToken },
    });
    expect(refreshed.statusCode).toBe(200);
    const second = rememberTokens('refreshed', refreshed.json());
    // Replaying the used token ends the session and writes an audit event about it.
    const replayed = await inject({
      method: 'POST',
      url: '/auth/token/refresh',
      payload: { refresh_token: first.refreshToken },
    });
    expect(replayed.json().code).toBe('auth.refresh_token_reused');
    const unknownRefresh = remember('unknown refresh token', randomBytes(32).toString('base64url'));
    expect(
      (
        await inject({
          method: 'POST',
          url: '/auth/token/refresh',
          payload: { refresh_token: unknownRefresh },
        })
      ).statusCode,
    ).toBe(401);

    // Credentials that do not verify: garbage, a tampered signature, an ended session.
    const garbage = remember('garbage bearer token', `not-a-jwt-${randomUUID()}`);
    const tampered = remember(
      'tampered access token',
      `${second.accessToken.slice(0, -4)}${second.accessToken.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`,
    );
    for (const token of [garbage, tampered, second.accessToken]) {
      expect((await inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })).statusCode).toBe(401);
    }

    const again = rememberTokens('second login', (await login(email, password)).json());
    expect(
      (await inject({ method: 'POST', url: '/auth/logout', headers: bearer(again.accessToken) })).statusCode,
    ).toBe(204);
    await expectNoLeaks();
  });

  it('never logs a password through password change and reset, nor the reset token', async () => {
    const account = await createTestAccount(harness.testApp, { password: uniquePassword('original') });
    const session = rememberTokens('change', (await login(account.email, account.password)).json());
    const change = (current: string, next: string) =>
      inject({
        method: 'POST',
        url: '/auth/password/change',
        headers: bearer(session.accessToken),
        payload: { current_password: current, new_password: next },
      });
    expect((await change(uniquePassword('wrong current'), uniquePassword('refused new'))).statusCode).toBe(
      401,
    );
    const changed = uniquePassword('changed');
    expect((await change(account.password, changed)).statusCode).toBe(204);

    const before = harness.testApp.notifications.length;
    expect(
      (
        await inject({
          method: 'POST',
          url: '/auth/password/reset-request',
          payload: { email: account.email },
        })
      ).statusCode,
    ).toBe(202);
    await new Promise((resolve) => setImmediate(resolve));
    const token = remember('reset token', harness.testApp.notifications[before]?.secrets?.resetToken);
    const reset = (resetToken: string, newPassword: string) =>
      inject({
        method: 'POST',
        url: '/auth/password/reset',
        payload: { token: resetToken, new_password: newPassword },
      });
    expect((await reset(token, uniquePassword('reset'))).statusCode).toBe(204);
    expect((await reset(token, uniquePassword('reset again'))).statusCode).toBe(400);
    const forged = remember('forged reset token', randomBytes(32).toString('base64url'));
    expect((await reset(forged, uniquePassword('forged reset'))).statusCode).toBe(400);
    await expectNoLeaks();
  });

  it('never logs the TOTP secret, a code, the MFA token or a recovery code through sign-in enrolment and MFA', async () => {
    const admin = await createTestAccount(harness.testApp, {
      roles: ['platform:admin'],
      password: uniquePassword('admin'),
    });
    const challenge = async () => {
      const response = await login(admin.email, admin.password);
      expect(response.json().status).toBe('mfa_required');
      return remember('mfa token', response.json<{ mfa_token: string }>().mfa_token);
    };
    const verify = (mfaToken: string, code: string) =>
      inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: mfaToken, code } });

    const enrolToken = await challenge();
    const enrolment = await inject({
      method: 'POST',
      url: '/auth/mfa/challenge/enroll',
      payload: { mfa_token: enrolToken },
    });
    expect(enrolment.statusCode).toBe(200);
    const secret = remember('TOTP secret', enrolment.json().secret);
    remember('otpauth URI', enrolment.json().otpauth_uri);
    expect(
      (await verify(enrolToken, remember('wrong TOTP code', await wrongCodeFor(secret)))).statusCode,
    ).toBe(401);
    const enrolled = await verify(
      enrolToken,
      remember('first TOTP code', await totp.generate(secret, clock.now())),
    );
    expect(enrolled.statusCode).toBe(200);
    rememberTokens('enrolled', enrolled.json());
    const recoveryCodes = rememberRecoveryCodes(enrolled.json().recovery_codes);

    // A later time step, so the code is not a replay of the first.
    offsetMs += 60_000;
    const withCode = await verify(
      await challenge(),
      remember('second TOTP code', await totp.generate(secret, clock.now())),
    );
    expect(withCode.statusCode).toBe(200);
    adminAccessToken = rememberTokens('TOTP sign-in', withCode.json()).accessToken;

    const withRecoveryCode = await verify(await challenge(), recoveryCodes[0]?.toUpperCase() ?? '');
    expect(withRecoveryCode.statusCode).toBe(200);
    rememberTokens('recovery sign-in', withRecoveryCode.json());
    const spent = await verify(await challenge(), recoveryCodes[0] ?? '');
    expect(spent.statusCode).toBe(401);
    await expectNoLeaks();
  });

  it('never logs the TOTP secret, codes or recovery codes through enrolment by a signed-in user', async () => {
    const account = await createTestAccount(harness.testApp, { password: uniquePassword('enrolling') });
    const session = rememberTokens('enrolling', (await login(account.email, account.password)).json());
    const enrolment = await inject({
      method: 'POST',
      url: '/auth/mfa/enroll',
      headers: bearer(session.accessToken),
    });
    expect(enrolment.statusCode).toBe(200);
    const secret = remember('signed-in TOTP secret', enrolment.json().secret);
    remember('signed-in otpauth URI', enrolment.json().otpauth_uri);
    const confirm = (code: string) =>
      inject({
        method: 'POST',
        url: '/auth/mfa/confirm',
        headers: bearer(session.accessToken),
        payload: { code },
      });
    expect((await confirm(remember('wrong confirm code', await wrongCodeFor(secret)))).statusCode).toBe(401);
    const confirmed = await confirm(remember('confirm code', await totp.generate(secret, clock.now())));
    expect(confirmed.statusCode).toBe(200);
    rememberRecoveryCodes(confirmed.json().recovery_codes);
    await expectNoLeaks();
  });

  it('never logs an API key when it is created, used, refused or revoked', async () => {
    expect(adminAccessToken).not.toBe('');
    const created = await inject({
      method: 'POST',
      url: '/admin/api-keys',
      headers: bearer(adminAccessToken),
      payload: { name: 'secrets test', permissions: ['user-metadata:read', 'user-metadata:write'] },
    });
    expect(created.statusCode).toBe(201);
    const key = remember('API key', created.json().key);
    const record = await inject({
      method: 'POST',
      url: '/user',
      headers: bearer(key),
      payload: { name: 'Secret Keeper', email: uniqueEmail(), phone: '+14155552671' },
    });
    expect(record.statusCode).toBe(201);
    expect(
      (await inject({ method: 'GET', url: `/user/${record.json().user_id}`, headers: bearer(key) }))
        .statusCode,
    ).toBe(200);

    const wrongSecret = remember(
      'API key with a wrong secret',
      `${key.slice(0, -4)}${key.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`,
    );
    expect((await inject({ method: 'GET', url: '/auth/me', headers: bearer(wrongSecret) })).statusCode).toBe(
      401,
    );
    expect(
      (
        await inject({
          method: 'DELETE',
          url: `/admin/api-keys/${created.json().id}`,
          headers: bearer(adminAccessToken),
        })
      ).statusCode,
    ).toBe(200);
    expect((await inject({ method: 'GET', url: '/auth/me', headers: bearer(key) })).statusCode).toBe(401);
    await expectNoLeaks();
  });

  it('stores no secret it saw in plaintext in any platform table', async () => {
    const { pool } = harness.testDb.database;
    const tables = await pool.query<{ name: string }>(
      `select table_name as name from information_schema.tables
        where table_schema = 'platform' and table_type = 'BASE TABLE' order by table_name`,
    );
    expect(tables.rows.map((table) => table.name)).toEqual(
      expect.arrayContaining(['accounts', 'api_keys', 'refresh_tokens', 'password_reset_tokens']),
    );
    const leaks: string[] = [];
    for (const { name } of tables.rows) {
      const rows = await pool.query<{ row: string }>(`select t::text as row from platform."${name}" t`);
      for (const label of leaksIn(rows.rows.map((row) => row.row).join('\n')))
        leaks.push(`${name}: ${label}`);
    }
    expect(leaks).toEqual([]);
  });

  it('has the log notifier withhold the secrets of a notification unless told to reveal them', async () => {
    const resetToken = randomBytes(32).toString('base64url');
    const notification = {
      to: 'someone@example.test',
      template: 'password_reset',
      data: { expiresInMinutes: 30 },
      secrets: { resetToken },
    };
    const withheld = captureLogs();
    await createLogNotifier({
      logger: createLogger({ level: 'trace', destination: withheld.stream }),
      isRevealingSecrets: false,
    }).send(notification);
    expect(withheld.logs.text()).not.toContain(resetToken);
    expect(withheld.logs.lines()).toEqual([
      expect.objectContaining({
        notification: expect.objectContaining({
          template: 'password_reset',
          withheldSecrets: ['resetToken'],
        }),
      }),
    ]);

    // The same capture sees the token when the notifier is told to reveal it,
    // so the absence above is not an artefact of the capture.
    const revealed = captureLogs();
    await createLogNotifier({
      logger: createLogger({ level: 'trace', destination: revealed.stream }),
      isRevealingSecrets: true,
    }).send(notification);
    expect(revealed.logs.text()).toContain(resetToken);
  });
});
