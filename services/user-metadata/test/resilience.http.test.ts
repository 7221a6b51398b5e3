import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDatabase, type Database, type DatabaseSettings } from '@keel/platform/db';
import { createLogger } from '@keel/platform/observability';
import {
  buildTestApp,
  type CapturedLogs,
  captureLogs,
  createTestApiKey,
  createTestDatabase,
  startTcpProxy,
  type TcpProxy,
  TEST_DATABASE_SETTINGS,
  type TestApp,
  type TestDatabase,
} from '@keel/platform/testing';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { userMetadataModule } from '../src/index.ts';
import { buildUserInput, USER_METADATA_PERMISSIONS } from './factories.ts';

const HALF_OPEN_AFTER_MS = 300;

let testDb: TestDatabase;
/** `Authorization` of the calling service; stored in the database every app of the file shares. */
let serviceKey: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  const keyApp = await buildTestApp({ database: testDb.database, modules: [userMetadataModule] });
  try {
    serviceKey = await createTestApiKey(keyApp, USER_METADATA_PERMISSIONS);
  } finally {
    await keyApp.close();
  }
});

/** Direct to the database, around the proxy: the test's own view of the truth. */
function admin() {
  return testDb.database.pool;
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await testDb.drop();
});

type FaultyApp = {
  testApp: TestApp;
  proxy: TcpProxy;
  database: Database;
  applicationName: string;
  databaseLogs: CapturedLogs;
};

/**
 * The production wiring with its database reached through a proxy that
 * the test can cut or close. Settings are the test defaults (pool 10,
 * breaker threshold 5) except a short half-open delay.
 */
async function startFaultyApp(settings: Partial<DatabaseSettings> = {}): Promise<FaultyApp> {
  const target = new URL(testDb.url);
  const proxy = await startTcpProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) });
  const applicationName = `keel-http-${randomUUID().slice(0, 8)}`;
  const { stream, logs } = captureLogs();
  const database = createDatabase(
    {
      ...TEST_DATABASE_SETTINGS,
      url: proxy.rewriteUrl(testDb.url),
      applicationName,
      breakerHalfOpenAfterMs: HALF_OPEN_AFTER_MS,
      ...settings,
    },
    createLogger({ level: 'info', destination: stream }),
  );
  const testApp = await buildTestApp({
    database,
    modules: [userMetadataModule],
    env: {
      // Dozens of requests from one caller; the limiter is not under test here.
      RATE_LIMIT_ENABLED: 'false',
      // These tests are about the service's own database work. Once warmed
      // (see warmUpCredentials), the key must stay cached for the whole test,
      // however long the retries and half-open waits take, so the
      // authenticator never reaches the faulty database.
      AUTH_SESSION_CACHE_TTL_MS: '60000',
    },
  });
  cleanups.push(async () => {
    await testApp.close();
    await database.close();
    await proxy.close();
  });
  return { testApp, proxy, database, applicationName, databaseLogs: logs };
}

function postUser(testApp: TestApp, input = buildUserInput()) {
  return testApp.app.inject({
    method: 'POST',
    url: '/user',
    payload: input,
    headers: { authorization: serviceKey },
  });
}

function getUser(testApp: TestApp, id: string) {
  return testApp.app.inject({ method: 'GET', url: `/user/${id}`, headers: { authorization: serviceKey } });
}

/**
 * One authenticated request while the database is healthy, so the app has
 * the key cached before a fault: the requests under test then reach the
 * service's own database work instead of failing in the authenticator.
 */
async function warmUpCredentials(testApp: TestApp): Promise<void> {
  const response = await getUser(testApp, randomUUID());
  expect(response.statusCode).toBe(404);
}

async function countUsersByEmail(emails: string[]): Promise<Map<string, number>> {
  const result = await admin().query<{ email: string; count: string }>(
    'select email, count(*) from user_metadata.users where email = any($1) group by email',
    [emails],
  );
  return new Map(result.rows.map((row) => [row.email, Number(row.count)]));
}

/**
 * Holds a lock that makes every user insert wait, so requests are provably
 * mid-transaction when the fault hits; resolves once `count` backends of
 * the app are waiting on it.
 */
async function blockUserInserts(applicationName: string, count: number) {
  const blocker = await admin().connect();
  await blocker.query('begin');
  await blocker.query('lock table user_metadata.users in share mode');
  return {
    async waitForBlockedRequests() {
      for (;;) {
        const result = await admin().query<{ count: string }>(
          `select count(*) from pg_stat_activity
           where application_name = $1 and wait_event_type = 'Lock'`,
          [applicationName],
        );
        if (Number(result.rows[0]?.count) >= count) return;
        await sleep(10);
      }
    },
    async release() {
      await blocker.query('rollback');
      blocker.release();
    },
  };
}

function retriesLogged(logs: CapturedLogs): number {
  return logs.lines().filter((line) => typeof line.attempt === 'number').length;
}

async function expectAllCreatedOnce(responses: { statusCode: number }[], emails: string[]) {
  expect(responses.map((response) => response.statusCode)).toEqual(emails.map(() => 201));
  const counts = await countUsersByEmail(emails);
  expect(emails.map((email) => counts.get(email) ?? 0)).toEqual(emails.map(() => 1));
}

describe('POST /user through a transient connection failure', () => {
  it('answers 201 to every request and creates each user once when all connections are cut mid-transaction', async () => {
    const { testApp, proxy, database, applicationName, databaseLogs } = await startFaultyApp();
    await warmUpCredentials(testApp);
    const inputs = Array.from({ length: 30 }, () => buildUserInput());
    const lock = await blockUserInserts(applicationName, TEST_DATABASE_SETTINGS.poolMax);

    const requests = Promise.all(inputs.map((input) => postUser(testApp, input)));
    await lock.waitForBlockedRequests();
    proxy.cutConnections();
    await lock.release();
    const responses = await requests;

    await expectAllCreatedOnce(
      responses,
      inputs.map((input) => input.email),
    );
    expect(retriesLogged(databaseLogs)).toBeGreaterThanOrEqual(TEST_DATABASE_SETTINGS.poolMax);
    // More sessions were lost at once than the breaker threshold; none was an outage.
    expect(database.breakerState()).toBe('closed');
  });

  it('answers 201 to every request and creates each user once when their backends are terminated', async () => {
    const { testApp, database, applicationName, databaseLogs } = await startFaultyApp();
    await warmUpCredentials(testApp);
    const inputs = Array.from({ length: 30 }, () => buildUserInput());
    const lock = await blockUserInserts(applicationName, TEST_DATABASE_SETTINGS.poolMax);

    const requests = Promise.all(inputs.map((input) => postUser(testApp, input)));
    await lock.waitForBlockedRequests();
    await admin().query(
      'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1',
      [applicationName],
    );
    await lock.release();
    const responses = await requests;

    await expectAllCreatedOnce(
      responses,
      inputs.map((input) => input.email),
    );
    expect(retriesLogged(databaseLogs)).toBeGreaterThanOrEqual(TEST_DATABASE_SETTINGS.poolMax);
    // More sessions were lost at once than the breaker threshold; none was an outage.
    expect(database.breakerState()).toBe('closed');
  });
});

describe('the service while the database is unreachable', () => {
  async function expectDatabaseUnavailable(response: {
    statusCode: number;
    headers: Record<string, unknown>;
    json: () => Record<string, unknown>;
  }) {
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ status: 503, code: 'database.unavailable' });
    expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  }

  it('fails fast with 503 database.unavailable and Retry-After, and readiness reports the open breaker', async () => {
    const { testApp, proxy, database } = await startFaultyApp();
    await warmUpCredentials(testApp);
    await proxy.refuse();

    const responses = [];
    for (let request = 0; request < 10 && database.breakerState() !== 'open'; request += 1) {
      responses.push(await postUser(testApp));
    }
    for (const response of responses) await expectDatabaseUnavailable(response);
    expect(database.breakerState()).toBe('open');

    await expectDatabaseUnavailable(await postUser(testApp));
    await expectDatabaseUnavailable(await getUser(testApp, randomUUID()));

    const ready = await testApp.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({
      status: 'not_ready',
      checks: {
        database: { status: 'failing' },
        breaker: { status: 'failing' },
        migrations: { status: 'ok' },
      },
    });
  });

  it('serves again without a restart once the database is reachable and halfOpenAfter has passed', async () => {
    const { testApp, proxy, database } = await startFaultyApp();
    await warmUpCredentials(testApp);
    await proxy.refuse();
    for (let request = 0; request < 10 && database.breakerState() !== 'open'; request += 1) {
      await postUser(testApp);
    }
    expect(database.breakerState()).toBe('open');

    await proxy.accept();
    await sleep(HALF_OPEN_AFTER_MS + 100);

    const input = buildUserInput();
    const created = await postUser(testApp, input);
    expect(created.statusCode).toBe(201);
    const fetched = await getUser(testApp, created.json().user_id);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toMatchObject({ email: input.email });
    expect(database.breakerState()).toBe('closed');

    const ready = await testApp.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({
      status: 'ready',
      checks: { database: { status: 'ok' }, breaker: { status: 'ok' } },
    });
    expect((await countUsersByEmail([input.email])).get(input.email)).toBe(1);
  });

  it('reports ready again after halfOpenAfter without waiting for a request to probe', async () => {
    // A load balancer sends no traffic to an unready instance, so readiness
    // must not depend on a request arriving to move the breaker on.
    const { testApp, proxy, database } = await startFaultyApp();
    await warmUpCredentials(testApp);
    await proxy.refuse();
    for (let request = 0; request < 10 && database.breakerState() !== 'open'; request += 1) {
      await postUser(testApp);
    }
    expect((await testApp.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);

    await proxy.accept();
    await sleep(HALF_OPEN_AFTER_MS + 100);

    const ready = await testApp.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ checks: { database: { status: 'ok' }, breaker: { status: 'ok' } } });
    expect((await postUser(testApp)).statusCode).toBe(201);
    expect(database.breakerState()).toBe('closed');
  });

  it('answers 503 database.unavailable, never 401, when the key is not cached yet, and accepts the key once the database is back', async () => {
    // The authenticator needs the database on a cache miss. An outage must
    // not look like bad credentials: a client told 401 would drop a valid key.
    const { testApp, proxy, database } = await startFaultyApp();
    await proxy.refuse();

    await expectDatabaseUnavailable(await getUser(testApp, randomUUID()));
    const input = buildUserInput();
    await expectDatabaseUnavailable(await postUser(testApp, input));

    await proxy.accept();
    if (database.breakerState() !== 'closed') await sleep(HALF_OPEN_AFTER_MS + 100);
    // The failed lookup was not remembered as an invalid key.
    const created = await postUser(testApp, input);
    expect(created.statusCode).toBe(201);
    expect((await getUser(testApp, created.json().user_id)).statusCode).toBe(200);
    expect((await countUsersByEmail([input.email])).get(input.email)).toBe(1);
  });
});
