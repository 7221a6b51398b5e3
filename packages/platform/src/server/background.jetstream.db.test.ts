import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { loadConfig, PlatformConfigSchema } from '../config/index.ts';
import { systemClock } from '../module/index.ts';
import { connectNats, createJetStreamRelay, type NatsClient } from '../nats/index.ts';
import { deleteServiceStreams, TEST_NATS_URL, uniqueService } from '../nats/jetstream.factories.ts';
import { createLogger } from '../observability/index.ts';
import { emitEvent } from '../outbox/index.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { type Background, backgroundSettingsFrom, createBackground } from './background.ts';

// A server with NATS_URL: every committed event goes through the relay to
// JetStream, and a subscription named in EVENTS_JETSTREAM_SUBSCRIPTIONS is fed
// from the stream instead of the Postgres bus, with the same inbox.

const logger = createLogger({ level: 'silent' });
const config = loadConfig(PlatformConfigSchema, { NODE_ENV: 'test' });
const service = uniqueService();
const eventType = `${service}.thing_done.v1`;
const fromStream: string[] = [];
const fromPostgres: string[] = [];
let testDb: TestDatabase;
let nats: NatsClient;
let background: Background;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  nats = await connectNats({ servers: TEST_NATS_URL, name: 'keel-background-tests', logger });
  background = createBackground({
    ...backgroundSettingsFrom(config, { database: testDb.database, logger, clock: systemClock }),
    eventPollIntervalMs: 50,
    publishers: [createJetStreamRelay({ connection: nats, logger, services: [service] })],
    jetstream: { connection: nats, subscriptionNames: [`${service}.streamed`] },
  });
  background.registry.subscribe({
    name: `${service}.streamed`,
    eventTypes: [eventType],
    isOrderedPerAggregate: false,
    maxAttempts: 3,
    handler: async (event) => {
      fromStream.push(event.id);
    },
  });
  background.registry.subscribe({
    name: `${service}.local`,
    eventTypes: [eventType],
    isOrderedPerAggregate: false,
    maxAttempts: 3,
    handler: async (event) => {
      fromPostgres.push(event.id);
    },
  });
  await background.start();
});

afterAll(async () => {
  await background?.stop();
  if (nats !== undefined) {
    await deleteServiceStreams(nats, [service]);
    await nats.close();
  }
  await testDb?.drop();
});

describe('background work with JetStream', () => {
  it('feeds a JetStream subscription through the relay and the stream, and a Postgres one through the bus', async () => {
    const event = await testDb.database
      .typed<unknown>()
      .transaction((trx) =>
        emitEvent(trx, { type: eventType, aggregateType: 'thing', aggregateId: 'a', payload: { n: 1 } }),
      );
    await vi.waitFor(() => expect(fromStream).toEqual([event.id]), { timeout: 15_000, interval: 50 });
    await vi.waitFor(() => expect(fromPostgres).toEqual([event.id]), { timeout: 15_000, interval: 50 });
    // The moved subscription has no Postgres deliveries: the relay is what feeds it.
    const pending = await testDb.database
      .typed<unknown>()
      .run((db) =>
        sql<{ subscriber: string }>`select distinct subscriber from platform.event_deliveries`.execute(db),
      );
    expect(pending.rows.map((row) => row.subscriber)).not.toContain(`${service}.streamed`);
    const subscribed = await testDb.database.typed<unknown>().run((db) =>
      sql<{
        subscriber: string;
      }>`select subscriber from platform.event_subscriptions where event_type = ${eventType} order by subscriber`.execute(
        db,
      ),
    );
    expect(subscribed.rows.map((row) => row.subscriber)).toEqual([`${service}.local`]);
  });

  it('refuses a JetStream subscription name that no module declared', async () => {
    const stray = createBackground({
      ...backgroundSettingsFrom(config, { database: testDb.database, logger, clock: systemClock }),
      jetstream: { connection: nats, subscriptionNames: ['nobody.here'] },
    });
    await expect(stray.prepare()).rejects.toThrow(/nobody.here/);
  });
});
