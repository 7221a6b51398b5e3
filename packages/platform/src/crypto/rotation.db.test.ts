import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Db } from '../db/index.ts';
import { createTestDatabase, type TestDatabase } from '../testing/index.ts';
import { createFieldEncryption, type FieldEncryption } from './field-encryption.ts';
import { generateEncryptionKey, parseKeyring } from './keyring.ts';
import {
  countValuesToRotate,
  type RotateEncryptedColumnOptions,
  type RotationProgress,
  rotateEncryptedColumn,
} from './rotation.ts';

type SecretsRow = { id: string; value: string | null };
type CryptoTestSchema = Record<string, SecretsRow>;

const k1 = generateEncryptionKey();
const k2 = generateEncryptionKey();
/** The application before the new key: writes under k1. */
const beforeRotation = createFieldEncryption(parseKeyring(`k1:${k1}`));
/** The application after the new key is deployed: writes under k2, reads both. */
const duringRotation = createFieldEncryption(parseKeyring(`k2:${k2},k1:${k1}`));
/** After rotation the old key can be retired. */
const afterRotation = createFieldEncryption(parseKeyring(`k2:${k2}`));

let testDb: TestDatabase;
let db: Db<CryptoTestSchema>;
let tableCount = 0;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  db = testDb.database.typed<CryptoTestSchema>();
  await testDb.database.pool.query('create schema crypto_test');
});

afterAll(async () => {
  await testDb?.drop();
});

function aadFor(table: string): (id: string) => string {
  return (id) => `${table}:value:${id}`;
}

/** A fresh table per test, so tests share no rows. */
async function createSecretsTable(): Promise<string> {
  tableCount += 1;
  const table = `crypto_test.secrets_${tableCount}`;
  await testDb.database.pool.query(`create table ${table} (id uuid primary key, value text)`);
  return table;
}

/** Inserts `count` rows encrypted under `encryption`; returns each id's plaintext. */
async function seedRows(
  table: string,
  count: number,
  encryption: FieldEncryption,
): Promise<Map<string, string>> {
  const aad = aadFor(table);
  const plaintexts = new Map<string, string>();
  for (let index = 0; index < count; index += 1)
    plaintexts.set(randomUUID(), `secret ${index} ${randomUUID()}`);
  const ids = [...plaintexts.keys()];
  const values = ids.map((id) => encryption.encrypt(plaintexts.get(id) ?? '', aad(id)));
  await testDb.database.pool.query(
    `insert into ${table} (id, value) select * from unnest($1::uuid[], $2::text[])`,
    [ids, values],
  );
  return plaintexts;
}

async function readRows(table: string): Promise<SecretsRow[]> {
  const result = await testDb.database.pool.query<SecretsRow>(`select id, value from ${table} order by id`);
  return result.rows;
}

async function readValue(table: string, id: string): Promise<string | null | undefined> {
  const result = await testDb.database.pool.query<SecretsRow>(`select value from ${table} where id = $1`, [
    id,
  ]);
  return result.rows[0]?.value;
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
  table: string,
  plaintexts: Map<string, string>,
  encryption: FieldEncryption,
): Promise<void> {
  const rows = (await readRows(table)).filter((row) => row.value !== null);
  expect(rows).toHaveLength(plaintexts.size);
  const aad = aadFor(table);
  const mismatches = rows.filter(
    (row) => encryption.decrypt(row.value ?? '', aad(row.id)) !== plaintexts.get(row.id),
  );
  expect(mismatches).toEqual([]);
}

function rotate(table: string, overrides: Partial<RotateEncryptedColumnOptions<CryptoTestSchema>> = {}) {
  return rotateEncryptedColumn({
    db,
    table,
    idColumn: 'id',
    column: 'value',
    aad: aadFor(table),
    batchSize: 500,
    encryption: duringRotation,
    ...overrides,
  });
}

describe('rotateEncryptedColumn', () => {
  it('moves every row to the active key in batches while every row stays readable, then has nothing to do', async () => {
    const table = await createSecretsTable();
    const plaintexts = await seedRows(table, 2500, beforeRotation);
    const nullId = randomUUID();
    await testDb.database.pool.query(`insert into ${table} (id, value) values ($1, null)`, [nullId]);
    const progress: RotationProgress[] = [];
    const keyIdsBetweenBatches: Record<string, number>[] = [];

    const result = await rotate(table, {
      async onProgress(step) {
        progress.push(step);
        // The application reads between batches, with the keyring it runs in production.
        keyIdsBetweenBatches.push(countByKeyId(await readRows(table)));
        await expectAllReadable(table, plaintexts, duringRotation);
      },
    });

    expect(result).toEqual({
      batches: 5,
      scanned: 2500,
      rotated: 2500,
      conflicts: 0,
      failed: 0,
      failures: [],
      isComplete: true,
    });
    expect(progress.map((step) => step.rotated)).toEqual([500, 1000, 1500, 2000, 2500]);
    expect(keyIdsBetweenBatches).toEqual([
      { k1: 2000, k2: 500 },
      { k1: 1500, k2: 1000 },
      { k1: 1000, k2: 1500 },
      { k1: 500, k2: 2000 },
      { k2: 2500 },
    ]);
    expect(await countValuesToRotate({ db, table, column: 'value', encryption: duringRotation })).toBe(0);
    expect(await readValue(table, nullId)).toBeNull();

    const again = await rotate(table);
    expect(again).toEqual({
      batches: 0,
      scanned: 0,
      rotated: 0,
      conflicts: 0,
      failed: 0,
      failures: [],
      isComplete: true,
    });
  });

  it('leaves every value decrypting to its original plaintext under the new key alone', async () => {
    const table = await createSecretsTable();
    const plaintexts = await seedRows(table, 1200, beforeRotation);

    await rotate(table);

    expect(countByKeyId(await readRows(table))).toEqual({ k2: 1200 });
    await expectAllReadable(table, plaintexts, afterRotation);
  });

  it('stops before the next batch when signalled and a second run completes the rest', async () => {
    const table = await createSecretsTable();
    const plaintexts = await seedRows(table, 2500, beforeRotation);
    const stop = new AbortController();

    const first = await rotate(table, { signal: stop.signal, onProgress: () => stop.abort() });

    expect(first).toMatchObject({ batches: 1, scanned: 500, rotated: 500, isComplete: false });
    expect(await countValuesToRotate({ db, table, column: 'value', encryption: duringRotation })).toBe(2000);
    await expectAllReadable(table, plaintexts, duringRotation);

    const second = await rotate(table);

    expect(second).toMatchObject({
      batches: 4,
      scanned: 2000,
      rotated: 2000,
      conflicts: 0,
      isComplete: true,
    });
    expect(countByKeyId(await readRows(table))).toEqual({ k2: 2500 });
    await expectAllReadable(table, plaintexts, afterRotation);
  });

  it('does not overwrite a row the application changes between the read and the write, and a re-run rotates it', async () => {
    const table = await createSecretsTable();
    const plaintexts = await seedRows(table, 2500, beforeRotation);
    const aad = aadFor(table);
    const targetId = (await readRows(table))[10]?.id ?? '';
    // An instance still on the old keyring writes under k1 during the rotation.
    const applicationValue = beforeRotation.encrypt('changed by the application', aad(targetId));
    const application = await testDb.database.pool.connect();
    try {
      const { rows } = await application.query<{ pid: number }>('select pg_backend_pid() as pid');
      const applicationPid = rows[0]?.pid;
      await application.query('begin');
      await application.query(`update ${table} set value = $1 where id = $2`, [applicationValue, targetId]);

      // The rotation reads the committed (old) value, then its conditional
      // update of the row waits on the application's row lock.
      let isRotationSettled = false;
      const rotation = rotate(table).finally(() => {
        isRotationSettled = true;
      });
      while (!(await isBlockedBy(applicationPid))) {
        if (isRotationSettled) throw new Error('the rotation never waited on the application row lock');
        await sleep(10);
      }
      await application.query('commit');
      const result = await rotation;

      expect(result).toMatchObject({
        scanned: 2500,
        rotated: 2499,
        conflicts: 1,
        failed: 0,
        isComplete: true,
      });
      expect(await readValue(table, targetId)).toBe(applicationValue);
    } finally {
      application.release();
    }

    const rerun = await rotate(table);

    expect(rerun).toMatchObject({ scanned: 1, rotated: 1, conflicts: 0, isComplete: true });
    plaintexts.set(targetId, 'changed by the application');
    expect(countByKeyId(await readRows(table))).toEqual({ k2: 2500 });
    await expectAllReadable(table, plaintexts, afterRotation);
  });

  it('picks up on a re-run a row rewritten under the old key after the pass went by, and skips rows already new', async () => {
    const table = await createSecretsTable();
    const plaintexts = await seedRows(table, 2500, beforeRotation);
    const aad = aadFor(table);
    const ids = (await readRows(table)).map((row) => row.id);
    const behindId = ids[5] ?? '';
    const aheadId = ids[1800] ?? '';

    const result = await rotate(table, {
      async onProgress(step) {
        if (step.batches !== 1) return;
        // An old instance rewrites a row the pass has already rotated; a new
        // instance rewrites one the pass has not reached yet.
        await testDb.database.pool.query(`update ${table} set value = $1 where id = $2`, [
          beforeRotation.encrypt('old instance write', aad(behindId)),
          behindId,
        ]);
        await testDb.database.pool.query(`update ${table} set value = $1 where id = $2`, [
          duringRotation.encrypt('new instance write', aad(aheadId)),
          aheadId,
        ]);
      },
    });

    expect(result).toMatchObject({ scanned: 2499, rotated: 2499, conflicts: 0, isComplete: true });
    expect(await countValuesToRotate({ db, table, column: 'value', encryption: duringRotation })).toBe(1);

    const rerun = await rotate(table);

    expect(rerun).toMatchObject({ scanned: 1, rotated: 1 });
    plaintexts.set(behindId, 'old instance write');
    plaintexts.set(aheadId, 'new instance write');
    await expectAllReadable(table, plaintexts, afterRotation);
  });

  it('leaves rows it cannot decrypt untouched, reports their ids and codes, and still finishes', async () => {
    const table = await createSecretsTable();
    const plaintexts = await seedRows(table, 1200, beforeRotation);
    const ids = (await readRows(table)).map((row) => row.id);
    const [movedId, retiredKeyId, plaintextId] = [ids[100] ?? '', ids[700] ?? '', ids[1100] ?? ''];
    const aad = aadFor(table);
    const retired = createFieldEncryption(parseKeyring(`k0:${generateEncryptionKey()}`));
    const broken = new Map([
      // Copied from another row: its AAD names that row.
      [movedId, beforeRotation.encrypt('moved', aad(ids[0] ?? ''))],
      [retiredKeyId, retired.encrypt('under a retired key', aad(retiredKeyId))],
      [plaintextId, 'never encrypted'],
    ]);
    for (const [id, value] of broken) {
      await testDb.database.pool.query(`update ${table} set value = $1 where id = $2`, [value, id]);
    }

    const result = await rotate(table);

    expect(result).toMatchObject({ scanned: 1200, rotated: 1197, failed: 3, conflicts: 0, isComplete: true });
    expect(result.failures).toEqual([
      { id: movedId, code: 'crypto.decrypt_failed' },
      { id: retiredKeyId, code: 'crypto.unknown_key' },
      { id: plaintextId, code: 'crypto.malformed_ciphertext' },
    ]);
    for (const [id, value] of broken) expect(await readValue(table, id)).toBe(value);

    const rerun = await rotate(table);

    expect(rerun).toMatchObject({ scanned: 3, rotated: 0, failed: 3, isComplete: true });
    for (const id of broken.keys()) plaintexts.delete(id);
    const rows = (await readRows(table)).filter((row) => !broken.has(row.id));
    expect(countByKeyId(rows)).toEqual({ k2: 1197 });
  });

  it('works on a bare Kysely instance, an unqualified table and integer ids', async () => {
    await testDb.database.pool.query(
      'create table public.crypto_numbered (id bigint primary key, value text)',
    );
    const aad = (id: string) => `crypto_numbered:value:${id}`;
    const ids = Array.from({ length: 600 }, (_, index) => index + 1);
    await testDb.database.pool.query(
      'insert into public.crypto_numbered (id, value) select * from unnest($1::bigint[], $2::text[])',
      [ids, ids.map((id) => beforeRotation.encrypt(`number ${id}`, aad(String(id))))],
    );
    const pool = new pg.Pool({ connectionString: testDb.url, max: 2 });
    const kysely = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
    try {
      const result = await rotateEncryptedColumn({
        db: kysely,
        table: 'crypto_numbered',
        idColumn: 'id',
        column: 'value',
        aad,
        batchSize: 250,
        encryption: duringRotation,
      });

      expect(result).toMatchObject({ batches: 3, scanned: 600, rotated: 600, isComplete: true });
    } finally {
      await kysely.destroy();
    }
    const { rows } = await testDb.database.pool.query<{ id: string; value: string }>(
      'select id, value from public.crypto_numbered order by id',
    );
    expect(rows.map((row) => afterRotation.decrypt(row.value, aad(row.id)))).toEqual(
      ids.map((id) => `number ${id}`),
    );
  });
});

/** True once some backend is waiting on a lock held by `pid`. */
async function isBlockedBy(pid: number | undefined): Promise<boolean> {
  const result = await testDb.database.pool.query<{ count: string }>(
    'select count(*) from pg_stat_activity where $1 = any(pg_blocking_pids(pid))',
    [pid],
  );
  return Number(result.rows[0]?.count) > 0;
}
