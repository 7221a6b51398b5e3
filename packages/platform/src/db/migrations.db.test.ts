import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../observability/index.ts';
import { createTestDatabase, type TestDatabase } from '../testing/index.ts';
import { areMigrationsApplied, MigrationError, type MigrationSource, runMigrations } from './index.ts';

const silentLogger = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let pool: pg.Pool;
const directories: string[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  pool = testDb.database.pool;
});

afterAll(async () => {
  await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
  await testDb.drop();
});

/** A throwaway service with its own schema and a temp directory holding its files. */
async function buildSource(
  files: (schema: string) => Record<string, string> = () => ({}),
): Promise<MigrationSource> {
  const suffix = randomBytes(4).toString('hex');
  const schema = `migration_test_${suffix}`;
  const directory = await mkdtemp(path.join(tmpdir(), 'keel-migrations-'));
  directories.push(directory);
  for (const [name, sql] of Object.entries(files(schema))) await writeFile(path.join(directory, name), sql);
  return { service: `migration-test-${suffix}`, schema, directory };
}

async function writeMigration(source: MigrationSource, name: string, sql: string): Promise<void> {
  await writeFile(path.join(source.directory, name), sql);
}

async function appliedRows(source: MigrationSource) {
  const result = await pool.query<{ version: number; name: string; checksum: string; applied_at: Date }>(
    'select version, name, checksum, applied_at from platform.schema_migrations where service = $1 order by version',
    [source.service],
  );
  return result.rows;
}

async function tableExists(schema: string, table: string): Promise<boolean> {
  const result = await pool.query<{ regclass: string | null }>('select to_regclass($1) as regclass', [
    `${schema}.${table}`,
  ]);
  return result.rows[0]?.regclass != null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function migrationFailure(sources: MigrationSource[]): Promise<MigrationError> {
  const error = await runMigrations(pool, sources, silentLogger).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(MigrationError);
  return error as MigrationError;
}

// Not idempotent on purpose: applying any of these twice fails.
function createThings(schema: string) {
  return `create table ${schema}.things (id integer primary key);`;
}
function addLabel(schema: string) {
  return `alter table ${schema}.things add column label text not null default '';`;
}

describe('runMigrations', () => {
  it('applies the files in version order into the service schema and records their checksums', async () => {
    // 0002 depends on 0001: applying them in any other order fails.
    const source = await buildSource((schema) => ({
      '0002_add_label.sql': addLabel(schema),
      '0001_create_things.sql': createThings(schema),
      'README.md': 'not a migration',
    }));

    await runMigrations(pool, [source], silentLogger);

    expect(await appliedRows(source)).toEqual([
      {
        version: 1,
        name: 'create_things',
        checksum: sha256(createThings(source.schema)),
        applied_at: expect.any(Date),
      },
      {
        version: 2,
        name: 'add_label',
        checksum: sha256(addLabel(source.schema)),
        applied_at: expect.any(Date),
      },
    ]);
    const columns = await pool.query<{ column_name: string }>(
      `select column_name from information_schema.columns
       where table_schema = $1 and table_name = 'things' order by ordinal_position`,
      [source.schema],
    );
    expect(columns.rows.map((row) => row.column_name)).toEqual(['id', 'label']);
  });

  it('does nothing on a second run when every file is applied', async () => {
    const source = await buildSource((schema) => ({
      '0001_create_things.sql': createThings(schema),
      '0002_add_label.sql': addLabel(schema),
    }));
    await runMigrations(pool, [source], silentLogger);
    const before = await appliedRows(source);

    await runMigrations(pool, [source], silentLogger);

    expect(await appliedRows(source)).toEqual(before);
  });

  it('applies only the files added since the last run', async () => {
    const source = await buildSource((schema) => ({ '0001_create_things.sql': createThings(schema) }));
    await runMigrations(pool, [source], silentLogger);
    await writeMigration(source, '0002_add_label.sql', addLabel(source.schema));

    await runMigrations(pool, [source], silentLogger);

    expect((await appliedRows(source)).map((row) => row.version)).toEqual([1, 2]);
  });

  it('treats a line-ending change in an applied file as the same migration', async () => {
    const source = await buildSource((schema) => ({
      '0001_create_things.sql': `-- things\r\n${createThings(schema)}\r\n`,
    }));
    await runMigrations(pool, [source], silentLogger);
    await writeMigration(source, '0001_create_things.sql', `-- things\n${createThings(source.schema)}\n`);

    await expect(runMigrations(pool, [source], silentLogger)).resolves.toBeUndefined();
  });

  it('refuses with MigrationError naming the file when an applied file was edited', async () => {
    const source = await buildSource((schema) => ({ '0001_create_things.sql': createThings(schema) }));
    await runMigrations(pool, [source], silentLogger);
    await writeMigration(
      source,
      '0001_create_things.sql',
      `${createThings(source.schema)}\n-- edited after the fact`,
    );
    await writeMigration(source, '0002_add_label.sql', addLabel(source.schema));

    const error = await migrationFailure([source]);

    expect(error.message).toContain('0001_create_things');
    // Nothing after the mismatch runs.
    expect((await appliedRows(source)).map((row) => row.version)).toEqual([1]);
  });

  it('refuses with MigrationError naming the file when an applied file was removed', async () => {
    const source = await buildSource((schema) => ({
      '0001_create_things.sql': createThings(schema),
      '0002_add_label.sql': addLabel(schema),
    }));
    await runMigrations(pool, [source], silentLogger);
    await unlink(path.join(source.directory, '0002_add_label.sql'));

    const error = await migrationFailure([source]);

    expect(error.message).toContain('0002_add_label');
  });

  it('rejects a gap in the numbering before applying anything', async () => {
    const source = await buildSource((schema) => ({
      '0001_create_things.sql': createThings(schema),
      '0003_add_label.sql': addLabel(schema),
    }));

    await migrationFailure([source]);

    expect(await appliedRows(source)).toEqual([]);
    expect(await tableExists(source.schema, 'things')).toBe(false);
  });

  it('rejects a numbering that does not start at 0001', async () => {
    const source = await buildSource((schema) => ({ '0002_create_things.sql': createThings(schema) }));

    await migrationFailure([source]);

    expect(await appliedRows(source)).toEqual([]);
  });

  it.each([
    '1_create_things.sql',
    '0001-create-things.sql',
    '0001_Create_Things.sql',
    '0001_.sql',
    '00001_create_things.sql',
  ])('rejects the badly named file %s', async (name) => {
    const source = await buildSource((schema) => ({ [name]: createThings(schema) }));

    const error = await migrationFailure([source]);

    expect(error.message).toContain(name);
    expect(await appliedRows(source)).toEqual([]);
  });

  it('rolls back a failing migration, records nothing for it and applies it once fixed', async () => {
    const source = await buildSource((schema) => ({
      '0001_create_things.sql': createThings(schema),
      '0002_create_broken.sql': `create table ${schema}.broken (id integer); select 1 / 0;`,
    }));

    const error = await migrationFailure([source]);

    expect(error.message).toContain('0002_create_broken');
    expect((await appliedRows(source)).map((row) => row.version)).toEqual([1]);
    expect(await tableExists(source.schema, 'things')).toBe(true);
    expect(await tableExists(source.schema, 'broken')).toBe(false);

    await writeMigration(
      source,
      '0002_create_broken.sql',
      `create table ${source.schema}.broken (id integer);`,
    );
    await runMigrations(pool, [source], silentLogger);

    expect((await appliedRows(source)).map((row) => row.version)).toEqual([1, 2]);
    expect(await tableExists(source.schema, 'broken')).toBe(true);
  });

  it('applies each file exactly once when several processes migrate at the same time', async () => {
    const source = await buildSource((schema) => ({
      // The sleep keeps the first run inside the lock while the others queue.
      '0001_create_things.sql': `${createThings(schema)} select pg_sleep(0.2);`,
      '0002_add_label.sql': addLabel(schema),
      '0003_create_others.sql': `create table ${schema}.others (id integer primary key);`,
    }));
    // One pool per "process", so the runs hold separate sessions.
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: testDb.url, max: 1 }));

    try {
      const results = await Promise.allSettled(
        pools.map((processPool) => runMigrations(processPool, [source], silentLogger)),
      );
      expect(results.map((result) => result.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
      ]);
    } finally {
      await Promise.all(pools.map((processPool) => processPool.end()));
    }

    expect((await appliedRows(source)).map((row) => row.version)).toEqual([1, 2, 3]);
  });

  it('applies several services in one run, each into its own schema', async () => {
    const first = await buildSource((schema) => ({ '0001_create_things.sql': createThings(schema) }));
    const second = await buildSource((schema) => ({ '0001_create_things.sql': createThings(schema) }));

    await runMigrations(pool, [first, second], silentLogger);

    expect(await tableExists(first.schema, 'things')).toBe(true);
    expect(await tableExists(second.schema, 'things')).toBe(true);
    expect((await appliedRows(first)).map((row) => row.version)).toEqual([1]);
    expect((await appliedRows(second)).map((row) => row.version)).toEqual([1]);
  });
});

describe('areMigrationsApplied', () => {
  it('is false before the run, true after it and false again once a file is added', async () => {
    const source = await buildSource((schema) => ({ '0001_create_things.sql': createThings(schema) }));

    expect(await areMigrationsApplied(pool, [source])).toBe(false);
    await runMigrations(pool, [source], silentLogger);
    expect(await areMigrationsApplied(pool, [source])).toBe(true);

    await writeMigration(source, '0002_add_label.sql', addLabel(source.schema));
    expect(await areMigrationsApplied(pool, [source])).toBe(false);
  });
});
