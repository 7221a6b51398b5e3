import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  createDatabase,
  type Database,
  type DatabaseSettings,
  type MigrationSource,
  runMigrations,
  startEmbeddedPostgres,
} from '../db/index.ts';
import { createLogger, type Logger } from '../observability/index.ts';

/** Where the test PostgreSQL server is and which migrated template to clone. */
export type TestDatabaseServer = { adminUrl: string; templateName: string };

const quietLogger = createLogger({ level: 'silent' });

/**
 * For Vitest's globalSetup: finds a server (DATABASE_URL, else an embedded
 * one under .keel/test), creates a template database and migrates it once
 * per run. Returns the server description and a teardown that drops the
 * template and every database cloned from it.
 */
export async function prepareTestDatabaseServer(options: {
  sources: MigrationSource[];
  dataDir?: string;
  logger?: Logger;
}): Promise<{ server: TestDatabaseServer; teardown: () => Promise<void> }> {
  const logger = options.logger ?? quietLogger;
  const embedded = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir: options.dataDir ?? '.keel/test', logger });
  const adminUrl = process.env.DATABASE_URL ?? embedded?.url ?? '';
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const templateName = `keel_test_${runId}`;

  await withAdminClient(adminUrl, (client) => client.query(`create database ${templateName}`));
  const templatePool = new pg.Pool({ connectionString: withDatabase(adminUrl, templateName), max: 2 });
  try {
    await runMigrations(templatePool, options.sources, logger);
  } finally {
    await templatePool.end();
  }

  return {
    server: { adminUrl, templateName },
    async teardown() {
      await withAdminClient(adminUrl, async (client) => {
        const clones = await client.query<{ datname: string }>(
          'select datname from pg_database where datname like $1',
          [`${templateName}%`],
        );
        for (const { datname } of clones.rows) {
          await client.query(`drop database if exists ${datname} with (force)`);
        }
      });
      await embedded?.stop();
    },
  };
}

export type TestDatabase = {
  url: string;
  name: string;
  database: Database;
  /** Closes the pool and drops the database. */
  drop: () => Promise<void>;
};

export const TEST_DATABASE_SETTINGS: Omit<DatabaseSettings, 'url'> = {
  poolMax: 10,
  statementTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  retryMaxAttempts: 4,
  retryBudgetMs: 2000,
  breakerThreshold: 5,
  breakerHalfOpenAfterMs: 1000,
};

/**
 * A fresh, migrated database for one test file, cloned from the run's
 * template (milliseconds, not a migration run).
 *
 * @example
 * const testDb = await createTestDatabase(inject('keelTestDatabase'));
 * afterAll(() => testDb.drop());
 */
export async function createTestDatabase(
  server: TestDatabaseServer,
  settings: Partial<Omit<DatabaseSettings, 'url'>> = {},
  logger: Logger = quietLogger,
): Promise<TestDatabase> {
  const name = `${server.templateName}_${randomBytes(4).toString('hex')}`;
  await withAdminClient(server.adminUrl, (client) =>
    client.query(`create database ${name} template ${server.templateName}`),
  );
  const url = withDatabase(server.adminUrl, name);
  const database = createDatabase({ ...TEST_DATABASE_SETTINGS, ...settings, url }, logger);
  return {
    url,
    name,
    database,
    async drop() {
      await database.close();
      await withAdminClient(server.adminUrl, (client) =>
        client.query(`drop database if exists ${name} with (force)`),
      );
    },
  };
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function withAdminClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
