import { randomUUID } from 'node:crypto';
import { createTotp } from '../auth/mfa/index.ts';
import type { TestApp } from './test-app.ts';

/** A password that passes the policy; tests never need to invent one. */
export const TEST_PASSWORD = 'correct horse battery staple 42';

export type TestAccount = { id: string; email: string; password: string; roles: string[] };

export type SignedIn = {
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  authorization: string;
  /** The TOTP secret, when signing in enrolled the account. */
  totpSecret?: string;
  recoveryCodes?: string[];
};

/** Creates an account with roles straight through the identity service (no HTTP, no limits). */
export async function createTestAccount(
  testApp: TestApp,
  options: { roles?: string[]; email?: string; password?: string } = {},
): Promise<TestAccount> {
  const email = options.email ?? `user-${randomUUID()}@example.test`;
  const password = options.password ?? TEST_PASSWORD;
  const created = await testApp.security.identity.accounts.provisionAccount({
    email,
    password,
    roles: options.roles ?? [],
  });
  return { id: created.id, email, password, roles: created.roles };
}

type LoginBody =
  | {
      status: 'authenticated';
      access_token: string;
      refresh_token: string;
      session_id: string;
      recovery_codes?: string[];
    }
  | { status: 'mfa_required'; mfa_token: string; enrollment_required: boolean };

/**
 * Signs in over HTTP the way a client would, completing MFA when asked: it
 * enrols with the login challenge (returning the secret) or answers with a
 * code from `totpSecret`. TOTP codes are taken at `at` (default: the app's
 * clock) so that two sign-ins of one account in the same 30 s can use different steps.
 */
export async function signIn(
  testApp: TestApp,
  account: { email: string; password: string },
  options: { totpSecret?: string; at?: Date; remoteAddress?: string } = {},
): Promise<SignedIn> {
  const { app } = testApp;
  const login = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: account.email, password: account.password },
    // Per-address login limits shared through Redis outlive a test run: a
    // test with tight limits signs in from an address of its own.
    ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress }),
  });
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`);
  const body = login.json<LoginBody>();
  if (body.status === 'authenticated') return toSignedIn(body);

  let secret = options.totpSecret;
  if (body.enrollment_required) {
    const enrolment = await app.inject({
      method: 'POST',
      url: '/auth/mfa/challenge/enroll',
      payload: { mfa_token: body.mfa_token },
    });
    if (enrolment.statusCode !== 200) throw new Error(`enrolment failed: ${enrolment.body}`);
    secret = enrolment.json<{ secret: string }>().secret;
  }
  if (secret === undefined) throw new Error('the account has MFA: pass totpSecret');
  const at = options.at ?? testApp.clock.now();
  const code = await createTotp({ clock: { now: () => at } }).generate(secret, at);
  const verified = await app.inject({
    method: 'POST',
    url: '/auth/mfa/verify',
    payload: { mfa_token: body.mfa_token, code },
  });
  if (verified.statusCode !== 200) throw new Error(`MFA failed: ${verified.statusCode} ${verified.body}`);
  return { ...toSignedIn(verified.json()), totpSecret: secret };
}

function toSignedIn(body: {
  access_token: string;
  refresh_token: string;
  session_id: string;
  recovery_codes?: string[];
}): SignedIn {
  return {
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    sessionId: body.session_id,
    authorization: `Bearer ${body.access_token}`,
    ...(body.recovery_codes ? { recoveryCodes: body.recovery_codes } : {}),
  };
}

/**
 * An API key with the given permissions, created by a fresh admin account
 * through the identity service. Returns the `Authorization` header value.
 */
export async function createTestApiKey(testApp: TestApp, permissions: string[]): Promise<string> {
  const admin = await createTestAccount(testApp, { roles: ['platform:admin'] });
  const key = await testApp.security.identity.apiKeys.createApiKey(
    { id: admin.id },
    { name: `test ${permissions.join(' ')}`, permissions },
    { requestId: null, ip: null, userAgent: null },
  );
  return `Bearer ${key.key}`;
}
