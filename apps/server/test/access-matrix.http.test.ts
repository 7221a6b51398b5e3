import { randomUUID } from 'node:crypto';
import { createTotp } from '@keel/platform/auth';
import {
  createTestAccount,
  createTestApiKey,
  describeMismatches,
  findMatrixGaps,
  type MatrixCaller,
  type MatrixRoute,
  runAccessMatrix,
  signIn,
  TEST_PASSWORD,
  type TestAccount,
  useTestApp,
} from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// Every route of the server, called as every kind of caller: the access rule
// (public, authenticated, a permission) and the principal kind decide who gets
// in, never the request body. Callers who get in receive a valid request and
// an exact answer, so a route that lets them in but fails for another reason
// shows up too.

const harness = useTestApp({ modules: ALL_MODULES, env: { RATE_LIMIT_ENABLED: 'false' } });

const ADMIN_PERMISSIONS = [
  'platform:manage_users',
  'platform:manage_api_keys',
  'platform:read_audit',
  'platform:operate_background',
];
const ORIGIN = { requestId: null, ip: null, userAgent: null };
const NO_SUCH_TOKEN = 'A'.repeat(43);
const NEW_PASSWORD = 'a fresh passphrase for the matrix 7';

// Set in beforeAll.
const callers: MatrixCaller[] = [];
/** A second session per signed-in caller, for the cell that logs out. */
const spareSessions = new Map<string, string>();
let victim: TestAccount;
let admin: TestAccount;
let userRecordId: string;

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const uniqueEmail = (label: string) => `matrix-${label}-${randomUUID()}@example.test`;

beforeAll(async () => {
  const { testApp } = harness;
  callers.push({ name: 'anonymous' });

  for (const [name, roles, permissions] of [
    ['no-roles', [], []],
    ['reader', ['user-metadata:reader'], ['user-metadata:read']],
    ['writer', ['user-metadata:writer'], ['user-metadata:read', 'user-metadata:write']],
  ] as const) {
    const account = await createTestAccount(testApp, { roles: [...roles] });
    const session = await signIn(testApp, account);
    spareSessions.set(name, (await signIn(testApp, account)).authorization);
    callers.push({ name, authorization: session.authorization, kind: 'user', permissions, id: account.id });
  }

  // Signing in enrols the admin in MFA; the spare session answers with a recovery code.
  admin = await createTestAccount(testApp, { roles: ['platform:admin'] });
  const adminSession = await signIn(testApp, admin);
  spareSessions.set('admin', await signInWithRecoveryCode(admin, adminSession.recoveryCodes?.[0] ?? ''));
  callers.push({
    name: 'admin',
    authorization: adminSession.authorization,
    kind: 'user',
    permissions: ADMIN_PERMISSIONS,
    id: admin.id,
  });

  // An admin whose sessions never passed a second factor: they began before the
  // role was granted. The role's permissions are withheld until MFA.
  const unverified = await createTestAccount(testApp);
  const unverifiedSession = await signIn(testApp, unverified);
  spareSessions.set('admin-without-mfa', (await signIn(testApp, unverified)).authorization);
  await testApp.security.identity.accounts.grantRole(
    { id: admin.id },
    unverified.id,
    'platform:admin',
    ORIGIN,
  );
  callers.push({
    name: 'admin-without-mfa',
    authorization: unverifiedSession.authorization,
    kind: 'user',
    permissions: [],
    id: unverified.id,
  });

  callers.push(
    {
      name: 'key-reader',
      authorization: await createTestApiKey(testApp, ['user-metadata:read']),
      kind: 'api_key',
      permissions: ['user-metadata:read'],
    },
    {
      name: 'key-writer',
      authorization: await createTestApiKey(testApp, ['user-metadata:read', 'user-metadata:write']),
      kind: 'api_key',
      permissions: ['user-metadata:read', 'user-metadata:write'],
    },
  );

  victim = await createTestAccount(testApp);
  const record = await inject({
    method: 'POST',
    url: '/user',
    headers: { authorization: callerNamed('key-writer').authorization ?? '' },
    payload: { name: 'Matrix Record', email: uniqueEmail('record'), phone: '+14155552671' },
  });
  if (record.statusCode !== 201) throw new Error(`could not create a user record: ${record.body}`);
  userRecordId = record.json<{ user_id: string }>().user_id;
});

function callerNamed(name: string): MatrixCaller {
  const caller = callers.find((candidate) => candidate.name === name);
  if (caller === undefined) throw new Error(`no caller ${name}`);
  return caller;
}

async function signInWithRecoveryCode(account: TestAccount, code: string): Promise<string> {
  const login = await inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: account.email, password: account.password },
  });
  const verified = await inject({
    method: 'POST',
    url: '/auth/mfa/verify',
    payload: { mfa_token: login.json<{ mfa_token: string }>().mfa_token, code },
  });
  if (verified.statusCode !== 200) throw new Error(`recovery code sign-in failed: ${verified.body}`);
  return `Bearer ${verified.json<{ access_token: string }>().access_token}`;
}

/** The account a cell acts on: the caller's own, or the victim's (API keys own no account). */
const accountIdFor = (caller: MatrixCaller, object: string) =>
  object === 'own' ? (caller.id ?? randomUUID()) : victim.id;

const ownAccessRefused = { status: 409, code: 'auth.cannot_change_own_access' };

const routes: MatrixRoute[] = [
  // Public: everyone gets the same answer, credentials or not.
  { method: 'GET', path: '/health/live', access: 'public', allowed: 200 },
  { method: 'GET', path: '/health/ready', access: 'public', allowed: 200 },
  { method: 'GET', path: '/metrics', access: 'public', allowed: 200 },
  { method: 'GET', path: '/openapi.json', access: 'public', allowed: 200 },
  { method: 'GET', path: '/.well-known/jwks.json', access: 'public', allowed: 200 },
  {
    method: 'POST',
    path: '/auth/register',
    access: 'public',
    request: () => ({
      url: '/auth/register',
      payload: { email: uniqueEmail('register'), password: TEST_PASSWORD },
    }),
    allowed: 201,
  },
  {
    method: 'POST',
    path: '/auth/login',
    access: 'public',
    // A fresh unknown email per cell, so no cell meets another's lockout.
    request: () => ({
      url: '/auth/login',
      payload: { email: uniqueEmail('login'), password: TEST_PASSWORD },
    }),
    allowed: { status: 401, code: 'auth.invalid_credentials' },
  },
  {
    method: 'POST',
    path: '/auth/mfa/verify',
    access: 'public',
    request: () => ({ url: '/auth/mfa/verify', payload: { mfa_token: NO_SUCH_TOKEN, code: '123456' } }),
    allowed: { status: 401, code: 'auth.invalid_mfa_challenge' },
  },
  {
    method: 'POST',
    path: '/auth/mfa/challenge/enroll',
    access: 'public',
    request: () => ({ url: '/auth/mfa/challenge/enroll', payload: { mfa_token: NO_SUCH_TOKEN } }),
    allowed: { status: 401, code: 'auth.invalid_mfa_challenge' },
  },
  {
    method: 'POST',
    path: '/auth/token/refresh',
    access: 'public',
    request: () => ({ url: '/auth/token/refresh', payload: { refresh_token: NO_SUCH_TOKEN } }),
    allowed: { status: 401, code: 'auth.invalid_refresh_token' },
  },
  {
    method: 'POST',
    path: '/auth/password/reset-request',
    access: 'public',
    request: () => ({ url: '/auth/password/reset-request', payload: { email: uniqueEmail('reset') } }),
    allowed: 202,
  },
  {
    method: 'POST',
    path: '/auth/password/reset',
    access: 'public',
    request: () => ({
      url: '/auth/password/reset',
      payload: { token: NO_SUCH_TOKEN, new_password: NEW_PASSWORD },
    }),
    allowed: { status: 400, code: 'auth.invalid_reset_token' },
  },

  // Any verified caller; some operations are for signed-in people only.
  { method: 'GET', path: '/auth/me', access: 'authenticated', allowed: 200 },
  {
    method: 'POST',
    path: '/auth/mfa/enroll',
    access: 'authenticated',
    kinds: ['user'],
    allowed: 200,
    expect: { admin: { status: 409, code: 'auth.mfa_already_enabled' } },
  },
  {
    method: 'POST',
    path: '/auth/mfa/confirm',
    access: 'authenticated',
    kinds: ['user'],
    // A correct first code for a fresh enrolment, so only access decides.
    request: async ({ caller }) => ({
      url: '/auth/mfa/confirm',
      payload: { code: await firstCodeFor(caller) },
    }),
    allowed: 200,
    expect: { admin: { status: 409, code: 'auth.mfa_already_enabled' } },
  },
  {
    method: 'POST',
    path: '/auth/password/change',
    access: 'authenticated',
    kinds: ['user'],
    // A wrong current password: a success would end the spare sessions.
    request: () => ({
      url: '/auth/password/change',
      payload: { current_password: 'certainly not the password', new_password: NEW_PASSWORD },
    }),
    allowed: { status: 401, code: 'auth.invalid_credentials' },
  },

  // Permissions.
  { method: 'GET', path: '/admin/users', access: 'platform:manage_users', allowed: 200 },
  {
    method: 'POST',
    path: '/admin/users/:id/roles',
    access: 'platform:manage_users',
    objects: ['own', 'other'],
    // Own: the admin role, so a caller without the permission tries to make
    // themselves admin (and the admin's grant changes nothing).
    request: ({ caller, object }) => ({
      url: `/admin/users/${accountIdFor(caller, object)}/roles`,
      payload: { role: object === 'own' ? 'platform:admin' : 'user-metadata:reader' },
    }),
    allowed: 200,
  },
  {
    method: 'DELETE',
    path: '/admin/users/:id/roles/:role',
    access: 'platform:manage_users',
    objects: ['own', 'other'],
    // Own: the admin role itself, which nobody may take from themselves.
    request: ({ caller, object }) => ({
      url: `/admin/users/${accountIdFor(caller, object)}/roles/${object === 'own' ? 'platform:admin' : 'user-metadata:reader'}`,
    }),
    allowed: 200,
    expect: { admin: { own: ownAccessRefused } },
  },
  {
    method: 'POST',
    path: '/admin/users/:id/disable',
    access: 'platform:manage_users',
    objects: ['own', 'other'],
    request: ({ caller, object }) => ({ url: `/admin/users/${accountIdFor(caller, object)}/disable` }),
    allowed: 204,
    expect: { admin: { own: ownAccessRefused } },
  },
  {
    method: 'POST',
    path: '/admin/users/:id/enable',
    access: 'platform:manage_users',
    objects: ['own', 'other'],
    request: ({ caller, object }) => ({ url: `/admin/users/${accountIdFor(caller, object)}/enable` }),
    allowed: 204,
    expect: { admin: { own: ownAccessRefused } },
  },
  {
    method: 'POST',
    path: '/admin/api-keys',
    access: 'platform:manage_api_keys',
    request: () => ({
      url: '/admin/api-keys',
      payload: { name: 'matrix key', permissions: ['user-metadata:read'] },
    }),
    allowed: 201,
  },
  { method: 'GET', path: '/admin/api-keys', access: 'platform:manage_api_keys', allowed: 200 },
  {
    method: 'DELETE',
    path: '/admin/api-keys/:id',
    access: 'platform:manage_api_keys',
    request: async () => {
      const key = await harness.testApp.security.identity.apiKeys.createApiKey(
        { id: admin.id },
        { name: 'matrix key to revoke', permissions: ['user-metadata:read'] },
        ORIGIN,
      );
      return { url: `/admin/api-keys/${key.id}` };
    },
    allowed: 200,
  },
  { method: 'GET', path: '/admin/audit-events', access: 'platform:read_audit', allowed: 200 },
  { method: 'POST', path: '/admin/audit/verify', access: 'platform:read_audit', allowed: 200 },
  { method: 'GET', path: '/admin/events/dead-letters', access: 'platform:operate_background', allowed: 200 },
  {
    method: 'POST',
    path: '/admin/events/dead-letters/:subscriber/:eventId/replay',
    access: 'platform:operate_background',
    // Nothing is dead-lettered here: the admin gets in and is told so.
    request: () => ({ url: `/admin/events/dead-letters/orders.analytics/${randomUUID()}/replay` }),
    allowed: 404,
  },
  {
    method: 'GET',
    path: '/admin/jobs/:queue/dead-letters',
    access: 'platform:operate_background',
    request: () => ({ url: '/admin/jobs/no-such-queue/dead-letters' }),
    allowed: 404,
  },
  {
    method: 'POST',
    path: '/admin/jobs/:queue/dead-letters/:id/replay',
    access: 'platform:operate_background',
    request: () => ({ url: `/admin/jobs/no-such-queue/dead-letters/${randomUUID()}/replay` }),
    allowed: 404,
  },
  {
    method: 'POST',
    path: '/user',
    access: 'user-metadata:write',
    request: () => ({
      url: '/user',
      payload: { name: 'Matrix User', email: uniqueEmail('user'), phone: '+14155552671' },
    }),
    allowed: 201,
  },
  {
    method: 'GET',
    path: '/user/:id',
    access: 'user-metadata:read',
    // Service records belong to no principal: there is no own or other.
    request: () => ({ url: `/user/${userRecordId}` }),
    allowed: 200,
  },

  // Last, because they end sessions: logout on the spare session, logout-all on the main one.
  {
    method: 'POST',
    path: '/auth/logout',
    access: 'authenticated',
    kinds: ['user'],
    request: ({ caller }) => {
      const spare = spareSessions.get(caller.name);
      return { url: '/auth/logout', ...(spare === undefined ? {} : { headers: { authorization: spare } }) };
    },
    allowed: 204,
  },
  { method: 'POST', path: '/auth/logout-all', access: 'authenticated', kinds: ['user'], allowed: 200 },
];

/** Restarts the caller's enrolment and answers with a code for it (nothing for callers who cannot enrol). */
async function firstCodeFor(caller: MatrixCaller): Promise<string> {
  if (caller.kind !== 'user' || caller.id === undefined || caller.name === 'admin') return '000000';
  const enrolment = await harness.testApp.security.identity.accounts.enrollMfa({ id: caller.id });
  return createTotp({ clock: { now: () => new Date() } }).generate(enrolment.secret, new Date());
}

describe('access matrix', () => {
  it('withholds the permissions of an MFA role from a session that never passed MFA', async () => {
    const me = await inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: callerNamed('admin-without-mfa').authorization ?? '' },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ roles: ['platform:admin'], permissions: [], mfa_authenticated: false });
  });

  it('checks the permission before the body, so a caller without it learns nothing from validation', async () => {
    for (const [caller, status] of [
      ['anonymous', 401],
      ['key-reader', 403],
    ] as const) {
      const authorization = callerNamed(caller).authorization;
      const response = await inject({
        method: 'POST',
        url: '/user',
        headers: authorization === undefined ? {} : { authorization },
        payload: { unexpected: true },
      });
      expect(response.statusCode).toBe(status);
    }
  });

  it('lists every route of the server, so a new route fails here until it states who may call it', () => {
    // /docs/* is the documentation UI, which createHttpApp makes public.
    // /orders/* and /telemedicine/* have their own matrices (each service's
    // test/access-matrix.http.test.ts), which also check object-level rules.
    const gaps = findMatrixGaps(harness.testApp.app, routes, {
      isExempt: (route) =>
        route.path === '/docs' ||
        route.path.startsWith('/docs/') ||
        route.path.startsWith('/orders') ||
        route.path.startsWith('/telemedicine'),
    });
    expect(gaps).toEqual({ uncovered: [], unknown: [] });
  });

  it('refuses every route to callers without its access rule and lets the others through', async () => {
    const cells = await runAccessMatrix(harness.testApp.app, { callers, routes });
    expect(describeMismatches(cells)).toEqual([]);
    expect(cells).toHaveLength(
      routes.reduce((total, route) => total + (route.objects?.length ?? 1), 0) * callers.length,
    );
  });
});
