import type { EventEnvelope } from '@keel/contracts';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { loadConfig, PlatformConfigSchema } from '../config/index.ts';
import { createDatabase } from '../db/index.ts';
import { createLogger } from '../observability/index.ts';
import { emitEvent } from '../outbox/index.ts';
import { createTestDatabase, TEST_DATABASE_SETTINGS, type TestDatabase } from '../testing/test-database.ts';
import {
  type Background,
  backgroundSettingsFrom,
  createBackground,
  PRUNE_EVENTS_QUEUE,
} from './background.ts';

let testDb: TestDatabase;
let background: Background;
const config = loadConfig(PlatformConfigSchema, { NODE_ENV: 'test', EVENTS_RETENTION_DAYS: '1' });
// The prune job reads this clock: ten days on, yesterday's events are past retention.
const later = { now: () => new Date(Date.now() + 10 * 86_400_000) };

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  background = createBackground({
    ...backgroundSettingsFrom(config, {
      connectionString: testDb.url,
      database: testDb.database,
      logger: createLogger({ level: 'silent' }),
      clock: later,
    }),
    isPruningEvents: true,
    jobsPollIntervalSeconds: 0.5,
  });
  await background.start();
});

afterAll(async () => {
  await background?.stop();
  await testDb?.drop();
});

describe('createBackground with event pruning', () => {
  it('schedules the daily prune job once for the fleet', async () => {
    const rows = await testDb.database
      .typed<unknown>()
      .run((db) => sql<{ name: string; cron: string }>`select name, cron from pgboss.schedule`.execute(db));
    expect(rows.rows).toEqual([{ name: PRUNE_EVENTS_QUEUE, cron: '17 3 * * *' }]);
  });

  it('deletes delivered events past retention when the prune job runs', async () => {
    const event = await testDb.database
      .typed<unknown>()
      .transaction((trx) =>
        emitEvent(trx, { type: 'tests.pruned.v1', aggregateType: 'test', aggregateId: 'a', payload: {} }),
      );
    const countEvents = async () => {
      const result = await testDb.database.typed<unknown>().run((db) =>
        sql<{
          count: string;
        }>`select count(*) as count from platform.outbox_events where id = ${event.id}`.execute(db),
      );
      return Number(result.rows[0]?.count);
    };
    expect(await countEvents()).toBe(1);
    await background.jobs().send(PRUNE_EVENTS_QUEUE, {});
    await vi.waitFor(async () => expect(await countEvents()).toBe(0), { timeout: 10_000, interval: 100 });
  });

  it('stops idempotently', async () => {
    const extra = createBackground(
      backgroundSettingsFrom(config, {
        database: testDb.database,
        logger: createLogger({ level: 'silent' }),
        clock: later,
      }),
    );
    await extra.stop();
    await extra.stop();
    expect(() => extra.events()).toThrow(/not prepared/);
  });

  it('delivers events through a pool of its own while every connection of the shared pool is taken', async () => {
    const shared = createDatabase(
      { ...TEST_DATABASE_SETTINGS, url: testDb.url, poolMax: 2, connectTimeoutMs: 300 },
      createLogger({ level: 'silent' }),
    );
    const handled: string[] = [];
    const own = createBackground(
      backgroundSettingsFrom(config, {
        database: shared,
        logger: createLogger({ level: 'silent' }),
        clock: later,
      }),
    );
    own.registry.subscribe({
      name: 'tests.own-pool',
      eventTypes: ['tests.own_pool.v1'],
      isOrderedPerAggregate: false,
      maxAttempts: 1,
      handler: async (event: EventEnvelope) => {
        handled.push(event.id);
      },
    });
    try {
      await own.prepare();
      const event = await shared
        .typed<unknown>()
        .transaction((trx) =>
          emitEvent(trx, { type: 'tests.own_pool.v1', aggregateType: 'test', aggregateId: 'a', payload: {} }),
        );
      const held = [await shared.pool.connect(), await shared.pool.connect()];
      try {
        expect(await own.drainEvents()).toBe(1);
      } finally {
        for (const client of held) client.release();
      }
      expect(handled).toEqual([event.id]);
    } finally {
      await own.stop();
      await shared.close();
    }
  });
});
