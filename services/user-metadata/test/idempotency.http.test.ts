import { randomUUID } from 'node:crypto';
import { hashRequest, startIdempotencyPurge } from '@keel/platform/idempotency';
import { createLogger } from '@keel/platform/observability';
import { createTestApiKey, useTestApp } from '@keel/platform/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { userMetadataModule } from '../src/index.ts';
import {
  apiKeyIdOf,
  buildIdempotencyKey,
  buildUserInput,
  expectProblem,
  USER_METADATA_PERMISSIONS,
  type UserInput,
} from './factories.ts';

// Rate limits off: one test races 50 requests.
const harness = useTestApp({ modules: [userMetadataModule], env: { RATE_LIMIT_ENABLED: 'false' } });

// Keys are scoped per caller: the API key's id is this file's scope.
let authorization: string;
let scope: string;
beforeAll(async () => {
  authorization = await createTestApiKey(harness.testApp, USER_METADATA_PERMISSIONS);
  scope = apiKeyIdOf(authorization);
});

function createUser(payload: unknown, key: string | undefined, caller: string = authorization) {
  return harness.testApp.app.inject({
    method: 'POST',
    url: '/user',
    payload: payload as object,
    headers:
      key === undefined ? { authorization: caller } : { authorization: caller, 'idempotency-key': key },
  });
}

async function countUsersWithEmail(email: string): Promise<number> {
  const result = await harness.testDb.database.pool.query<{ count: string }>(
    'select count(*) from user_metadata.users where lower(email) = lower($1)',
    [email],
  );
  return Number(result.rows[0]?.count);
}

type KeyRow = {
  scope: string;
  method: string;
  route: string;
  status: string;
  response_status: number | null;
};

async function findKeyRows(key: string): Promise<KeyRow[]> {
  const result = await harness.testDb.database.pool.query<KeyRow>(
    `select scope, method, route, status, response_status
       from platform.idempotency_keys where key = $1 order by route`,
    [key],
  );
  return result.rows;
}

/** An in-progress claim as an earlier request (possibly a crashed process) would have left it. */
async function insertInProgressClaim(key: string, body: UserInput, lockedUntil: 'past' | 'future') {
  await harness.testDb.database.pool.query(
    `insert into platform.idempotency_keys (scope, method, route, key, request_hash, status, lock_token, locked_until)
     values ($5, 'POST', '/user', $1, $2, 'in_progress', $3,
             now() + ($4 * interval '1 minute'))`,
    [key, hashRequest(body), randomUUID(), lockedUntil === 'past' ? -5 : 5, scope],
  );
}

describe('Idempotency-Key on POST /user', () => {
  it("records the key as completed for the caller's scope (its API key id), method POST and route template /user", async () => {
    const key = buildIdempotencyKey();
    const response = await createUser(buildUserInput(), key);
    expect(response.statusCode).toBe(201);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    expect(await findKeyRows(key)).toEqual([
      { scope, method: 'POST', route: '/user', status: 'completed', response_status: 201 },
    ]);
    const stored = await harness.testDb.database.pool.query('select 1 from platform.api_keys where id = $1', [
      scope,
    ]);
    expect(stored.rowCount).toBe(1);
  });

  it('keeps callers apart: another caller with the same key gets its own result, never a replay', async () => {
    const other = await createTestApiKey(harness.testApp, USER_METADATA_PERMISSIONS);
    const key = buildIdempotencyKey();
    const mine = buildUserInput();
    const theirs = buildUserInput();
    const first = await createUser(mine, key);
    expect(first.statusCode).toBe(201);
    // A different body under the same key is no key_reused for another caller: the key is theirs to use.
    const second = await createUser(theirs, key, other);
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.json().user_id).not.toBe(first.json().user_id);

    // Each still replays its own response.
    const myRetry = await createUser(mine, key);
    expect(myRetry.headers['idempotent-replayed']).toBe('true');
    expect(myRetry.json().user_id).toBe(first.json().user_id);
    const theirRetry = await createUser(theirs, key, other);
    expect(theirRetry.headers['idempotent-replayed']).toBe('true');
    expect(theirRetry.json().user_id).toBe(second.json().user_id);
    expect((await findKeyRows(key)).map((row) => row.scope).sort()).toEqual(
      [scope, apiKeyIdOf(other)].sort(),
    );
  });

  it('replays the stored 201 with Idempotent-Replayed: true, the same body and Location', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    const first = await createUser(input, key);
    expect(first.statusCode).toBe(201);

    const retry = await createUser(input, key);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['content-type']).toMatch(/^application\/json/);
    expect(retry.body).toBe(first.body);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(await countUsersWithEmail(input.email)).toBe(1);
  });

  it('treats a body with the same fields in another order as the same request', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    const first = await createUser(input, key);
    expect(first.statusCode).toBe(201);

    const reordered = { phone: input.phone, email: input.email, name: input.name };
    const retry = await createUser(reordered, key);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toBe(first.body);
  });

  it('creates exactly one user when 50 identical requests with one key race', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    const responses = await Promise.all(Array.from({ length: 50 }, () => createUser(input, key)));

    const created = responses.filter((response) => response.statusCode === 201);
    const busy = responses.filter((response) => response.statusCode !== 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((response) => response.body)).size).toBe(1);
    expect(new Set(created.map((response) => response.headers.location)).size).toBe(1);
    // Exactly one response is the original; any other 201 is a replay of it.
    expect(created.filter((response) => response.headers['idempotent-replayed'] === undefined)).toHaveLength(
      1,
    );
    for (const response of busy) {
      expectProblem(response, 409, 'idempotency.in_progress');
      expect(response.headers['retry-after']).toBeDefined();
    }
    expect(await countUsersWithEmail(input.email)).toBe(1);

    const retry = await createUser(input, key);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toBe(created[0]?.body);
    expect(retry.headers.location).toBe(created[0]?.headers.location);
    expect(await countUsersWithEmail(input.email)).toBe(1);
  });

  it('rejects the same key with a different body with 422 idempotency.key_reused', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    expect((await createUser(input, key)).statusCode).toBe(201);

    const other = buildUserInput();
    const response = await createUser(other, key);
    expectProblem(response, 422, 'idempotency.key_reused');
    expect(await countUsersWithEmail(other.email)).toBe(0);

    const changedName = await createUser({ ...input, name: 'Changed' }, key);
    expectProblem(changedName, 422, 'idempotency.key_reused');
  });

  it.each([
    ['256 characters long', 'k'.repeat(256)],
    ['containing a space', 'my key'],
    ['containing a tab', 'my\tkey'],
    ['containing a non-ASCII character', 'clé'],
    ['empty', ''],
  ])('rejects a key %s with 400 idempotency.key_invalid and creates nothing', async (_label, key) => {
    const input = buildUserInput();
    const response = await createUser(input, key);
    const problem = expectProblem(response, 400, 'idempotency.key_invalid');
    expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/headers/idempotency-key' })]);
    expect(await countUsersWithEmail(input.email)).toBe(0);
  });

  it('accepts a key of exactly 255 printable characters', async () => {
    const key = `${randomUUID()}${'~'.repeat(255 - 36)}`;
    const response = await createUser(buildUserInput(), key);
    expect(response.statusCode).toBe(201);
  });

  it('replays a first 409 users.email_taken for the same key and body', async () => {
    const input = buildUserInput();
    const owner = await createUser(input, undefined);
    expect(owner.statusCode).toBe(201);

    const key = buildIdempotencyKey();
    const duplicate = { ...input, name: 'Duplicate' };
    const first = await createUser(duplicate, key);
    const firstProblem = expectProblem(first, 409, 'users.email_taken');
    expect(firstProblem.location).toBe(owner.headers.location);

    const retry = await createUser(duplicate, key);
    const retryProblem = expectProblem(retry, 409, 'users.email_taken');
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retryProblem).toEqual(firstProblem);
    expect(retry.headers.location).toBe(owner.headers.location);
    expect(await findKeyRows(key)).toEqual([
      expect.objectContaining({ status: 'completed', response_status: 409 }),
    ]);
  });

  it('does not store a schema validation failure: the corrected request with the same key succeeds', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    expectProblem(await createUser({ ...input, email: 'not-an-email' }, key), 400, 'request.invalid');
    expect(await findKeyRows(key)).toEqual([]);

    const corrected = await createUser(input, key);
    expect(corrected.statusCode).toBe(201);
    expect(corrected.headers['idempotent-replayed']).toBeUndefined();
  });

  it('does not store a business validation failure: the corrected request with the same key succeeds', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    expectProblem(await createUser({ ...input, phone: '+1 000' }, key), 400, 'users.phone_invalid');
    expectProblem(await createUser({ ...input, name: '   ' }, key), 400, 'users.name_invalid');
    expect(await findKeyRows(key)).toEqual([]);

    const corrected = await createUser(input, key);
    expect(corrected.statusCode).toBe(201);
    expect(corrected.headers['idempotent-replayed']).toBeUndefined();
    expect(await countUsersWithEmail(input.email)).toBe(1);
  });

  it('scopes keys per route and method: a key used elsewhere does not affect POST /user', async () => {
    const key = buildIdempotencyKey();
    await harness.testDb.database.pool.query(
      `insert into platform.idempotency_keys
         (scope, method, route, key, request_hash, status, response_status, response_headers, response_body, completed_at)
       values ($2, 'POST', '/orders', $1, 'another-hash', 'completed', 201, '{}', '{}', now()),
              ($2, 'PUT', '/user', $1, 'another-hash', 'completed', 200, '{}', '{}', now())`,
      [key, scope],
    );

    const input = buildUserInput();
    const response = await createUser(input, key);
    expect(response.statusCode).toBe(201);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    expect(await countUsersWithEmail(input.email)).toBe(1);
    expect(await findKeyRows(key)).toEqual([
      expect.objectContaining({ method: 'POST', route: '/orders', response_status: 201 }),
      expect.objectContaining({ method: 'PUT', route: '/user', response_status: 200 }),
      expect.objectContaining({ method: 'POST', route: '/user', status: 'completed', response_status: 201 }),
    ]);
  });

  it('takes over an abandoned claim whose lock has expired and processes the request', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    await insertInProgressClaim(key, input, 'past');

    const response = await createUser(input, key);
    expect(response.statusCode).toBe(201);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    expect(await countUsersWithEmail(input.email)).toBe(1);
    expect(await findKeyRows(key)).toEqual([
      expect.objectContaining({ status: 'completed', response_status: 201 }),
    ]);

    const retry = await createUser(input, key);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toBe(response.body);
  });

  it('answers 409 idempotency.in_progress while another claim on the key is still locked', async () => {
    const key = buildIdempotencyKey();
    const input = buildUserInput();
    await insertInProgressClaim(key, input, 'future');

    const response = await createUser(input, key);
    expectProblem(response, 409, 'idempotency.in_progress');
    expect(response.headers['retry-after']).toBeDefined();
    expect(await countUsersWithEmail(input.email)).toBe(0);
    expect(await findKeyRows(key)).toEqual([expect.objectContaining({ status: 'in_progress' })]);
  });

  it('checks the body before the lock: a different body on a locked key gets 422 idempotency.key_reused', async () => {
    const key = buildIdempotencyKey();
    await insertInProgressClaim(key, buildUserInput(), 'future');
    expectProblem(await createUser(buildUserInput(), key), 422, 'idempotency.key_reused');
  });
});

describe('idempotency purge', () => {
  it('deletes records older than the retention window and keeps fresh ones', async () => {
    const oldKey = buildIdempotencyKey();
    const freshKey = buildIdempotencyKey();
    await harness.testDb.database.pool.query(
      `insert into platform.idempotency_keys
         (scope, method, route, key, request_hash, status, response_status, response_headers, response_body,
          created_at, completed_at)
       values ($3, 'POST', '/user', $1, 'hash', 'completed', 201, '{}', '{}',
               now() - interval '25 hours', now() - interval '25 hours'),
              ($3, 'POST', '/user', $2, 'hash', 'completed', 201, '{}', '{}',
               now() - interval '23 hours', now() - interval '23 hours')`,
      [oldKey, freshKey, scope],
    );
    const viaHttpKey = buildIdempotencyKey();
    expect((await createUser(buildUserInput(), viaHttpKey)).statusCode).toBe(201);

    const purge = startIdempotencyPurge(harness.testDb.database, {
      retentionHours: 24,
      intervalMs: 3_600_000,
      logger: createLogger({ level: 'silent' }),
    });
    try {
      const deleted = await purge.runOnce();
      expect(deleted).toBeGreaterThanOrEqual(1);
    } finally {
      purge.stop();
    }
    expect(await findKeyRows(oldKey)).toEqual([]);
    expect(await findKeyRows(freshKey)).toHaveLength(1);
    expect(await findKeyRows(viaHttpKey)).toHaveLength(1);
  });
});
