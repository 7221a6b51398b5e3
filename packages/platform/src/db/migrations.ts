import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from '../observability/logger.ts';

/** One service's migrations: numbered SQL files applied into its own schema. */
export type MigrationSource = {
  /** Owner recorded with each migration (`platform`, `user-metadata`). */
  service: string;
  /** The Postgres schema the service owns; created before its first migration. */
  schema: string;
  directory: string;
};

type MigrationFile = { version: number; name: string; sql: string; checksum: string };

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

// Any constant works; it only has to be the same in every Keel process.
const MIGRATION_LOCK_KEY = 7_271_639_001;
const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * Applies pending migrations, forward only, one transaction per file, under a
 * session advisory lock so that several processes starting together apply
 * each file exactly once. Refuses to start when an applied file was edited
 * (checksum mismatch) or removed: the schema would no longer match the code.
 *
 * @example
 * await runMigrations(pool, [{ service: 'platform', schema: 'platform', directory }], logger);
 */
export async function runMigrations(
  pool: pg.Pool,
  sources: MigrationSource[],
  logger: Logger,
): Promise<void> {
  const planned = await Promise.all(
    sources.map(async (source) => ({ source, files: await readMigrations(source) })),
  );
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`
      create schema if not exists platform;
      create table if not exists platform.schema_migrations (
        service text not null,
        version integer not null,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now(),
        primary key (service, version)
      )`);
    for (const { source, files } of planned) {
      const applied = await client.query<{ version: number; name: string; checksum: string }>(
        'select version, name, checksum from platform.schema_migrations where service = $1 order by version',
        [source.service],
      );
      verifyApplied(source, files, applied.rows);
      const appliedVersions = new Set(applied.rows.map((row) => row.version));
      for (const file of files.filter((candidate) => !appliedVersions.has(candidate.version))) {
        await applyMigration(client, source, file);
        logger.info(
          { service: source.service, migration: `${pad(file.version)}_${file.name}` },
          'migration applied',
        );
      }
    }
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
}

/** True when every migration file of every source is recorded as applied. */
export async function areMigrationsApplied(pool: pg.Pool, sources: MigrationSource[]): Promise<boolean> {
  const expected = await Promise.all(
    sources.map(async (source) => ({ source, files: await readMigrations(source) })),
  );
  const result = await pool.query<{ service: string; version: number }>(
    'select service, version from platform.schema_migrations',
  );
  const applied = new Set(result.rows.map((row) => `${row.service}:${row.version}`));
  return expected.every(({ source, files }) =>
    files.every((file) => applied.has(`${source.service}:${file.version}`)),
  );
}

async function readMigrations(source: MigrationSource): Promise<MigrationFile[]> {
  const entries = (await readdir(source.directory)).filter((entry) => entry.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const entry of entries) {
    const match = FILE_PATTERN.exec(entry);
    if (!match?.[1] || !match[2]) {
      throw new MigrationError(
        `${source.service}: migration file ${entry} must be named NNNN_snake_case_name.sql`,
      );
    }
    const sql = await readFile(path.join(source.directory, entry), 'utf8');
    files.push({ version: Number(match[1]), name: match[2], sql, checksum: checksum(sql) });
  }
  files.forEach((file, index) => {
    if (file.version !== index + 1) {
      throw new MigrationError(
        `${source.service}: migrations must be numbered 0001, 0002, … without gaps; found ${pad(file.version)}`,
      );
    }
  });
  return files;
}

function verifyApplied(
  source: MigrationSource,
  files: MigrationFile[],
  applied: { version: number; name: string; checksum: string }[],
): void {
  const byVersion = new Map(files.map((file) => [file.version, file]));
  for (const row of applied) {
    const file = byVersion.get(row.version);
    if (file === undefined) {
      throw new MigrationError(
        `${source.service}: migration ${pad(row.version)}_${row.name} is applied but its file is missing; migrations are forward-only`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `${source.service}: migration ${pad(row.version)}_${row.name}.sql was edited after it was applied ` +
          `(checksum ${row.checksum.slice(0, 12)}… in the database, ${file.checksum.slice(0, 12)}… on disk). ` +
          'Restore the file and add a new migration instead.',
      );
    }
  }
}

async function applyMigration(
  client: pg.PoolClient,
  source: MigrationSource,
  file: MigrationFile,
): Promise<void> {
  await client.query('begin');
  try {
    await client.query(`create schema if not exists ${quoteIdentifier(source.schema)}`);
    await client.query(file.sql);
    await client.query(
      'insert into platform.schema_migrations (service, version, name, checksum) values ($1, $2, $3, $4)',
      [source.service, file.version, file.name, file.checksum],
    );
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    const reason = error instanceof Error ? error.message : String(error);
    throw new MigrationError(
      `${source.service}: migration ${pad(file.version)}_${file.name} failed: ${reason}`,
    );
  }
}

function checksum(sql: string): string {
  // Line endings differ between checkouts; they do not change the migration.
  return createHash('sha256').update(sql.replaceAll('\r\n', '\n')).digest('hex');
}

function pad(version: number): string {
  return String(version).padStart(4, '0');
}

function quoteIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new MigrationError(`invalid schema name ${name}`);
  return `"${name}"`;
}
