import { randomUUID } from 'node:crypto';
import { sealAuditEvents } from '@keel/platform/audit';
import {
  createTestAccount,
  signIn,
  type TestAccount,
  tamperWithRow,
  useTestApp,
} from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// A clock the tests move; tokens, sessions, TOTP and API key expiry all read it.
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };

const harness = useTestApp({ modules: ALL_MODULES, clock, env: { RATE_LIMIT_ENABLED: 'false' } });

type Method = 'GET' | 'POST' | 'DELETE';

function call(method: Method, url: string, authorization?: string, payload?: Record<string, unknown>) {
  return harness.testApp.app.inject({
    method,
    url,
    headers: authorization === undefined ? {} : { authorization },
    ...(payload === undefined ? {} : { payload }),
  });
}

function login(email: string, password: string) {
  return call('POST', '/auth/login', undefined, { email, password });
}

/** A fresh platform admin, signed in with MFA at the test clock's time. */
async function signInAdmin(): Promise<{ account: TestAccount; authorization: string }> {
  const account = await createTestAccount(harness.testApp, { roles: ['platform:admin'] });
  const session = await signIn(harness.testApp, account, { at: clock.now() });
  return { account, authorization: session.authorization };
}

type AuditRow = {
  action: string;
  actor_type: string;
  actor_id: string | null;
  resource_id: string | null;
  changes: Record<string, unknown> | null;
};

async function auditRows(resourceId: string): Promise<AuditRow[]> {
  const result = await harness.testDb.database.pool.query<AuditRow>(
    `select action, actor_type, actor_id, resource_id, changes from platform.audit_events
     where resource_id = $1 order by occurred_at, id`,
    [resourceId],
  );
  return result.rows;
}

const USER_KEYS = ['created_at', 'email', 'id', 'mfa_enabled', 'roles', 'status'];
const API_KEY_KEYS = [
  'created_at',
  'created_by',
  'expires_at',
  'id',
  'last_used_at',
  'name',
  'permissions',
  'revoked_at',
];
const API_KEY_FORMAT = /^keel_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/;

describe('grantRole and revokeRole', () => {
  it('changes the permissions of the target’s existing access token on its next request, and audits both', async () => {
    const admin = await signInAdmin();
    const target = await createTestAccount(harness.testApp);
    const targetSession = await signIn(harness.testApp, target);
    const getUser = () => call('GET', `/user/${randomUUID()}`, targetSession.authorization);
    const me = () => call('GET', '/auth/me', targetSession.authorization);

    expect((await getUser()).statusCode).toBe(403);

    const granted = await call('POST', `/admin/users/${target.id}/roles`, admin.authorization, {
      role: 'user-metadata:reader',
    });
    expect(granted.statusCode).toBe(200);
    expect(granted.json()).toEqual({ id: target.id, roles: ['user-metadata:reader'] });

    const afterGrant = await me();
    expect(afterGrant.statusCode).toBe(200);
    expect(afterGrant.json()).toMatchObject({
      roles: ['user-metadata:reader'],
      permissions: ['user-metadata:read'],
    });
    const allowed = await getUser();
    expect(allowed.statusCode).toBe(404);

    const revoked = await call(
      'DELETE',
      `/admin/users/${target.id}/roles/user-metadata:reader`,
      admin.authorization,
    );
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toEqual({ id: target.id, roles: [] });

    const refused = await getUser();
    expect(refused.statusCode).toBe(403);
    expect((await me()).json()).toMatchObject({ roles: [], permissions: [] });

    const rows = (await auditRows(target.id)).filter((row) => row.action.startsWith('auth.role_'));
    expect(rows).toEqual([
      {
        action: 'auth.role_granted',
        actor_type: 'user',
        actor_id: admin.account.id,
        resource_id: target.id,
        changes: { role: 'user-metadata:reader' },
      },
      {
        action: 'auth.role_revoked',
        actor_type: 'user',
        actor_id: admin.account.id,
        resource_id: target.id,
        changes: { role: 'user-metadata:reader' },
      },
    ]);
  });

  it('refuses an undeclared role with auth.unknown_role and an unknown account with auth.account_not_found', async () => {
    const admin = await signInAdmin();
    const target = await createTestAccount(harness.testApp);

    const unknownRole = await call('POST', `/admin/users/${target.id}/roles`, admin.authorization, {
      role: 'nope:role',
    });
    expect(unknownRole.statusCode).toBe(400);
    expect(unknownRole.json().code).toBe('auth.unknown_role');

    const unknownAccount = await call('POST', `/admin/users/${randomUUID()}/roles`, admin.authorization, {
      role: 'user-metadata:reader',
    });
    expect(unknownAccount.statusCode).toBe(404);
    expect(unknownAccount.json().code).toBe('auth.account_not_found');

    const revokeUnknownAccount = await call(
      'DELETE',
      `/admin/users/${randomUUID()}/roles/user-metadata:reader`,
      admin.authorization,
    );
    expect(revokeUnknownAccount.statusCode).toBe(404);
    expect(revokeUnknownAccount.json().code).toBe('auth.account_not_found');
  });

  it('refuses an admin revoking their own platform:admin with auth.cannot_change_own_access', async () => {
    const admin = await signInAdmin();
    const response = await call(
      'DELETE',
      `/admin/users/${admin.account.id}/roles/platform:admin`,
      admin.authorization,
    );
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('auth.cannot_change_own_access');
    const me = await call('GET', '/auth/me', admin.authorization);
    expect(me.json().roles).toEqual(['platform:admin']);
  });
});

describe('listUsers', () => {
  // A tag no other account in this file starts with, so prefix filters see only these.
  const tag = `lst${randomUUID().replaceAll('-', '').slice(0, 10)}`;

  async function listUsers(authorization: string, query: Record<string, string>) {
    const response = await call('GET', `/admin/users?${new URLSearchParams(query)}`, authorization);
    expect(response.statusCode).toBe(200);
    return response.json() as {
      users: { id: string; email: string; status: string; roles: string[] }[];
      next_cursor: string | null;
    };
  }

  it('filters by email prefix case-insensitively, taking % and _ literally', async () => {
    const admin = await signInAdmin();
    const underscore = await createTestAccount(harness.testApp, { email: `${tag}a_1@example.test` });
    const letter = await createTestAccount(harness.testApp, { email: `${tag}ab2@example.test` });
    const percent = await createTestAccount(harness.testApp, { email: `${tag}c%3@example.test` });

    const byUnderscore = await listUsers(admin.authorization, { email_prefix: `${tag.toUpperCase()}A_` });
    expect(byUnderscore.users.map((user) => user.id)).toEqual([underscore.id]);

    const byPercent = await listUsers(admin.authorization, { email_prefix: `${tag}c%` });
    expect(byPercent.users.map((user) => user.id)).toEqual([percent.id]);

    // As a wildcard, `%` would match every account with the tag.
    const wildcard = await listUsers(admin.authorization, { email_prefix: `${tag}%` });
    expect(wildcard.users).toEqual([]);

    const all = await listUsers(admin.authorization, { email_prefix: tag });
    expect(all.users.map((user) => user.id).sort()).toEqual([underscore.id, letter.id, percent.id].sort());
  });

  it('filters by status and role, and never shows password or MFA secrets', async () => {
    const admin = await signInAdmin();
    const disabled = await createTestAccount(harness.testApp, { email: `${tag}d1@example.test` });
    const writer = await createTestAccount(harness.testApp, {
      email: `${tag}w1@example.test`,
      roles: ['user-metadata:writer'],
    });
    expect((await call('POST', `/admin/users/${disabled.id}/disable`, admin.authorization)).statusCode).toBe(
      204,
    );

    const byStatus = await listUsers(admin.authorization, { email_prefix: tag, status: 'disabled' });
    expect(byStatus.users.map((user) => user.id)).toEqual([disabled.id]);
    expect(byStatus.users[0]?.status).toBe('disabled');
    const active = await listUsers(admin.authorization, { email_prefix: tag, status: 'active' });
    expect(active.users.map((user) => user.id)).not.toContain(disabled.id);
    expect(active.users.map((user) => user.id)).toContain(writer.id);

    const byRole = await listUsers(admin.authorization, { email_prefix: tag, role: 'user-metadata:writer' });
    expect(byRole.users.map((user) => user.id)).toEqual([writer.id]);
    expect(byRole.users[0]?.roles).toEqual(['user-metadata:writer']);

    const admins = await listUsers(admin.authorization, { role: 'platform:admin', limit: '200' });
    expect(admins.users.map((user) => user.id)).toContain(admin.account.id);
    for (const user of admins.users) expect(user.roles).toContain('platform:admin');

    const raw = await call('GET', `/admin/users?limit=200`, admin.authorization);
    for (const user of raw.json().users) expect(Object.keys(user).sort()).toEqual(USER_KEYS);
    expect(raw.body).not.toMatch(/password|mfa_secret|\$argon2|kv1/);
  });

  it('walks every matching account once with limit 2 and a cursor', async () => {
    const admin = await signInAdmin();
    const pageTag = `${tag}pg`;
    const created: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      created.push(
        (await createTestAccount(harness.testApp, { email: `${pageTag}${index}@example.test` })).id,
      );
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await listUsers(admin.authorization, {
        email_prefix: pageTag,
        limit: '2',
        ...(cursor === null ? {} : { cursor }),
      });
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((user) => user.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...created].sort());
  });

  it('rejects a malformed cursor and a limit above 200 with 400', async () => {
    const admin = await signInAdmin();
    expect((await call('GET', '/admin/users?cursor=not-a-uuid', admin.authorization)).statusCode).toBe(400);
    expect((await call('GET', '/admin/users?limit=201', admin.authorization)).statusCode).toBe(400);
  });
});

describe('disableUser and enableUser', () => {
  it('refuses the target’s tokens, login and refresh at once, and lets them log in again once enabled', async () => {
    const admin = await signInAdmin();
    const target = await createTestAccount(harness.testApp);
    const session = await signIn(harness.testApp, target);
    const me = () => call('GET', '/auth/me', session.authorization);
    expect((await me()).statusCode).toBe(200);

    const disabled = await call('POST', `/admin/users/${target.id}/disable`, admin.authorization);
    expect(disabled.statusCode).toBe(204);

    const refused = await me();
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('auth.session_revoked');

    const loginRefused = await login(target.email, target.password);
    expect(loginRefused.statusCode).toBe(401);
    expect(loginRefused.json().code).toBe('auth.invalid_credentials');

    const refreshRefused = await call('POST', '/auth/token/refresh', undefined, {
      refresh_token: session.refreshToken,
    });
    expect(refreshRefused.statusCode).toBe(401);

    const enabled = await call('POST', `/admin/users/${target.id}/enable`, admin.authorization);
    expect(enabled.statusCode).toBe(204);
    expect((await login(target.email, target.password)).statusCode).toBe(200);
    // Enabling does not bring back the sessions that disabling ended.
    expect((await me()).statusCode).toBe(401);

    const rows = (await auditRows(target.id)).filter((row) => row.action.startsWith('auth.account_'));
    expect(rows.map((row) => [row.action, row.actor_id])).toEqual([
      ['auth.account_provisioned', null],
      ['auth.account_disabled', admin.account.id],
      ['auth.account_enabled', admin.account.id],
    ]);
    expect(rows[1]?.changes).toEqual({ sessionsRevoked: 1 });
  });

  it('refuses an admin disabling themselves with 409 and an unknown account with 404', async () => {
    const admin = await signInAdmin();
    const self = await call('POST', `/admin/users/${admin.account.id}/disable`, admin.authorization);
    expect(self.statusCode).toBe(409);
    expect(self.json().code).toBe('auth.cannot_change_own_access');
    expect((await call('GET', '/auth/me', admin.authorization)).statusCode).toBe(200);

    const unknown = await call('POST', `/admin/users/${randomUUID()}/disable`, admin.authorization);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('auth.account_not_found');
  });
});

describe('API keys', () => {
  async function createKey(authorization: string, body: Record<string, unknown>) {
    return call('POST', '/admin/api-keys', authorization, body);
  }

  async function listAllKeys(authorization: string) {
    const response = await call('GET', '/admin/api-keys?limit=200', authorization);
    expect(response.statusCode).toBe(200);
    return response;
  }

  it('creates a scoped key shown once that reads users but cannot write them or administer', async () => {
    const admin = await signInAdmin();
    const created = await createKey(admin.authorization, {
      name: 'reader key',
      permissions: ['user-metadata:read'],
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const body = created.json();
    expect(Object.keys(body).sort()).toEqual([...API_KEY_KEYS, 'key'].sort());
    expect(body).toMatchObject({
      name: 'reader key',
      permissions: ['user-metadata:read'],
      created_by: admin.account.id,
      expires_at: null,
      revoked_at: null,
      last_used_at: null,
    });
    expect(body.key).toMatch(API_KEY_FORMAT);
    expect(body.key.slice(5, 37)).toBe(body.id.replaceAll('-', ''));
    const authorization = `Bearer ${body.key}`;

    expect((await call('GET', `/user/${randomUUID()}`, authorization)).statusCode).toBe(404);
    const write = await call('POST', '/user', authorization, {
      name: 'Ada',
      email: `ada-${randomUUID()}@example.test`,
      phone: '+14155552671',
    });
    expect(write.statusCode).toBe(403);

    const me = await call('GET', '/auth/me', authorization);
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({
      id: body.id,
      kind: 'api_key',
      roles: [],
      permissions: ['user-metadata:read'],
      mfa_authenticated: false,
    });

    for (const [method, url] of [
      ['GET', '/admin/users'],
      ['GET', '/admin/api-keys'],
      ['GET', '/admin/audit-events'],
      ['POST', '/admin/audit/verify'],
      ['POST', `/admin/users/${admin.account.id}/disable`],
    ] as const) {
      const response = await call(method, url, authorization);
      expect(response.statusCode, `${method} ${url}`).toBe(403);
    }
    const createWithKey = await createKey(authorization, { name: 'x', permissions: ['user-metadata:read'] });
    expect(createWithKey.statusCode).toBe(403);

    const audit = (await auditRows(body.id)).find((row) => row.action === 'auth.api_key_created');
    expect(audit).toEqual({
      action: 'auth.api_key_created',
      actor_type: 'user',
      actor_id: admin.account.id,
      resource_id: body.id,
      changes: { name: 'reader key', permissions: ['user-metadata:read'] },
    });
  });

  it('lists keys without their secrets, shows last use, and stores only a 32-byte hash of the secret', async () => {
    const admin = await signInAdmin();
    const created = (
      await createKey(admin.authorization, { name: 'listed key', permissions: ['user-metadata:read'] })
    ).json();
    const secret = created.key.slice(38);
    expect(secret).toHaveLength(43);

    const beforeUse = await listAllKeys(admin.authorization);
    expect(beforeUse.json().api_keys.find((key: { id: string }) => key.id === created.id)).toMatchObject({
      last_used_at: null,
    });

    expect((await call('GET', `/user/${randomUUID()}`, `Bearer ${created.key}`)).statusCode).toBe(404);

    const afterUse = await listAllKeys(admin.authorization);
    expect(afterUse.body).not.toContain(secret);
    expect(afterUse.body).not.toMatch(/secret|hash|"key"/);
    for (const key of afterUse.json().api_keys) expect(Object.keys(key).sort()).toEqual(API_KEY_KEYS);
    const listed = afterUse.json().api_keys.find((key: { id: string }) => key.id === created.id);
    expect(listed).toMatchObject({ name: 'listed key', permissions: ['user-metadata:read'] });
    expect(listed.last_used_at).not.toBeNull();

    const stored = await harness.testDb.database.pool.query<Record<string, unknown>>(
      'select * from platform.api_keys where id = $1',
      [created.id],
    );
    const row = stored.rows[0] ?? {};
    const secretHash = row.secret_hash as Buffer;
    expect(Buffer.isBuffer(secretHash)).toBe(true);
    expect(secretHash).toHaveLength(32);
    // Not the secret itself in binary form either.
    expect(secretHash.equals(Buffer.from(secret, 'base64url'))).toBe(false);
    for (const value of Object.values(row)) {
      const renderings = Buffer.isBuffer(value)
        ? [
            value.toString('hex'),
            value.toString('base64'),
            value.toString('base64url'),
            value.toString('latin1'),
          ]
        : [JSON.stringify(value) ?? ''];
      for (const rendering of renderings) expect(rendering).not.toContain(secret);
    }
  });

  it('refuses a revoked key on the next request and a key with one character of its secret changed', async () => {
    const admin = await signInAdmin();
    const created = (
      await createKey(admin.authorization, { name: 'revoked key', permissions: ['user-metadata:read'] })
    ).json();
    const authorization = `Bearer ${created.key}`;
    const getUser = (header: string) => call('GET', `/user/${randomUUID()}`, header);
    expect((await getUser(authorization)).statusCode).toBe(404);

    const lastCharacter = created.key.at(-1);
    const tampered = `${created.key.slice(0, -1)}${lastCharacter === 'A' ? 'B' : 'A'}`;
    expect(tampered).toMatch(API_KEY_FORMAT);
    const refusedTampered = await getUser(`Bearer ${tampered}`);
    expect(refusedTampered.statusCode).toBe(401);
    expect(refusedTampered.json().code).toBe('auth.invalid_api_key');
    const middle = 38 + 20;
    const tamperedMiddle = `${created.key.slice(0, middle)}${created.key[middle] === 'x' ? 'y' : 'x'}${created.key.slice(middle + 1)}`;
    expect((await getUser(`Bearer ${tamperedMiddle}`)).statusCode).toBe(401);
    // The real key still works: a wrong secret does not disable it.
    expect((await getUser(authorization)).statusCode).toBe(404);

    const revoked = await call('DELETE', `/admin/api-keys/${created.id}`, admin.authorization);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().revoked_at).not.toBeNull();

    const refused = await getUser(authorization);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('auth.invalid_api_key');

    const unknown = await call('DELETE', `/admin/api-keys/${randomUUID()}`, admin.authorization);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('auth.api_key_not_found');

    expect((await auditRows(created.id)).map((row) => [row.action, row.actor_id])).toEqual([
      ['auth.api_key_created', admin.account.id],
      ['auth.api_key_revoked', admin.account.id],
    ]);
  });

  it('rejects platform permissions, unknown permissions and an expiry in the past with 400', async () => {
    const admin = await signInAdmin();
    for (const permission of ['platform:manage_users', 'platform:read_audit', 'nope:thing']) {
      const response = await createKey(admin.authorization, { name: 'bad', permissions: [permission] });
      expect(response.statusCode, permission).toBe(400);
      expect(response.json().code).toBe('auth.unknown_permission');
    }
    const mixed = await createKey(admin.authorization, {
      name: 'bad',
      permissions: ['user-metadata:read', 'platform:manage_api_keys'],
    });
    expect(mixed.statusCode).toBe(400);

    const past = await createKey(admin.authorization, {
      name: 'expired',
      permissions: ['user-metadata:read'],
      expires_at: new Date(clock.now().getTime() - 60_000).toISOString(),
    });
    expect(past.statusCode).toBe(400);
    expect(past.json().errors).toEqual([expect.objectContaining({ pointer: '/body/expires_at' })]);

    const names = (await listAllKeys(admin.authorization))
      .json()
      .api_keys.map((key: { name: string }) => key.name);
    expect(names).not.toContain('bad');
    expect(names).not.toContain('expired');
  });

  it('refuses a key once the clock passes its expires_at', async () => {
    const admin = await signInAdmin();
    const expiresAt = new Date(clock.now().getTime() + 60_000);
    const created = await createKey(admin.authorization, {
      name: 'short-lived key',
      permissions: ['user-metadata:read'],
      expires_at: expiresAt.toISOString(),
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().expires_at).toBe(expiresAt.toISOString());
    const authorization = `Bearer ${created.json().key}`;
    expect((await call('GET', `/user/${randomUUID()}`, authorization)).statusCode).toBe(404);

    offsetMs += 61_000;
    const refused = await call('GET', `/user/${randomUUID()}`, authorization);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('auth.invalid_api_key');
  });
});

describe('listAuditEvents', () => {
  type EventBody = {
    id: string;
    occurred_at: string;
    action: string;
    actor_id: string | null;
    resource_id: string | null;
    changes: Record<string, unknown> | null;
  };

  async function listEvents(authorization: string, query: Record<string, string>) {
    const response = await call('GET', `/admin/audit-events?${new URLSearchParams(query)}`, authorization);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as { events: EventBody[]; next_cursor: string | null };
  }

  function expectNewestFirst(events: EventBody[]): void {
    const times = events.map((event) => Date.parse(event.occurred_at));
    expect(times).toEqual([...times].sort((left, right) => right - left));
  }

  it('lists the admin’s own sign-in events newest first, filtered by actor and action', async () => {
    const admin = await signInAdmin();
    const byActor = await listEvents(admin.authorization, { actor_id: admin.account.id });
    expect(byActor.events.map((event) => event.action)).toEqual([
      'auth.login_succeeded',
      'auth.mfa_enabled',
      'auth.mfa_challenged',
    ]);
    expectNewestFirst(byActor.events);
    for (const event of byActor.events) expect(event.actor_id).toBe(admin.account.id);

    const logins = await listEvents(admin.authorization, {
      actor_id: admin.account.id,
      action: 'auth.login_succeeded',
    });
    expect(logins.events).toHaveLength(1);
    expect(logins.events[0]).toMatchObject({
      actor_type: 'user',
      resource_type: 'session',
      outcome: 'success',
      changes: { authenticationMethods: ['pwd', 'otp'] },
    });

    const allLogins = await listEvents(admin.authorization, { action: 'auth.login_succeeded', limit: '200' });
    expect(allLogins.events.length).toBeGreaterThan(1);
    for (const event of allLogins.events) expect(event.action).toBe('auth.login_succeeded');
    expectNewestFirst(allLogins.events);
  });

  it('filters by resource and a from/to window, and pages with a cursor without duplicates', async () => {
    const admin = await signInAdmin();
    const target = await createTestAccount(harness.testApp);
    const grant = (role: string) =>
      call('POST', `/admin/users/${target.id}/roles`, admin.authorization, { role });
    expect((await grant('user-metadata:reader')).statusCode).toBe(200);
    offsetMs += 60_000;
    expect((await grant('user-metadata:writer')).statusCode).toBe(200);
    offsetMs += 60_000;
    const revoke = await call(
      'DELETE',
      `/admin/users/${target.id}/roles/user-metadata:reader`,
      admin.authorization,
    );
    expect(revoke.statusCode).toBe(200);

    const all = await listEvents(admin.authorization, { resource_id: target.id });
    expect(all.events.map((event) => [event.action, event.changes?.role ?? null])).toEqual([
      ['auth.role_revoked', 'user-metadata:reader'],
      ['auth.role_granted', 'user-metadata:writer'],
      ['auth.role_granted', 'user-metadata:reader'],
      ['auth.account_provisioned', null],
    ]);
    expectNewestFirst(all.events);
    expect(all.next_cursor).toBeNull();
    const [revokedEvent, writerEvent, readerEvent] = all.events;

    const granted = await listEvents(admin.authorization, {
      resource_id: target.id,
      action: 'auth.role_granted',
    });
    expect(granted.events.map((event) => event.id)).toEqual([writerEvent?.id, readerEvent?.id]);

    // from is inclusive, to exclusive: the window holds the writer grant only.
    const window = await listEvents(admin.authorization, {
      resource_id: target.id,
      from: writerEvent?.occurred_at ?? '',
      to: revokedEvent?.occurred_at ?? '',
    });
    expect(window.events.map((event) => event.id)).toEqual([writerEvent?.id]);
    const since = await listEvents(admin.authorization, {
      resource_id: target.id,
      from: writerEvent?.occurred_at ?? '',
    });
    expect(since.events.map((event) => event.id)).toEqual([revokedEvent?.id, writerEvent?.id]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await listEvents(admin.authorization, {
        resource_id: target.id,
        limit: '2',
        ...(cursor === null ? {} : { cursor }),
      });
      expect(page.events.length).toBeLessThanOrEqual(2);
      seen.push(...page.events.map((event) => event.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(2);
    expect(seen).toEqual(all.events.map((event) => event.id));
  });

  it('refuses a signed-in user without platform:admin with 403 and a caller without a token with 401', async () => {
    const user = await createTestAccount(harness.testApp, { roles: ['user-metadata:writer'] });
    const session = await signIn(harness.testApp, user);
    for (const [method, url] of [
      ['GET', '/admin/audit-events'],
      ['POST', '/admin/audit/verify'],
      ['GET', '/admin/users'],
      ['GET', '/admin/api-keys'],
    ] as const) {
      const forbidden = await call(method, url, session.authorization);
      expect(forbidden.statusCode, `${method} ${url}`).toBe(403);
      const anonymous = await call(method, url);
      expect(anonymous.statusCode, `${method} ${url}`).toBe(401);
    }
  });
});

// Last in the file: tampering breaks this database's chain for good.
describe('verifyAuditChain', () => {
  it('reports a sealed chain as intact, then names the event whose outcome was edited behind the trigger', async () => {
    const admin = await signInAdmin();
    const sealing = await sealAuditEvents(harness.testDb.database);
    expect(sealing.sealed).toBeGreaterThan(0);

    const intact = await call('POST', '/admin/audit/verify', admin.authorization);
    expect(intact.statusCode).toBe(200);
    expect(intact.json()).toMatchObject({ is_intact: true, unsealed: 0 });
    expect(intact.json().sealed).toBeGreaterThanOrEqual(sealing.sealed);

    // The append-only trigger refuses the same edit when it is on.
    await expect(
      harness.testDb.database.pool.query(
        `update platform.audit_events set outcome = 'failure' where actor_id = $1`,
        [admin.account.id],
      ),
    ).rejects.toThrow(/append-only/);

    const sealed = await harness.testDb.database.pool.query<{ id: string; position: string }>(
      `select e.id::text as id, s.position::text as position
       from platform.audit_events e
       join platform.audit_seals s on s.event_id = e.id and s.occurred_at = e.occurred_at
       where e.actor_id = $1 and e.action = 'auth.login_succeeded'`,
      [admin.account.id],
    );
    expect(sealed.rows).toHaveLength(1);
    const { id: eventId, position } = sealed.rows[0] ?? { id: '', position: '' };
    await tamperWithRow(
      harness.testDb,
      `update platform.audit_events set outcome = 'failure' where id = $1::bigint`,
      [eventId],
    );

    const broken = await call('POST', '/admin/audit/verify', admin.authorization);
    expect(broken.statusCode).toBe(200);
    expect(broken.json()).toEqual({
      is_intact: false,
      first_broken_position: Number(position),
      event_id: eventId,
      reason: 'hash_mismatch',
    });
  });
});
