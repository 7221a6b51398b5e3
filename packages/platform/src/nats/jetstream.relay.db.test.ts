import type { EventEnvelope } from '@keel/contracts';
import type { StoredMsg } from '@nats-io/jetstream';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AppError, isAppError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { Registry } from '../observability/metrics.ts';
import { classifyFailure, createEventBus, emitEvent } from '../outbox/index.ts';
import { createManualClock, drainBus } from '../outbox/outbox.factories.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import {
  buildEnvelope,
  deleteServiceStreams,
  findClosedPort,
  startTcpProxy,
  TEST_NATS_URL,
  uniqueService,
} from './jetstream.factories.ts';
import { createJetStreamRelay, type JetStreamRelayOptions } from './jetstream.relay.ts';
import { ensureServiceStream } from './jetstream.streams.ts';
import { eventStreamName } from './jetstream.ts';
import { connectNats, type NatsClient } from './nats.connection.ts';

const silentLogger = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let nats: NatsClient;
const services = new Set<string>();
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  nats = await connectNats({ servers: TEST_NATS_URL, name: 'keel-relay-tests', logger: silentLogger });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  if (nats !== undefined) {
    await deleteServiceStreams(nats, services);
    await nats.close();
  }
  await testDb?.drop();
});

function newService(): string {
  const service = uniqueService();
  services.add(service);
  return service;
}

function openRelay(service: string, options: Partial<JetStreamRelayOptions> = {}) {
  return createJetStreamRelay({ connection: nats, logger: silentLogger, services: [service], ...options });
}

async function streamMessages(service: string): Promise<StoredMsg[]> {
  const jsm = await nats.manager();
  const info = await jsm.streams.info(eventStreamName(service));
  const stored: StoredMsg[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq += 1) {
    const message = await jsm.streams.getMessage(eventStreamName(service), { seq });
    if (message !== null) stored.push(message);
  }
  return stored;
}

async function counterValue(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = await registry.getSingleMetric(name)?.get();
  const sample = metric?.values.find((value) =>
    Object.entries(labels).every(([key, label]) => value.labels[key] === label),
  );
  return sample?.value ?? 0;
}

describe('createJetStreamRelay', () => {
  it('stores an event once when it is published twice with the same id, with subject, body and headers', async () => {
    const service = newService();
    const relay = openRelay(service);
    const registry = new Registry();
    relay.registerMetrics(registry);
    const event = buildEnvelope(service, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });

    await relay.publish(event);
    await relay.publish(event);

    const stored = await streamMessages(service);
    expect(stored).toHaveLength(1);
    const [message] = stored;
    expect(message?.subject).toBe(`keel.events.${service}.thing_happened.v1`);
    expect(message?.json()).toEqual(event);
    expect(message?.header.get('Nats-Msg-Id')).toBe(event.id);
    expect(message?.header.get('traceparent')).toBe(event.traceparent);
    expect(await counterValue(registry, 'keel_jetstream_published_total', { service })).toBe(1);
    expect(await counterValue(registry, 'keel_jetstream_publish_duplicates_total', { service })).toBe(1);
  });

  it('creates the service stream on first use: file storage, limits retention, max age and duplicate window', async () => {
    const service = newService();
    const relay = openRelay(service, { stream: { maxAgeMs: 3_600_000, duplicateWindowMs: 90_000 } });

    await relay.publish(buildEnvelope(service));

    const jsm = await nats.manager();
    const { config } = await jsm.streams.info(`KEEL_EVENTS_${service.toUpperCase()}`);
    expect(config).toMatchObject({
      subjects: [`keel.events.${service}.>`],
      storage: 'file',
      retention: 'limits',
      discard: 'old',
      max_age: 3_600_000 * 1_000_000,
      duplicate_window: 90_000 * 1_000_000,
    });
  });

  it('leaves a stream with the same settings unchanged and updates one whose limits differ', async () => {
    const service = newService();
    const jsm = await nats.manager();

    const created = await ensureServiceStream(jsm, { service });
    const again = await ensureServiceStream(jsm, { service });
    const longer = await ensureServiceStream(jsm, { service, maxAgeMs: 14 * 86_400_000 });
    const asConsumer = await ensureServiceStream(jsm, { service, isUpdatingExisting: false });

    expect([created.outcome, again.outcome, longer.outcome, asConsumer.outcome]).toEqual([
      'created',
      'unchanged',
      'updated',
      'unchanged',
    ]);
    const { config } = await jsm.streams.info(created.name);
    expect(config.max_age).toBe(14 * 86_400_000 * 1_000_000);
    expect(config.duplicate_window).toBe(2 * 60_000 * 1_000_000);
  });

  it('creates its stream again when it was deleted behind its back, after one failed attempt', async () => {
    const service = newService();
    const relay = openRelay(service);
    await relay.publish(buildEnvelope(service));
    const jsm = await nats.manager();
    await jsm.streams.delete(eventStreamName(service));
    const event = buildEnvelope(service);

    const firstAttempt = await relay.publish(event).catch((caught: unknown) => caught);
    await relay.publish(event);

    expect(classifyFailure(firstAttempt)).toEqual({ code: 'nats.unavailable', isPermanent: false });
    const stored = await streamMessages(service);
    expect(stored.map((message) => message.header.get('Nats-Msg-Id'))).toEqual([event.id]);
  });

  it('skips events of services it is not configured for', async () => {
    const service = newService();
    const other = newService();
    const relay = openRelay(service);

    await relay.publish(buildEnvelope(other));

    const jsm = await nats.manager();
    await expect(jsm.streams.info(eventStreamName(other))).rejects.toThrow();
  });
});

describe('the relay as an outbox publisher', () => {
  it('publishes a committed event once and nothing of a rolled-back transaction', async () => {
    const service = newService();
    const relay = openRelay(service);
    const bus = createEventBus({
      database: testDb.database,
      logger: silentLogger,
      subscriptions: [],
      publishers: [relay],
      pollIntervalMs: 50,
      batchSize: 100,
      clock: createManualClock(),
      isListening: false,
    });
    await bus.register();
    cleanups.push(() => bus.stop());
    const type = `${service}.order_placed.v1`;
    const db = testDb.database.typed<unknown>();

    const rolledBack = db.transaction(async (trx) => {
      await emitEvent(trx, { type, aggregateType: 'order', aggregateId: 'o-1', payload: { n: 0 } });
      throw new Error('the business write failed');
    });
    await expect(rolledBack).rejects.toThrow('the business write failed');
    const committed: EventEnvelope = await db.transaction((trx) =>
      emitEvent(trx, {
        type,
        aggregateType: 'order',
        aggregateId: 'o-1',
        payload: { n: 1 },
        occurredAt: new Date('2025-01-02T03:04:05.000Z'),
      }),
    );
    await drainBus(bus);
    // A second drain finds nothing: the delivery was recorded.
    expect(await drainBus(bus)).toBe(0);

    const stored = await streamMessages(service);
    expect(stored).toHaveLength(1);
    expect(stored[0]?.subject).toBe(`keel.events.${type}`);
    expect(stored[0]?.header.get('Nats-Msg-Id')).toBe(committed.id);
    expect(stored[0]?.json()).toEqual({
      id: committed.id,
      type,
      aggregateType: 'order',
      aggregateId: 'o-1',
      occurredAt: '2025-01-02T03:04:05.000Z',
      schemaVersion: 1,
      payload: { n: 1 },
    });
  });

  it('leaves the delivery pending with nats.unavailable while NATS is away, and publishes it once NATS is back', async () => {
    const service = newService();
    const proxy = await startTcpProxy(TEST_NATS_URL);
    cleanups.push(() => proxy.stop());
    const viaProxy = await connectNats({
      servers: proxy.url,
      name: 'keel-relay-outage',
      logger: silentLogger,
      reconnectTimeWaitMs: 50,
      closeTimeoutMs: 1000,
    });
    cleanups.push(() => viaProxy.close());
    const relay = createJetStreamRelay({
      connection: viaProxy,
      logger: silentLogger,
      services: [service],
      publishTimeoutMs: 300,
    });
    await relay.ensureStreams([service]);
    const clock = createManualClock();
    const bus = createEventBus({
      database: testDb.database,
      logger: silentLogger,
      subscriptions: [],
      publishers: [relay],
      pollIntervalMs: 50,
      batchSize: 100,
      clock,
      isListening: false,
      retry: { initialDelayMs: 1000, maxDelayMs: 1000 },
    });
    await bus.register();
    cleanups.push(() => bus.stop());

    await proxy.stop();
    const event = await testDb.database.typed<unknown>().transaction((trx) =>
      emitEvent(trx, {
        type: `${service}.order_placed.v1`,
        aggregateType: 'order',
        aggregateId: 'o-2',
        payload: {},
      }),
    );
    expect(await bus.runOnce()).toBe(1);

    const delivery = await testDb.database.pool.query<{ status: string; last_error_code: string }>(
      `select d.status, d.last_error_code from platform.event_deliveries d
       join platform.outbox_events e on e.position = d.position
       where d.subscriber = 'relay.jetstream' and e.id = $1`,
      [event.id],
    );
    expect(delivery.rows).toEqual([{ status: 'pending', last_error_code: 'nats.unavailable' }]);

    await proxy.resume();
    await vi.waitFor(
      async () => {
        // Each retry is due one backoff later: the test moves the bus's clock.
        clock.advance(1000);
        await bus.runOnce();
        const stored = await streamMessages(service);
        expect(stored.map((message) => message.header.get('Nats-Msg-Id'))).toEqual([event.id]);
      },
      { timeout: 10_000, interval: 100 },
    );
  });
});

describe('NATS unreachable', () => {
  it('fails connectNats with a retryable nats.unavailable error', async () => {
    const port = await findClosedPort();

    const connecting = connectNats({
      servers: `nats://keel:secret@127.0.0.1:${port}`,
      name: 'keel-unreachable',
      logger: silentLogger,
      connectTimeoutMs: 500,
    });

    const error = await connecting.catch((caught: unknown) => caught);
    expect(isAppError(error)).toBe(true);
    expect(error).toMatchObject({ kind: 'unavailable', code: 'nats.unavailable' });
    expect(classifyFailure(error)).toEqual({ code: 'nats.unavailable', isPermanent: false });
    expect((error as AppError).message).not.toContain('secret');
  });

  it('fails a publish on a closed connection with a retryable nats.unavailable error', async () => {
    const service = newService();
    const closing = await connectNats({ servers: TEST_NATS_URL, name: 'keel-closed', logger: silentLogger });
    const relay = createJetStreamRelay({ connection: closing, logger: silentLogger });
    await closing.close();

    const error = await relay.publish(buildEnvelope(service)).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(AppError);
    expect(classifyFailure(error)).toEqual({ code: 'nats.unavailable', isPermanent: false });
  });
});
