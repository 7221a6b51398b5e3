import { loadConfig, PlatformConfigSchema } from '@keel/platform/config';
import { systemClock } from '@keel/platform/module';
import { createLogger } from '@keel/platform/observability';
import { maskPassword, openDatabase } from '@keel/platform/server';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

const logger = createLogger({ level: 'silent' });
let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});

afterAll(async () => {
  await testDb.drop();
});

describe('server start-up against DATABASE_URL', () => {
  it('connects to the external database, finds migrations applied and seeds demo data idempotently', async () => {
    const config = loadConfig(PlatformConfigSchema, { DATABASE_URL: testDb.url });
    const opened = await openDatabase({ config, logger, modules: ALL_MODULES });
    try {
      expect(opened.isEmbedded).toBe(false);
      const context = {
        config,
        database: opened.database,
        logger,
        clock: systemClock,
        ids: { uuid: uuidv7 },
      };
      for (const module of ALL_MODULES) await module.seedDemoData?.(context);
      for (const module of ALL_MODULES) await module.seedDemoData?.(context);

      const users = await opened.database.pool.query<{ email: string }>(
        "select email from user_metadata.users where email like '%@example.com' order by email",
      );
      expect(users.rows.map((row) => row.email)).toEqual(['ada@example.com', 'grace@example.com']);
      const migrations = await opened.database.pool.query('select service from platform.schema_migrations');
      expect(migrations.rowCount).toBeGreaterThan(0);
    } finally {
      await opened.close();
    }
  });

  it('masks the password when showing a connection URL', () => {
    expect(maskPassword('postgres://keel:s3cret@127.0.0.1:5432/keel')).toBe(
      'postgres://keel:***@127.0.0.1:5432/keel',
    );
    expect(maskPassword('postgres://keel@127.0.0.1:5432/keel')).toBe('postgres://keel@127.0.0.1:5432/keel');
    expect(maskPassword('not a url')).toBe('<invalid url>');
  });
});
