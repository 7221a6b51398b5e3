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

  it('in a web process registers subscriptions and queues, sends jobs, and leaves delivering and working them to a worker', async () => {
    const logger = createLogger({ level: 'silent' });
    const webConfig = loadConfig(PlatformConfigSchema, { NODE_ENV: 'test', KEEL_ROLE: 'web' });
    const handled: string[] = [];
    const worked: unknown[] = [];
    const declare = (target: Background) => {
      target.registry.subscribe({
        name: 'tests.roles',
        eventTypes: ['tests.roles.v1'],
        isOrderedPerAggregate: false,
        maxAttempts: 1,
        handler: async (event: EventEnvelope) => {
          handled.push(event.id);
        },
      });
      target.registry.addJobQueue({
        name: 'tests.roles-job',
        handler: async (job: { data: unknown }) => {
          worked.push(job.data);
        },
      });
      target.registry.schedule('tests.roles-job', '0 4 * * *', { scheduled: true });
    };
    const settings = { connectionString: testDb.url, database: testDb.database, logger, clock: later };
    const web = createBackground({
      ...backgroundSettingsFrom(webConfig, settings),
      jobsPollIntervalSeconds: 0.5,
    });
    declare(web);
    const worker = createBackground({
      ...backgroundSettingsFrom(config, settings),
      jobsPollIntervalSeconds: 0.5,
    });
    declare(worker);
    try {
      await web.start();
      const event = await testDb.database.typed<unknown>().transaction(async (trx) => {
        await web.registry.jobs.sendWith(trx, 'tests.roles-job', { from: 'web' });
        return emitEvent(trx, {
          type: 'tests.roles.v1',
          aggregateType: 'test',
          aggregateId: 'a',
          payload: {},
        });
      });
      const pending = async () => {
        const result = await testDb.database.typed<unknown>().run((db) =>
          sql<{ deliveries: string; jobs: string; schedules: string }>`
            select
              (select count(*) from platform.event_deliveries where subscriber = 'tests.roles') as deliveries,
              (select count(*) from pgboss.job where name = 'tests.roles-job' and state = 'created') as jobs,
              (select count(*) from pgboss.schedule where name = 'tests.roles-job') as schedules`.execute(db),
        );
        return result.rows[0];
      };
      // The web process fanned the event out and queued the job, but works neither; nor does it schedule.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await pending()).toEqual({ deliveries: '1', jobs: '1', schedules: '0' });
      expect(handled).toEqual([]);
      expect(worked).toEqual([]);

      await worker.start();
      await vi.waitFor(
        async () => {
          expect(handled).toEqual([event.id]);
          expect(worked).toEqual([{ from: 'web' }]);
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(await pending()).toEqual({ deliveries: '0', jobs: '0', schedules: '1' });
    } finally {
      await web.stop();
      await worker.stop();
    }
  });
});
