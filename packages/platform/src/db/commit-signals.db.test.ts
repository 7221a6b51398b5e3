import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createLogger } from '../observability/index.ts';
import { createTestDatabase, startTcpProxy, type TestDatabase } from '../testing/index.ts';
import { captureLogs } from '../testing/test-app.ts';
import { createCommitSignals } from './commit-signals.ts';
import { signalAfterCommit, sql } from './index.ts';

const silentLogger = createLogger({ level: 'silent' });
const CHANNEL = 'commit_signals_test';

let testDb: TestDatabase;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await testDb?.drop();
});

type Received = { channel: string; payload: string | undefined; processId: number };

/** Another process's view: a connection listening on `channel`. */
async function listen(channel: string): Promise<{ received: Received[]; client: pg.Client }> {
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  cleanups.push(() => client.end());
  const received: Received[] = [];
  client.on('notification', (message) =>
    received.push({ channel: message.channel, payload: message.payload, processId: message.processId }),
  );
  await client.query(`listen ${channel}`);
  return { received, client };
}

describe('createCommitSignals', () => {
  it("calls this process's subscribers at once and notifies other processes with its origin as payload", async () => {
    const other = await listen(CHANNEL);
    const signals = createCommitSignals({ pool: testDb.database.pool, logger: silentLogger });
    cleanups.push(() => signals.close());
    const calls: string[] = [];
    const unsubscribe = signals.subscribe(CHANNEL, () => calls.push('first'));
    signals.subscribe(CHANNEL, () => calls.push('second'));
    signals.subscribe('another_channel', () => calls.push('elsewhere'));

    signals.send(CHANNEL);

    expect(calls).toEqual(['first', 'second']);
    await vi.waitFor(() => expect(other.received).toHaveLength(1), { timeout: 5000, interval: 10 });
    expect(other.received[0]).toMatchObject({ channel: CHANNEL, payload: signals.origin });

    unsubscribe();
    signals.send(CHANNEL);
    expect(calls).toEqual(['first', 'second', 'second']);
  });

  it('folds the signals raised while one notification is being sent into the next one', async () => {
    const other = await listen(CHANNEL);
    const signals = createCommitSignals({ pool: testDb.database.pool, logger: silentLogger });
    cleanups.push(() => signals.close());
    let localCalls = 0;
    signals.subscribe(CHANNEL, () => {
      localCalls += 1;
    });

    for (let signal = 0; signal < 100; signal += 1) signals.send(CHANNEL);

    expect(localCalls).toBe(100);
    // The first send goes out at once; the 99 raised meanwhile share one more.
    await vi.waitFor(() => expect(other.received).toHaveLength(2), { timeout: 5000, interval: 10 });
    await signals.close();
    await other.client.query('select 1');
    expect(other.received).toHaveLength(2);
  });

  it('keeps a failing subscriber from reaching the caller or the other subscribers', () => {
    const { stream, logs } = captureLogs();
    const signals = createCommitSignals({
      pool: testDb.database.pool,
      logger: createLogger({ level: 'info', destination: stream }),
    });
    cleanups.push(() => signals.close());
    let isCalled = false;
    signals.subscribe(CHANNEL, () => {
      throw new Error('subscriber bug');
    });
    signals.subscribe(CHANNEL, () => {
      isCalled = true;
    });

    expect(() => signals.send(CHANNEL)).not.toThrow();
    expect(isCalled).toBe(true);
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({ msg: 'commit signal subscriber failed', channel: CHANNEL }),
    );
  });

  it('logs an unreachable database once, never throws, and notifies again once it is back', async () => {
    const target = new URL(testDb.url);
    const proxy = await startTcpProxy({
      targetHost: target.hostname,
      targetPort: Number(target.port || 5432),
    });
    cleanups.push(() => proxy.close());
    const pool = new pg.Pool({
      connectionString: proxy.rewriteUrl(testDb.url),
      connectionTimeoutMillis: 500,
    });
    pool.on('error', () => undefined);
    cleanups.push(() => pool.end());
    const { stream, logs } = captureLogs();
    const signals = createCommitSignals({
      pool,
      logger: createLogger({ level: 'info', destination: stream }),
    });
    cleanups.push(() => signals.close());
    const other = await listen(CHANNEL);
    let localCalls = 0;
    signals.subscribe(CHANNEL, () => {
      localCalls += 1;
    });
    // Accepted and closed at once: the proxy counts each attempt.
    await proxy.refuse('drop');

    signals.send(CHANNEL);
    await vi.waitFor(() => expect(logs.text()).toContain('commit notification failed'), { timeout: 5000 });
    const attemptsBefore = proxy.acceptedConnections();
    signals.send(CHANNEL);
    await vi.waitFor(() => expect(proxy.acceptedConnections()).toBeGreaterThan(attemptsBefore), {
      timeout: 5000,
    });
    await proxy.accept();
    signals.send(CHANNEL);
    // Sends run one after another: once the third arrived, the second had failed.
    await vi.waitFor(() => expect(other.received).toHaveLength(1), { timeout: 5000, interval: 10 });

    expect(other.received[0]?.payload).toBe(signals.origin);
    expect(
      logs.lines().filter((line) => String(line.msg).startsWith('commit notification failed')),
    ).toHaveLength(1);
    expect(logs.text()).toContain('commit notifications are sent again');
    expect(localCalls).toBe(3);
  });

  it('refuses a channel that is not a plain identifier (it is spliced into the statement)', () => {
    const signals = createCommitSignals({ pool: testDb.database.pool, logger: silentLogger });
    cleanups.push(() => signals.close());
    expect(() => signals.send('x; drop table users')).toThrow(/invalid channel/);
    expect(() => signals.subscribe('Mixed', () => undefined)).toThrow(/invalid channel/);
  });
});

describe('signalAfterCommit', () => {
  it('signals once per transaction and channel, after the commit, and never for a rolled-back one', async () => {
    const db = testDb.database.typed<unknown>();
    const other = await listen(CHANNEL);
    const seen: string[] = [];
    const unsubscribe = testDb.database.signals.subscribe(CHANNEL, () => seen.push('signal'));
    cleanups.push(async () => unsubscribe());

    await db.transaction(async (trx) => {
      expect(signalAfterCommit(trx, CHANNEL)).toBe(true);
      expect(signalAfterCommit(trx, CHANNEL)).toBe(true);
      await sql`select 1`.execute(trx);
      // Not before the commit.
      expect(seen).toEqual([]);
    });
    expect(seen).toEqual(['signal']);

    await expect(
      db.transaction(async (trx) => {
        signalAfterCommit(trx, CHANNEL);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(seen).toEqual(['signal']);

    await vi.waitFor(() => expect(other.received).toHaveLength(1), { timeout: 5000, interval: 10 });
    await other.client.query('select 1');
    expect(other.received.map((message) => message.payload)).toEqual([testDb.database.signals.origin]);
  });

  it('signals an autocommit unit once its work resolves, never when it throws, and not through run', async () => {
    const db = testDb.database.typed<unknown>();
    const seen: string[] = [];
    const unsubscribe = testDb.database.signals.subscribe(CHANNEL, () => seen.push('signal'));
    cleanups.push(async () => unsubscribe());

    await db.autocommit(async (writer) => {
      expect(signalAfterCommit(writer, CHANNEL)).toBe(true);
      await sql`select 1`.execute(writer);
      expect(seen).toEqual([]);
    });
    expect(seen).toEqual(['signal']);

    await expect(
      db.autocommit(async (writer) => {
        signalAfterCommit(writer, CHANNEL);
        throw new Error('failed');
      }),
    ).rejects.toThrow('failed');
    // Each unit has a view of its own: another unit's request never leaks into this one.
    await db.autocommit(async () => undefined);
    expect(seen).toEqual(['signal']);

    await db.run(async (handle) => {
      expect(signalAfterCommit(handle, CHANNEL)).toBe(false);
    });
  });

  it('reports false for a transaction it did not open, so the caller notifies inside it', async () => {
    const kysely = testDb.database.typed<unknown>();
    await kysely.run(async (db) => {
      await db.transaction().execute(async (trx) => {
        expect(signalAfterCommit(trx, CHANNEL)).toBe(false);
      });
    });
  });
});
