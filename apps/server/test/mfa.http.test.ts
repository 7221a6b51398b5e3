import { createTotp } from '@keel/platform/auth';
import { createTestAccount, signIn, type TestAccount, useTestApp } from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// A clock the tests move; tokens, challenges and the server's TOTP verifier all read it.
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
const totp = createTotp({ clock });
const TIME_STEP_MS = 30_000;
const NO_ORIGIN = { requestId: null, ip: null, userAgent: null };

const harness = useTestApp({ modules: ALL_MODULES, clock, env: { RATE_LIMIT_ENABLED: 'false' } });

// A local shape rather than Parameters<app.inject>: that picks inject()'s last, no-argument overload.
type RequestOptions = {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  payload?: Record<string, unknown>;
};
const inject = (options: RequestOptions) => harness.testApp.app.inject(options);

/** Moves the clock into the next TOTP time step, so a fresh code is not a replay of the last one. */
function moveToNextTimeStep(): void {
  offsetMs += TIME_STEP_MS;
}

/** The TOTP code at the injected clock's time, as the user's authenticator app would show it. */
function currentCode(secret: string): Promise<string> {
  return totp.generate(secret, clock.now());
}

/** A 6-digit code that matches none of the steps the server could accept now (±2 for safety). */
async function wrongCode(secret: string): Promise<string> {
  const now = clock.now().getTime();
  const valid = new Set(
    await Promise.all(
      [-2, -1, 0, 1, 2].map((step) => totp.generate(secret, new Date(now + step * TIME_STEP_MS))),
    ),
  );
  for (let candidate = 0; ; candidate += 1) {
    const code = String(candidate).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

function login(account: { email: string; password: string }) {
  return inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: account.email, password: account.password },
  });
}

/** Logs in with the password and returns the mfa_token, checking that MFA was asked for. */
async function startChallenge(
  account: TestAccount,
  expected: { isEnrolmentRequired: boolean },
): Promise<string> {
  const response = await login(account);
  expect(response.statusCode).toBe(200);
  const body = response.json();
  expect(body).toMatchObject({ status: 'mfa_required', enrollment_required: expected.isEnrolmentRequired });
  return body.mfa_token;
}

function verifyMfa(mfaToken: string, code: string) {
  return inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: mfaToken, code } });
}

function enrollWithChallenge(mfaToken: string) {
  return inject({ method: 'POST', url: '/auth/mfa/challenge/enroll', payload: { mfa_token: mfaToken } });
}

function getMe(authorization: string) {
  return inject({ method: 'GET', url: '/auth/me', headers: { authorization } });
}

/** An admin account that has enrolled (through its login challenge) at the current clock time. */
async function createEnrolledAdmin(): Promise<{
  account: TestAccount;
  secret: string;
  recoveryCodes: string[];
  enrolledAt: Date;
}> {
  const account = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
  const enrolledAt = clock.now();
  const session = await signIn(harness.testApp, account, { at: enrolledAt });
  if (session.totpSecret === undefined || session.recoveryCodes === undefined) {
    throw new Error('signing in did not enrol the admin');
  }
  return { account, secret: session.totpSecret, recoveryCodes: session.recoveryCodes, enrolledAt };
}

function mfaRoles() {
  return [...harness.testApp.security.roles.roles.values()].filter((role) => role.requiresMfa);
}

describe('MFA enforcement', () => {
  it('answers mfa_required with enrolment and no tokens for every role that requires MFA', async () => {
    const roles = mfaRoles();
    // Guards the loop: an empty registry would make this test pass without checking anything.
    expect(roles.map((role) => role.name)).toContain('platform:admin');

    for (const role of roles) {
      const account = await createTestAccount(harness.testApp, { roles: [role.name] });
      const response = await login(account);
      expect(response.statusCode, role.name).toBe(200);
      const body = response.json();
      expect(body, role.name).toMatchObject({ status: 'mfa_required', enrollment_required: true });
      expect(body, role.name).not.toHaveProperty('access_token');
      expect(body, role.name).not.toHaveProperty('refresh_token');
      expect(typeof body.mfa_token, role.name).toBe('string');

      // The challenge token is a step in sign-in, never a credential.
      const me = await getMe(`Bearer ${body.mfa_token}`);
      expect(me.statusCode, role.name).toBe(401);
      expect(me.json().code, role.name).toBe('auth.invalid_token');
    }
  });

  it('enrols through the login challenge and then grants the role’s permissions to the MFA session', async () => {
    const roles = mfaRoles();
    expect(roles.length).toBeGreaterThan(0);

    for (const role of roles) {
      const account = await createTestAccount(harness.testApp, { roles: [role.name] });
      const mfaToken = await startChallenge(account, { isEnrolmentRequired: true });

      const enrolment = await enrollWithChallenge(mfaToken);
      expect(enrolment.statusCode, role.name).toBe(200);
      const { secret, otpauth_uri: otpauthUri, qr_code_svg: qrCodeSvg } = enrolment.json();
      expect(secret, role.name).toMatch(/^[A-Z2-7]{32}$/);
      const uri = new URL(otpauthUri);
      expect(uri.protocol).toBe('otpauth:');
      expect(uri.host).toBe('totp');
      expect(decodeURIComponent(uri.pathname)).toBe(`/Keel:${account.email}`);
      expect(uri.searchParams.get('issuer')).toBe('Keel');
      expect(uri.searchParams.get('secret')).toBe(secret);
      expect(qrCodeSvg.startsWith('<svg')).toBe(true);

      const verified = await verifyMfa(mfaToken, await currentCode(secret));
      expect(verified.statusCode, role.name).toBe(200);
      const body = verified.json();
      expect(body).toMatchObject({ status: 'authenticated', token_type: 'Bearer' });
      expect(body.recovery_codes).toHaveLength(10);
      expect(new Set(body.recovery_codes).size).toBe(10);
      for (const code of body.recovery_codes) expect(code).toMatch(/^[2-9a-z]{4}(-[2-9a-z]{4}){3}$/);

      const me = await getMe(`Bearer ${body.access_token}`);
      expect(me.statusCode).toBe(200);
      expect(me.json()).toMatchObject({
        id: account.id,
        roles: [role.name],
        mfa_enabled: true,
        mfa_authenticated: true,
        session_id: body.session_id,
      });
      expect(me.json().permissions).toEqual(expect.arrayContaining([...role.permissions]));
    }
  });

  it('asks an enrolled account for a code at the next login and starts an MFA session for a fresh one', async () => {
    const { account, secret } = await createEnrolledAdmin();
    moveToNextTimeStep();
    const mfaToken = await startChallenge(account, { isEnrolmentRequired: false });

    const verified = await verifyMfa(mfaToken, await currentCode(secret));
    expect(verified.statusCode).toBe(200);
    const body = verified.json();
    expect(body.status).toBe('authenticated');
    expect(body).not.toHaveProperty('recovery_codes');

    const me = await getMe(`Bearer ${body.access_token}`);
    expect(me.json()).toMatchObject({ mfa_enabled: true, mfa_authenticated: true });
    expect(me.json().permissions).toContain('platform:manage_users');
    const session = await harness.testDb.database.pool.query(
      'select authentication_methods, is_mfa_authenticated from platform.sessions where id = $1',
      [body.session_id],
    );
    expect(session.rows).toEqual([{ authentication_methods: ['pwd', 'otp'], is_mfa_authenticated: true }]);
  });
});

describe('TOTP replay', () => {
  it('refuses a code already accepted, on a new challenge in the same time step, with auth.invalid_mfa_code', async () => {
    const { account, secret, enrolledAt } = await createEnrolledAdmin();
    // The enrolment code itself was accepted: it cannot open the next login either.
    const enrolmentCode = await totp.generate(secret, enrolledAt);
    const afterEnrolment = await verifyMfa(
      await startChallenge(account, { isEnrolmentRequired: false }),
      enrolmentCode,
    );
    expect(afterEnrolment.statusCode).toBe(401);
    expect(afterEnrolment.json().code).toBe('auth.invalid_mfa_code');

    moveToNextTimeStep();
    const code = await currentCode(secret);
    const first = await verifyMfa(await startChallenge(account, { isEnrolmentRequired: false }), code);
    expect(first.statusCode).toBe(200);

    const replayed = await verifyMfa(await startChallenge(account, { isEnrolmentRequired: false }), code);
    expect(replayed.statusCode).toBe(401);
    expect(replayed.json().code).toBe('auth.invalid_mfa_code');
  });

  it('lets exactly one of two concurrent verifications with one code on two challenges win', async () => {
    const { account, secret } = await createEnrolledAdmin();
    moveToNextTimeStep();
    const challenges = [
      await startChallenge(account, { isEnrolmentRequired: false }),
      await startChallenge(account, { isEnrolmentRequired: false }),
    ];
    const code = await currentCode(secret);
    const responses = await Promise.all(challenges.map((mfaToken) => verifyMfa(mfaToken, code)));
    expect(responses.map((response) => response.statusCode).sort()).toEqual([200, 401]);
    const loser = responses.find((response) => response.statusCode === 401);
    expect(loser?.json().code).toBe('auth.invalid_mfa_code');
  });
});

describe('recovery codes', () => {
  it('accepts each code once, in any case and with spaces, and marks the session MFA-authenticated', async () => {
    const { account, recoveryCodes } = await createEnrolledAdmin();
    const [first, second, third] = recoveryCodes as [string, string, string];

    const used = await verifyMfa(await startChallenge(account, { isEnrolmentRequired: false }), first);
    expect(used.statusCode).toBe(200);
    const me = await getMe(`Bearer ${used.json().access_token}`);
    expect(me.json()).toMatchObject({ mfa_authenticated: true });
    expect(me.json().permissions).toContain('platform:manage_users');
    const session = await harness.testDb.database.pool.query(
      'select authentication_methods from platform.sessions where id = $1',
      [used.json().session_id],
    );
    expect(session.rows).toEqual([{ authentication_methods: ['pwd', 'recovery_code'] }]);

    const reused = await verifyMfa(await startChallenge(account, { isEnrolmentRequired: false }), first);
    expect(reused.statusCode).toBe(401);
    expect(reused.json().code).toBe('auth.invalid_mfa_code');

    const upperCase = await verifyMfa(
      await startChallenge(account, { isEnrolmentRequired: false }),
      second.toUpperCase(),
    );
    expect(upperCase.statusCode).toBe(200);
    // The variant and the original are one code: once used in either form, both are spent.
    const originalAfterVariant = await verifyMfa(
      await startChallenge(account, { isEnrolmentRequired: false }),
      second,
    );
    expect(originalAfterVariant.statusCode).toBe(401);

    const spaced = await verifyMfa(
      await startChallenge(account, { isEnrolmentRequired: false }),
      ` ${third.replaceAll('-', ' ')} `,
    );
    expect(spaced.statusCode).toBe(200);
    expect((await getMe(`Bearer ${spaced.json().access_token}`)).json().mfa_authenticated).toBe(true);

    const unused = await harness.testDb.database.pool.query(
      'select count(*)::int as count from platform.mfa_recovery_codes where account_id = $1 and used_at is null',
      [account.id],
    );
    expect(unused.rows).toEqual([{ count: 7 }]);
  });
});

describe('failed attempts', () => {
  it('spends the challenge after AUTH_MFA_MAX_ATTEMPTS wrong codes, refuses a correct code then, and audits each failure', async () => {
    const maxAttempts = harness.testApp.config.AUTH_MFA_MAX_ATTEMPTS;
    expect(maxAttempts).toBe(5);
    const { account, secret } = await createEnrolledAdmin();
    moveToNextTimeStep();
    const mfaToken = await startChallenge(account, { isEnrolmentRequired: false });
    const wrong = await wrongCode(secret);

    for (let attempt = 1; attempt < maxAttempts; attempt += 1) {
      const response = await verifyMfa(mfaToken, wrong);
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.invalid_mfa_code');
    }
    const last = await verifyMfa(mfaToken, wrong);
    expect(last.statusCode).toBe(401);
    expect(last.json().code).toBe('auth.mfa_attempts_exceeded');

    const code = await currentCode(secret);
    const spent = await verifyMfa(mfaToken, code);
    expect(spent.statusCode).toBe(401);
    expect(spent.json().code).toBe('auth.invalid_mfa_challenge');
    // The code was good: only the spent challenge refused it (and it was not consumed by that refusal).
    const fresh = await verifyMfa(await startChallenge(account, { isEnrolmentRequired: false }), code);
    expect(fresh.statusCode).toBe(200);

    const audit = await harness.testDb.database.pool.query(
      `select outcome, actor_id, changes from platform.audit_events
       where action = 'auth.mfa_failed' and resource_id = $1 order by (changes->>'failedAttempts')::int`,
      [account.id],
    );
    expect(audit.rows).toHaveLength(maxAttempts);
    expect(audit.rows.map((row) => row.changes.failedAttempts)).toEqual(
      Array.from({ length: maxAttempts }, (_, index) => index + 1),
    );
    for (const row of audit.rows) expect(row).toMatchObject({ outcome: 'failure', actor_id: account.id });
    // No audit line may carry the code that was tried.
    expect(JSON.stringify(audit.rows)).not.toContain(wrong);
  });
});

describe('challenge expiry', () => {
  it('refuses a verify or enrolment challenge older than AUTH_MFA_CHALLENGE_TTL_SECONDS with auth.invalid_mfa_challenge', async () => {
    const ttlMs = harness.testApp.config.AUTH_MFA_CHALLENGE_TTL_SECONDS * 1000;
    expect(ttlMs).toBe(300_000);
    const { account, secret } = await createEnrolledAdmin();
    const verifyToken = await startChallenge(account, { isEnrolmentRequired: false });
    const newcomer = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
    const enrolToken = await startChallenge(newcomer, { isEnrolmentRequired: true });

    offsetMs += ttlMs + 1_000;
    const code = await currentCode(secret);
    const expired = await verifyMfa(verifyToken, code);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().code).toBe('auth.invalid_mfa_challenge');

    const expiredEnrolment = await enrollWithChallenge(enrolToken);
    expect(expiredEnrolment.statusCode).toBe(401);
    expect(expiredEnrolment.json().code).toBe('auth.invalid_mfa_challenge');

    // Same code, fresh challenge: the refusal above was the expiry, not the code.
    expect(
      (await verifyMfa(await startChallenge(account, { isEnrolmentRequired: false }), code)).statusCode,
    ).toBe(200);
  });
});

describe('opt-in MFA', () => {
  it('lets an account without an MFA role enrol and confirm, and then asks it for a code at login', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const authorization = session.authorization;
    const enroll = () => inject({ method: 'POST', url: '/auth/mfa/enroll', headers: { authorization } });
    const confirm = (code: string) =>
      inject({ method: 'POST', url: '/auth/mfa/confirm', headers: { authorization }, payload: { code } });

    const enrolment = await enroll();
    expect(enrolment.statusCode).toBe(200);
    const { secret, otpauth_uri: otpauthUri, qr_code_svg: qrCodeSvg } = enrolment.json();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(decodeURIComponent(new URL(otpauthUri).pathname)).toBe(`/Keel:${account.email}`);
    expect(qrCodeSvg.startsWith('<svg')).toBe(true);

    const wrong = await confirm(await wrongCode(secret));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().code).toBe('auth.invalid_mfa_code');
    expect((await getMe(authorization)).json().mfa_enabled).toBe(false);

    const confirmed = await confirm(await currentCode(secret));
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json().recovery_codes).toHaveLength(10);
    expect((await getMe(authorization)).json().mfa_enabled).toBe(true);

    const again = await enroll();
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('auth.mfa_already_enabled');

    moveToNextTimeStep();
    const mfaToken = await startChallenge(account, { isEnrolmentRequired: false });
    const verified = await verifyMfa(mfaToken, await currentCode(secret));
    expect(verified.statusCode).toBe(200);
    expect((await getMe(`Bearer ${verified.json().access_token}`)).json().mfa_authenticated).toBe(true);
  });

  it('refuses to confirm when no enrolment was started with auth.mfa_not_pending', async () => {
    const account = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, account);
    const response = await inject({
      method: 'POST',
      url: '/auth/mfa/confirm',
      headers: { authorization: session.authorization },
      payload: { code: '123456' },
    });
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('auth.mfa_not_pending');
  });
});

describe('MFA-role permissions', () => {
  it('withholds a newly granted MFA role’s permissions from a password-only session with 403', async () => {
    const account = await createTestAccount(harness.testApp);
    const passwordOnly = await signIn(harness.testApp, account);
    const admin = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
    await harness.testApp.security.identity.accounts.grantRole(
      { id: admin.id },
      account.id,
      'platform:admin',
      NO_ORIGIN,
    );

    const me = await getMe(passwordOnly.authorization);
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ roles: ['platform:admin'], mfa_authenticated: false });
    expect(me.json().permissions).not.toContain('platform:manage_users');

    const listUsers = (authorization: string) =>
      inject({ method: 'GET', url: '/admin/users', headers: { authorization } });
    const refused = await listUsers(passwordOnly.authorization);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe('auth.forbidden');

    // The same account with a second factor does get them: the refusal was the missing MFA.
    const withMfa = await signIn(harness.testApp, account, { at: clock.now() });
    expect((await listUsers(withMfa.authorization)).statusCode).toBe(200);
  });
});

describe('MFA secret storage', () => {
  it('stores the pending and the enabled TOTP secret encrypted (kv1), never as base32', async () => {
    const { account, secret } = await createEnrolledAdmin();
    const readStored = async (id: string): Promise<string> => {
      const result = await harness.testDb.database.pool.query(
        'select mfa_secret from platform.accounts where id = $1',
        [id],
      );
      return result.rows[0].mfa_secret;
    };
    const enabled = await readStored(account.id);
    expect(enabled.startsWith('kv1.')).toBe(true);
    expect(enabled).not.toContain(secret);
    expect(enabled.toUpperCase()).not.toContain(secret);

    const optIn = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, optIn);
    const enrolment = await inject({
      method: 'POST',
      url: '/auth/mfa/enroll',
      headers: { authorization: session.authorization },
    });
    const pending = await readStored(optIn.id);
    expect(pending.startsWith('kv1.')).toBe(true);
    expect(pending).not.toContain(enrolment.json().secret);
  });
});

describe('enrolment challenge purpose', () => {
  it('refuses enrollMfaWithChallenge with a verify challenge and leaves the secret in place', async () => {
    const { account, secret } = await createEnrolledAdmin();
    const mfaToken = await startChallenge(account, { isEnrolmentRequired: false });
    const stored = await harness.testDb.database.pool.query(
      'select mfa_secret from platform.accounts where id = $1',
      [account.id],
    );

    const response = await enrollWithChallenge(mfaToken);
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('auth.invalid_mfa_challenge');

    const after = await harness.testDb.database.pool.query(
      'select mfa_secret from platform.accounts where id = $1',
      [account.id],
    );
    expect(after.rows).toEqual(stored.rows);
    moveToNextTimeStep();
    expect((await verifyMfa(mfaToken, await currentCode(secret))).statusCode).toBe(200);
  });
});
