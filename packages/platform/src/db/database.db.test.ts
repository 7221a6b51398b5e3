import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { AppError } from '../errors/index.ts';
import { createLogger, createMetrics, type Registry } from '../observability/index.ts';
import {
  createTestDatabase,
  startTcpProxy,
  type TcpProxy,
  TEST_DATABASE_SETTINGS,
  type TestDatabase,
} from '../testing/index.ts';
import { createDatabase, type Database, type DatabaseSettings, signalAfterCommit, sql } from './index.ts';

type WritesSchema = {
  'resilience_test.writes': { id: string; value: number };
  'resilience_test.ledger': { batch: string; value: number };
};

const silentLogger = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let admin: pg.Client;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  admin = new pg.Client({ connectionString: testDb.url });
  await admin.connect();
  await admin.query(`
    create schema resilience_test;
    create table resilience_test.writes (id uuid primary key, value integer not null);
    create table resilience_test.ledger (batch uuid not null, value integer not null)`);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await admin.end();
  await testDb.drop();
});

function openDatabase(settings: Partial<DatabaseSettings> = {}): Database {
  const database = createDatabase({ ...TEST_DATABASE_SETTINGS, url: testDb.url, ...settings }, silentLogger);
  cleanups.push(() => database.close());
  return database;
}

async function countRows(id: string): Promise<number> {
  const result = await admin.query<{ count: string }>(
    'select count(*) from resilience_test.writes where id = $1',
    [id],
  );
  return Number(result.rows[0]?.count);
}

/** Terminates the backend of `applicationName` once it is running pg_sleep. */
async function terminateWhenSleeping(applicationName: string): Promise<void> {
  for (;;) {
    const result = await admin.query<{ terminated: boolean }>(
      `select pg_terminate_backend(pid) as terminated from pg_stat_activity
       where application_name = $1 and state = 'active' and query like '%pg_sleep%'`,
      [applicationName],
    );
    if (result.rows.some((row) => row.terminated)) return;
    await sleep(10);
  }
}

function isDatabaseUnavailable(error: unknown): error is AppError {
  return error instanceof AppError && error.code === 'database.unavailable';
}

async function readBreakerState(registry: Registry): Promise<number | undefined> {
  const value = await registry.getSingleMetric('keel_db_circuit_state')?.get();
  return value?.values[0]?.value;
}

/** Breaker transitions into `state` as exported; 0 when none happened yet. */
async function readTransitions(registry: Registry, state: string): Promise<number> {
  const value = await registry.getSingleMetric('keel_db_circuit_transitions_total')?.get();
  expect(value, 'keel_db_circuit_transitions_total is registered').toBeDefined();
  return value?.values.find((sample) => sample.labels.to === state)?.value ?? 0;
}

describe('unit of work on a live database', () => {
  it('commits a transaction exactly once when its backend is terminated mid-transaction', async () => {
    const applicationName = `keel-terminate-${randomUUID().slice(0, 8)}`;
    const db = openDatabase({ applicationName }).typed<WritesSchema>();
    const id = randomUUID();
    let attempts = 0;

    const writing = db.transaction(async (trx) => {
      attempts += 1;
      await trx.insertInto('resilience_test.writes').values({ id, value: attempts }).execute();
      // Long enough for the terminator to find it; the retry sleeps as well
      // and commits because nobody kills it a second time.
      await sql`select pg_sleep(0.3)`.execute(trx);
      return attempts;
    });
    await terminateWhenSleeping(applicationName);

    await expect(writing).resolves.toBe(2);
    expect(attempts).toBe(2);
    expect(await countRows(id)).toBe(1);
  });

  it('retries a serializable transaction that loses a serialization conflict (40001)', async () => {
    const db = openDatabase().typed<WritesSchema>();
    const batch = randomUUID();
    const attemptsPerWriter = [0, 0];
    let arrived = 0;
    let releaseReaders: () => void = () => undefined;
    const bothHaveRead = new Promise<void>((resolve) => {
      releaseReaders = resolve;
    });

    // Each writer appends max(value) + 1 to the batch. Both read before
    // either writes, so under serializable one of them must be rolled back.
    const writer = (index: number) =>
      db.transaction(async (trx) => {
        attemptsPerWriter[index] = (attemptsPerWriter[index] ?? 0) + 1;
        await sql`set transaction isolation level serializable`.execute(trx);
        const highest = await trx
          .selectFrom('resilience_test.ledger')
          .select((eb) => eb.fn.max('value').as('highest'))
          .where('batch', '=', batch)
          .executeTakeFirst();
        if (attemptsPerWriter[index] === 1) {
          arrived += 1;
          if (arrived === 2) releaseReaders();
          await bothHaveRead;
        }
        const value = (highest?.highest ?? 0) + 1;
        await trx.insertInto('resilience_test.ledger').values({ batch, value }).execute();
        return value;
      });

    const values = await Promise.all([writer(0), writer(1)]);

    const ledger = await admin.query<{ value: number }>(
      'select value from resilience_test.ledger where batch = $1 order by value',
      [batch],
    );
    expect(ledger.rows.map((row) => row.value)).toEqual([1, 2]);
    expect(values.sort()).toEqual([1, 2]);
    expect(attemptsPerWriter.sort()).toEqual([1, 2]);
  });

  it('rethrows a unique violation as it is after a single attempt', async () => {
    const db = openDatabase().typed<WritesSchema>();
    const id = randomUUID();
    await db.run((kysely) => kysely.insertInto('resilience_test.writes').values({ id, value: 1 }).execute());
    let attempts = 0;

    const error = await db
      .transaction(async (trx) => {
        attempts += 1;
        await trx.insertInto('resilience_test.writes').values({ id, value: 2 }).execute();
      })
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect(error).toMatchObject({ code: '23505' });
    expect(attempts).toBe(1);
    expect(await countRows(id)).toBe(1);
  });

  it('maps a statement timeout to database.timeout without retrying', async () => {
    const db = openDatabase({ statementTimeoutMs: 50 }).typed<WritesSchema>();
    let attempts = 0;

    const error = await db
      .run(async (kysely) => {
        attempts += 1;
        await sql`select pg_sleep(2)`.execute(kysely);
      })
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ kind: 'unavailable', code: 'database.timeout' });
    expect(attempts).toBe(1);
  });
});

describe('unit of work through a faulty network path', () => {
  async function openThroughProxy(settings: Partial<DatabaseSettings> = {}) {
    const target = new URL(testDb.url);
    const proxy: TcpProxy = await startTcpProxy({
      targetHost: target.hostname,
      targetPort: Number(target.port || 5432),
    });
    const database = createDatabase(
      {
        ...TEST_DATABASE_SETTINGS,
        url: proxy.rewriteUrl(testDb.url),
        connectTimeoutMs: 500,
        retryMaxAttempts: 2,
        breakerThreshold: 3,
        breakerHalfOpenAfterMs: 300,
        ...settings,
      },
      silentLogger,
    );
    const { registry } = createMetrics({ collectProcessMetrics: false });
    database.registerMetrics(registry);
    cleanups.push(async () => {
      await database.close();
      await proxy.close();
    });
    return { proxy, database, registry, db: database.typed<WritesSchema>() };
  }

  /** Calls `db.run` while the database refuses until the breaker opens; returns the work's call count. */
  async function driveUntilOpen(database: Database): Promise<{ workCalls: number; errors: unknown[] }> {
    const db = database.typed<WritesSchema>();
    let workCalls = 0;
    const errors: unknown[] = [];
    for (let call = 0; call < 10 && database.breakerState() !== 'open'; call += 1) {
      errors.push(
        await db
          .run(async (kysely) => {
            workCalls += 1;
            await sql`select 1`.execute(kysely);
          })
          .catch((caught: unknown) => caught),
      );
    }
    return { workCalls, errors };
  }

  it('commits exactly once when every connection is cut mid-transaction', async () => {
    const { proxy, db } = await openThroughProxy();
    const id = randomUUID();
    let attempts = 0;

    const writing = db.transaction(async (trx) => {
      attempts += 1;
      await trx.insertInto('resilience_test.writes').values({ id, value: attempts }).execute();
      // The first attempt is still sleeping when the connections are cut.
      if (attempts === 1) await sql`select pg_sleep(1)`.execute(trx);
    });
    while (attempts === 0) await sleep(5);
    await sleep(50);
    proxy.cutConnections();

    await expect(writing).resolves.toBeUndefined();
    expect(attempts).toBe(2);
    expect(await countRows(id)).toBe(1);
  });

  it('fails with 503 database.unavailable and Retry-After when connections are refused', async () => {
    const { proxy, database, db } = await openThroughProxy({ breakerThreshold: 100 });
    await proxy.refuse();
    let workCalls = 0;

    const error = await db
      .run(async (kysely) => {
        workCalls += 1;
        await sql`select 1`.execute(kysely);
      })
      .catch((caught: unknown) => caught);

    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(error).toMatchObject({ kind: 'unavailable', code: 'database.unavailable' });
    expect((error as AppError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // Refused connections are transient: retried up to retryMaxAttempts.
    expect(workCalls).toBe(2);
    expect(database.breakerState()).toBe('closed');
  });

  it.each(['refuse', 'drop', 'hang'] as const)(
    'opens the breaker after the threshold when new connections %s',
    async (fault) => {
      const { proxy, database } = await openThroughProxy({
        connectTimeoutMs: 200,
        breakerHalfOpenAfterMs: 60_000,
      });
      await proxy.refuse(fault);

      const { workCalls, errors } = await driveUntilOpen(database);

      expect(database.breakerState()).toBe('open');
      expect(workCalls).toBe(3);
      expect(errors.every(isDatabaseUnavailable)).toBe(true);
    },
  );

  it('keeps the breaker closed when every established connection is lost at once', async () => {
    const { proxy, database, db } = await openThroughProxy({ poolMax: 6, breakerThreshold: 3 });
    // More sessions lost together than the threshold: each is retried on a
    // fresh connection, which succeeds, so none of them is an outage.
    let attempts = 0;
    const writes = Array.from({ length: 6 }, () =>
      db.transaction(async (trx) => {
        attempts += 1;
        await sql`select pg_sleep(0.5)`.execute(trx);
      }),
    );
    // Cut only once every unit is inside its work: a session cut while still
    // connecting or in BEGIN is retried before its work ever runs, and would
    // not count as an attempt.
    while (attempts < 6) await sleep(5);
    await sleep(50);
    expect(proxy.openConnections()).toBe(6);
    proxy.cutConnections();

    await expect(Promise.all(writes)).resolves.toHaveLength(6);
    expect(attempts).toBe(12);
    expect(database.breakerState()).toBe('closed');
  });

  it('opens the breaker after the threshold and then fails fast without touching the network', async () => {
    const { proxy, database, db, registry } = await openThroughProxy({ breakerHalfOpenAfterMs: 60_000 });
    await proxy.refuse();

    const { workCalls, errors } = await driveUntilOpen(database);

    expect(database.breakerState()).toBe('open');
    // Threshold 3: the third refused connection opens the breaker.
    expect(workCalls).toBe(3);
    expect(errors.every(isDatabaseUnavailable)).toBe(true);
    expect(await readBreakerState(registry)).toBe(2);
    expect(await readTransitions(registry, 'open')).toBe(1);

    // The path is back, but the breaker keeps traffic away until halfOpenAfter.
    await proxy.accept();
    const connectionsBefore = proxy.acceptedConnections();
    let callsWhileOpen = 0;
    for (let call = 0; call < 5; call += 1) {
      const error = await db
        .run(async (kysely) => {
          callsWhileOpen += 1;
          await sql`select 1`.execute(kysely);
        })
        .catch((caught: unknown) => caught);
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect((error as AppError).retryAfterSeconds).toBeGreaterThan(1);
    }
    expect(callsWhileOpen).toBe(0);
    expect(proxy.acceptedConnections()).toBe(connectionsBefore);
  });

  it('closes the breaker and serves again after halfOpenAfter once the database is reachable', async () => {
    const { proxy, database, db, registry } = await openThroughProxy({ breakerHalfOpenAfterMs: 300 });
    await proxy.refuse();
    await driveUntilOpen(database);
    expect(database.breakerState()).toBe('open');

    await proxy.accept();
    await sleep(400);
    const id = randomUUID();
    await db.run((kysely) => kysely.insertInto('resilience_test.writes').values({ id, value: 1 }).execute());

    expect(database.breakerState()).toBe('closed');
    expect(await countRows(id)).toBe(1);
    expect(await readBreakerState(registry)).toBe(0);
    expect(await readTransitions(registry, 'open')).toBe(1);
    expect(await readTransitions(registry, 'half_open')).toBe(1);
    expect(await readTransitions(registry, 'closed')).toBe(1);
  });

  it('stays open when the half-open probe still cannot connect', async () => {
    const { proxy, database, registry } = await openThroughProxy({ breakerHalfOpenAfterMs: 300 });
    await proxy.refuse();
    await driveUntilOpen(database);
    await sleep(400);

    let probeCalls = 0;
    const probe = await database
      .typed<WritesSchema>()
      .run(async (kysely) => {
        probeCalls += 1;
        await sql`select 1`.execute(kysely);
      })
      .catch((caught: unknown) => caught);

    // One probe reaches the work; its failure reopens the breaker, which
    // refuses the retry.
    expect(probeCalls).toBe(1);
    expect(isDatabaseUnavailable(probe)).toBe(true);
    expect(database.breakerState()).toBe('open');
    expect(await readTransitions(registry, 'open')).toBe(2);
    expect(await readTransitions(registry, 'half_open')).toBe(1);
  });
});

describe('drain before shutdown', () => {
  it('reports busy while a connection is checked out and drained once it is returned', async () => {
    const database = testDb.database;
    const client = await database.pool.connect();
    expect(await database.drain({ timeoutMs: 150, quietMs: 50 })).toBe(false);
    client.release();
    expect(await database.drain({ timeoutMs: 1000, quietMs: 50 })).toBe(true);
  });
});

describe('withOwnPool', () => {
  it('serves through its own connections while every connection of the shared pool is taken', async () => {
    const database = openDatabase({ poolMax: 2, connectTimeoutMs: 300 });
    const held = [await database.pool.connect(), await database.pool.connect()];
    try {
      const background = database.withOwnPool({ poolMax: 1, applicationName: 'keel-test-own-pool' });
      cleanups.push(() => background.close());
      const result = await background
        .typed<unknown>()
        .run((db) => sql<{ name: string }>`select current_setting('application_name') as name`.execute(db));
      expect(result.rows[0]?.name).toBe('keel-test-own-pool');
      // The shared pool is still exhausted: a unit of work there times out waiting.
      await expect(database.typed<unknown>().run((db) => sql`select 1`.execute(db))).rejects.toThrow();
    } finally {
      for (const client of held) client.release();
    }
  });

  it('shares commit signals, and closing it leaves the database it came from open', async () => {
    const database = openDatabase();
    const background = database.withOwnPool({ poolMax: 1, applicationName: 'keel-test-own-pool' });
    expect(background.signals).toBe(database.signals);
    const received: string[] = [];
    const unsubscribe = database.signals.subscribe('keel_test_channel', () => received.push('woken'));
    cleanups.push(async () => unsubscribe());
    const commitSignalling = (source: Database) =>
      source.typed<unknown>().transaction(async (trx) => {
        signalAfterCommit(trx, 'keel_test_channel');
        await sql`select 1`.execute(trx);
      });

    await commitSignalling(background);
    expect(received).toEqual(['woken']);
    await background.close();
    // The shared signals were not closed with it.
    await commitSignalling(database);
    expect(received).toEqual(['woken', 'woken']);
  });
});
