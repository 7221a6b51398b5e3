import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { Database, Db } from '../db/index.ts';
import { createLogger } from '../observability/logger.ts';
import { createTestDatabase, type TestDatabase } from '../testing/index.ts';
import { createFieldEncryption, type FieldEncryption } from './field-encryption.ts';
import { generateEncryptionKey, parseKeyring } from './keyring.ts';
import { countValuesToRotate } from './rotation.ts';
import {
  ENCRYPTION_ROTATION_LOCK_KEY,
  type EncryptedColumnSpec,
  type EncryptionRotationSettings,
  type EncryptionRotationTask,
  startEncryptionKeyRotation,
} from './rotation-task.ts';

type SecretsRow = { id: string; value: string | null };

const k1 = generateEncryptionKey();
const k2 = generateEncryptionKey();
const beforeRotation = createFieldEncryption(parseKeyring(`k1:${k1}`));
const duringRotation = createFieldEncryption(parseKeyring(`k2:${k2},k1:${k1}`));
const afterRotation = createFieldEncryption(parseKeyring(`k2:${k2}`));

let testDb: TestDatabase;
let tableCount = 0;
const tasks: EncryptionRotationTask[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  await testDb.database.pool.query('create schema crypto_task_test');
});

afterAll(async () => {
  for (const task of tasks) await task.stop();
  await testDb?.drop();
});

function specFor(table: string): EncryptedColumnSpec {
  return { table, idColumn: 'id', column: 'value', aad: (id) => `${table}:value:${id}` };
}

/** A fresh table per test holding `count` values under `encryption`; returns each id's plaintext. */
async function seedTable(
  count: number,
  encryption: FieldEncryption,
): Promise<{ spec: EncryptedColumnSpec; plaintexts: Map<string, string> }> {
  tableCount += 1;
  const spec = specFor(`crypto_task_test.secrets_${tableCount}`);
  await testDb.database.pool.query(`create table ${spec.table} (id uuid primary key, value text)`);
  const plaintexts = new Map<string, string>();
  for (let index = 0; index < count; index += 1)
    plaintexts.set(randomUUID(), `secret ${index} ${randomUUID()}`);
  const ids = [...plaintexts.keys()];
  await testDb.database.pool.query(
    `insert into ${spec.table} (id, value) select * from unnest($1::uuid[], $2::text[])`,
    [ids, ids.map((id) => encryption.encrypt(plaintexts.get(id) ?? '', spec.aad(id)))],
  );
  return { spec, plaintexts };
}

async function readRows(table: string): Promise<SecretsRow[]> {
  const result = await testDb.database.pool.query<SecretsRow>(`select id, value from ${table} order by id`);
  return result.rows;
}

function countByKeyId(rows: SecretsRow[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of rows) {
    if (row.value === null) continue;
    const keyId = duringRotation.keyIdOf(row.value);
    counts[keyId] = (counts[keyId] ?? 0) + 1;
  }
  return counts;
}

/** Every row decrypts, with `encryption`, to the plaintext it was seeded with. */
async function expectAllReadable(
  spec: EncryptedColumnSpec,
  plaintexts: Map<string, string>,
  encryption: FieldEncryption,
): Promise<void> {
  const rows = await readRows(spec.table);
  expect(rows).toHaveLength(plaintexts.size);
  const mismatches = rows.filter(
    (row) => encryption.decrypt(row.value ?? '', spec.aad(row.id)) !== plaintexts.get(row.id),
  );
  expect(mismatches).toEqual([]);
}

function remaining(spec: EncryptedColumnSpec): Promise<number> {
  return countValuesToRotate({
    db: testDb.database.typed<unknown>(),
    table: spec.table,
    column: spec.column,
    encryption: duringRotation,
  });
}

function captureLogs(): {
  logger: ReturnType<typeof createLogger>;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const text = () => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

function start(overrides: Partial<EncryptionRotationSettings> & Pick<EncryptionRotationSettings, 'columns'>) {
  const task = startEncryptionKeyRotation({
    database: testDb.database,
    encryption: duringRotation,
    batchSize: 100,
    intervalMs: 0,
    logger: createLogger({ level: 'silent' }),
    ...overrides,
  });
  tasks.push(task);
  return task;
}

/** Counts the units of work the task asks of the database (and connections it checks out itself), passing each through. */
function observedDatabase(database: Database): {
  database: Database;
  calls: { run: number; transaction: number; autocommit: number; connect: number };
} {
  const calls = { run: 0, transaction: 0, autocommit: 0, connect: 0 };
  // The database's own query builder keeps the original pool, so only
  // connections the task checks out directly (the lock) are counted here.
  const pool = new Proxy(database.pool, {
    get(target, property) {
      if (property === 'connect') {
        return () => {
          calls.connect += 1;
          return target.connect();
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const observed: Database = {
    ...database,
    pool,
    typed<Schema>(): Db<Schema> {
      const inner = database.typed<Schema>();
      return {
        run(work) {
          calls.run += 1;
          return inner.run(work);
        },
        transaction(work) {
          calls.transaction += 1;
          return inner.transaction(work);
        },
        autocommit(work) {
          calls.autocommit += 1;
          return inner.autocommit(work);
        },
      };
    },
  };
  return { database: observed, calls };
}

describe('startEncryptionKeyRotation', () => {
  it('moves every row of every column to the new key in one pass, each value decrypting to its original', async () => {
    const first = await seedTable(350, beforeRotation);
    const second = await seedTable(120, beforeRotation);
    const logs = captureLogs();
    const task = start({ columns: [first.spec, second.spec], logger: logs.logger });

    const report = await task.runOnce();

    expect(report).toMatchObject({ outcome: 'completed', hasWorkLeft: false });
    expect(report.columns).toEqual([
      {
        table: first.spec.table,
        column: 'value',
        pending: 350,
        result: {
          batches: 4,
          scanned: 350,
          rotated: 350,
          conflicts: 0,
          failed: 0,
          failures: [],
          isComplete: true,
        },
      },
      {
        table: second.spec.table,
        column: 'value',
        pending: 120,
        result: {
          batches: 2,
          scanned: 120,
          rotated: 120,
          conflicts: 0,
          failed: 0,
          failures: [],
          isComplete: true,
        },
      },
    ]);
    expect(countByKeyId(await readRows(first.spec.table))).toEqual({ k2: 350 });
    expect(countByKeyId(await readRows(second.spec.table))).toEqual({ k2: 120 });
    // The old key can go: the new key alone reads everything.
    await expectAllReadable(first.spec, first.plaintexts, afterRotation);
    await expectAllReadable(second.spec, second.plaintexts, afterRotation);

    const summaries = logs.lines().filter((line) => line.msg === 'encryption key rotation summary');
    expect(summaries).toEqual([
      expect.objectContaining({
        table: first.spec.table,
        column: 'value',
        activeKeyId: 'k2',
        pending: 350,
        rotated: 350,
      }),
      expect.objectContaining({
        table: second.spec.table,
        column: 'value',
        activeKeyId: 'k2',
        pending: 120,
        rotated: 120,
      }),
    ]);
    expect(logs.lines().filter((line) => line.msg === 'encryption key rotation progress')).toHaveLength(6);
    // Logs carry ids and counts: no plaintext, no ciphertext, no key material.
    const logText = logs.text();
    for (const secret of [k1, k2, ...first.plaintexts.values()]) expect(logText).not.toContain(secret);
    expect(logText).not.toContain('kv1.');
  });

  it('keeps every row readable by the running application between batches', async () => {
    const { spec, plaintexts } = await seedTable(450, beforeRotation);
    const keyIdsBetweenBatches: Record<string, number>[] = [];
    const task = start({
      columns: [spec],
      async onProgress(progress) {
        expect(progress).toMatchObject({ table: spec.table, column: 'value' });
        keyIdsBetweenBatches.push(countByKeyId(await readRows(spec.table)));
        await expectAllReadable(spec, plaintexts, duringRotation);
      },
    });

    await task.runOnce();

    expect(keyIdsBetweenBatches).toEqual([
      { k1: 350, k2: 100 },
      { k1: 250, k2: 200 },
      { k1: 150, k2: 300 },
      { k1: 50, k2: 400 },
      { k2: 450 },
    ]);
  });

  it('stops between batches when stopped mid-pass, and a task started again completes the rest', async () => {
    const { spec, plaintexts } = await seedTable(500, beforeRotation);
    let task: EncryptionRotationTask | undefined;
    let stopped: Promise<void> | undefined;
    task = start({
      columns: [spec],
      onProgress(progress) {
        // Not awaited here: stop() waits for this very pass to end.
        if (progress.batches === 2) stopped = task?.stop();
      },
    });

    const interrupted = await task.runOnce();
    await stopped;

    expect(interrupted.outcome).toBe('stopped');
    expect(interrupted.hasWorkLeft).toBe(true);
    expect(interrupted.columns[0]?.result).toMatchObject({ batches: 2, rotated: 200, isComplete: false });
    expect(await remaining(spec)).toBe(300);
    await expectAllReadable(spec, plaintexts, duringRotation);
    expect(await task.runOnce()).toEqual({ outcome: 'stopped', columns: [], hasWorkLeft: true });

    const resumed = await start({ columns: [spec] }).runOnce();

    expect(resumed).toMatchObject({ outcome: 'completed', hasWorkLeft: false });
    expect(resumed.columns[0]).toMatchObject({
      pending: 300,
      result: { scanned: 300, rotated: 300, isComplete: true },
    });
    expect(countByKeyId(await readRows(spec.table))).toEqual({ k2: 500 });
    await expectAllReadable(spec, plaintexts, afterRotation);
  });

  it('only counts, without rotating or locking, when nothing is under an old key', async () => {
    const current = await seedTable(30, duringRotation);
    const empty = await seedTable(0, duringRotation);
    const observed = observedDatabase(testDb.database);
    const logs = captureLogs();
    const task = start({
      columns: [current.spec, empty.spec],
      database: observed.database,
      logger: logs.logger,
    });

    const report = await task.runOnce();

    expect(report).toEqual({
      outcome: 'completed',
      hasWorkLeft: false,
      columns: [
        { table: current.spec.table, column: 'value', pending: 0, result: null },
        { table: empty.spec.table, column: 'value', pending: 0, result: null },
      ],
    });
    // One count per column; no batch reads, no batch transactions, no lock connection.
    expect(observed.calls).toEqual({ run: 2, transaction: 0, autocommit: 0, connect: 0 });
    expect(logs.lines().filter((line) => line.level === 'info' || line.level === 'warn')).toEqual([]);
  });

  it('takes the lock on its own connection and rotates when a column has work', async () => {
    const { spec } = await seedTable(10, beforeRotation);
    const observed = observedDatabase(testDb.database);
    const task = start({ columns: [spec], database: observed.database });

    await task.runOnce();

    // Count, then one batch read and one batch transaction, under one lock connection.
    expect(observed.calls).toEqual({ run: 2, transaction: 1, autocommit: 0, connect: 1 });
  });

  it('never overlaps two passes: a second runOnce waits and then finds nothing left', async () => {
    const { spec } = await seedTable(300, beforeRotation);
    let activePasses = 0;
    let mostActive = 0;
    const task = start({
      columns: [spec],
      async onProgress() {
        activePasses += 1;
        mostActive = Math.max(mostActive, activePasses);
        await new Promise((resolve) => setImmediate(resolve));
        activePasses -= 1;
      },
    });

    const [first, second] = await Promise.all([task.runOnce(), task.runOnce()]);

    expect(first.columns[0]).toMatchObject({ pending: 300, result: { rotated: 300 } });
    expect(second.columns[0]).toMatchObject({ pending: 0, result: null });
    expect(mostActive).toBe(1);
  });

  it('skips the pass and rotates nothing while another process holds the rotation lock', async () => {
    const { spec } = await seedTable(50, beforeRotation);
    const otherProcess = await testDb.database.pool.connect();
    try {
      await otherProcess.query('select pg_advisory_lock($1::bigint)', [ENCRYPTION_ROTATION_LOCK_KEY]);
      const task = start({ columns: [spec] });

      const busy = await task.runOnce();

      expect(busy).toEqual({
        outcome: 'lock_busy',
        hasWorkLeft: true,
        columns: [{ table: spec.table, column: 'value', pending: 50, result: null }],
      });
      expect(countByKeyId(await readRows(spec.table))).toEqual({ k1: 50 });

      await otherProcess.query('select pg_advisory_unlock($1::bigint)', [ENCRYPTION_ROTATION_LOCK_KEY]);
      expect(await task.runOnce()).toMatchObject({ outcome: 'completed', hasWorkLeft: false });
      expect(countByKeyId(await readRows(spec.table))).toEqual({ k2: 50 });
    } finally {
      // A session lock outlives release(); drop it so later tests start clean.
      await otherProcess.query('select pg_advisory_unlock_all()');
      otherProcess.release();
    }
  });

  it('releases the lock after a pass, so the next pass of another task can take it', async () => {
    const first = await seedTable(20, beforeRotation);
    await start({ columns: [first.spec] }).runOnce();
    const second = await seedTable(20, beforeRotation);

    const report = await start({ columns: [second.spec] }).runOnce();

    expect(report.outcome).toBe('completed');
    const held = await testDb.database.pool.query<{ count: string }>(
      `select count(*) as count from pg_locks where locktype = 'advisory' and objid = $1`,
      [ENCRYPTION_ROTATION_LOCK_KEY % 2 ** 32],
    );
    expect(held.rows[0]?.count).toBe('0');
  });

  it('reports rows it cannot decrypt by id and code, logs them without values, and rotates the rest', async () => {
    const { spec } = await seedTable(40, beforeRotation);
    const rows = await readRows(spec.table);
    const misplacedId = rows[7]?.id ?? '';
    // A value copied from another row: its AAD does not match this row.
    await testDb.database.pool.query(`update ${spec.table} set value = $1 where id = $2`, [
      rows[8]?.value,
      misplacedId,
    ]);
    const logs = captureLogs();
    const task = start({ columns: [spec], logger: logs.logger });

    const report = await task.runOnce();

    expect(report).toMatchObject({ outcome: 'completed', hasWorkLeft: true });
    expect(report.columns[0]?.result).toMatchObject({
      rotated: 39,
      failed: 1,
      failures: [{ id: misplacedId, code: 'crypto.decrypt_failed' }],
    });
    const warning = logs.lines().find((line) => line.level === 'warn');
    expect(warning).toMatchObject({
      table: spec.table,
      failed: 1,
      failures: [{ id: misplacedId, code: 'crypto.decrypt_failed' }],
    });
    expect(logs.text()).not.toContain('kv1.');
  });

  it('records a failing column and still rotates the others', async () => {
    const { spec } = await seedTable(25, beforeRotation);
    const missing = specFor('crypto_task_test.does_not_exist');
    const task = start({ columns: [missing, spec] });

    const report = await task.runOnce();

    expect(report.hasWorkLeft).toBe(true);
    expect(report.columns[0]).toMatchObject({
      table: missing.table,
      pending: 0,
      result: null,
      error: expect.stringContaining('does_not_exist'),
    });
    expect(report.columns[1]).toMatchObject({ pending: 25, result: { rotated: 25 } });
  });

  it('rotates in the background on its interval without being asked', async () => {
    const { spec, plaintexts } = await seedTable(150, beforeRotation);
    start({ columns: [spec], intervalMs: 20 });

    await vi.waitFor(async () => expect(await remaining(spec)).toBe(0), { timeout: 10_000, interval: 20 });

    await expectAllReadable(spec, plaintexts, afterRotation);
  });

  it.each([
    ['a table name that is not an identifier', { columns: [specFor('secrets; drop table users')] }],
    ['a batch size of 0', { columns: [], batchSize: 0 }],
    ['a negative interval', { columns: [], intervalMs: -1 }],
  ])('rejects at start with a CryptoError when given %s', (_, overrides) => {
    expect(() => start(overrides)).toThrow(expect.objectContaining({ name: 'CryptoError' }));
  });
});
