import type { EventEnvelope } from '@keel/contracts';
import type { StoredMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AppError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { Registry } from '../observability/metrics.ts';
import type { Subscription } from '../outbox/index.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { createJetStreamConsumer, type JetStreamConsumerOptions } from './jetstream.consumer.ts';
import { buildEnvelope, deleteServiceStreams, TEST_NATS_URL, uniqueService } from './jetstream.factories.ts';
import { ensureServiceStream } from './jetstream.streams.ts';
import { deadLetterStreamName, deadLetterSubject, eventStreamName, eventSubject } from './jetstream.ts';
import { connectNats, type NatsClient } from './nats.connection.ts';

const silentLogger = createLogger({ level: 'silent' });
// Short enough that retries happen within a test; long enough to reorder an unordered consumer.
const FAST_RETRY = { initialDelayMs: 100, maxDelayMs: 200 };
const WAIT = { timeout: 10_000, interval: 50 };

let testDb: TestDatabase;
let nats: NatsClient;
const services = new Set<string>();
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  await testDb.database.pool.query(`
    create schema nats_test;
    create table nats_test.effects (
      id bigserial primary key,
      subscriber text not null,
      event_id uuid not null
    )`);
  nats = await connectNats({ servers: TEST_NATS_URL, name: 'keel-consumer-tests', logger: silentLogger });
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

async function newService(): Promise<string> {
  const service = uniqueService();
  services.add(service);
  await ensureServiceStream(await nats.manager(), { service });
  return service;
}

/** Publishes an envelope as the relay would; `messageId` defaults to the event id. */
async function publishEnvelope(event: EventEnvelope, messageId = event.id): Promise<void> {
  await nats.jetstream.publish(eventSubject(event.type), JSON.stringify(event), { msgID: messageId });
}

/** A subscription whose handler writes an effect row in its transaction, then maybe fails. */
function recordingSubscription(
  overrides: Partial<Subscription> & Pick<Subscription, 'name' | 'eventTypes'>,
  shouldFail: (event: EventEnvelope, attempt: number) => unknown = () => undefined,
): Subscription & { received: EventEnvelope[]; attempts: Map<string, number> } {
  const received: EventEnvelope[] = [];
  const attempts = new Map<string, number>();
  return {
    isOrderedPerAggregate: false,
    maxAttempts: 5,
    ...overrides,
    received,
    attempts,
    async handler(event, trx) {
      const attempt = (attempts.get(event.id) ?? 0) + 1;
      attempts.set(event.id, attempt);
      await sql`insert into nats_test.effects (subscriber, event_id) values (${overrides.name}, ${event.id})`.execute(
        trx,
      );
      const failure = shouldFail(event, attempt);
      if (failure !== undefined) throw failure;
      received.push(event);
    },
  };
}

async function startConsumer(
  options: Pick<JetStreamConsumerOptions, 'service' | 'subscription'> & Partial<JetStreamConsumerOptions>,
) {
  const consumer = createJetStreamConsumer({
    connection: nats,
    database: testDb.database,
    logger: silentLogger,
    backoff: FAST_RETRY,
    random: () => 0,
    ...options,
  });
  cleanups.push(() => consumer.stop());
  await consumer.start();
  return consumer;
}

async function countEffects(subscriber: string): Promise<number> {
  const result = await testDb.database.pool.query<{ count: string }>(
    'select count(*) from nats_test.effects where subscriber = $1',
    [subscriber],
  );
  return Number(result.rows[0]?.count);
}

async function hasInboxEntry(subscriber: string, eventId: string): Promise<boolean> {
  const result = await testDb.database.pool.query(
    'select 1 from platform.event_inbox where subscriber = $1 and event_id = $2',
    [subscriber, eventId],
  );
  return result.rowCount === 1;
}

/** Waits until the consumer has nothing left to deliver and nothing unacknowledged. */
async function waitUntilSettled(stream: string, durableName: string): Promise<void> {
  const jsm = await nats.manager();
  await vi.waitFor(async () => {
    const info = await jsm.consumers.info(stream, durableName);
    expect({ pending: info.num_pending, unacknowledged: info.num_ack_pending }).toEqual({
      pending: 0,
      unacknowledged: 0,
    });
  }, WAIT);
}

async function findDeadLetter(service: string, subscriber: string): Promise<StoredMsg | null> {
  const jsm = await nats.manager();
  return jsm.streams
    .getMessage(deadLetterStreamName(service), { last_by_subj: deadLetterSubject(service, subscriber) })
    .catch(() => null);
}

async function counterValue(registry: Registry, name: string, subscriber: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values.find((value) => value.labels.subscriber === subscriber)?.value ?? 0;
}

describe('createJetStreamConsumer', () => {
  it('applies an event once when the same envelope arrives twice under two message ids', async () => {
    const service = await newService();
    const subscription = recordingSubscription({ name: `${service}.projection`, eventTypes: ['*'] });
    const event = buildEnvelope(service);
    await publishEnvelope(event, `${event.id}-first`);
    await publishEnvelope(event, `${event.id}-second`);
    const registry = new Registry();

    const consumer = createJetStreamConsumer({
      connection: nats,
      database: testDb.database,
      logger: silentLogger,
      service,
      subscription,
    });
    consumer.registerMetrics(registry);
    cleanups.push(() => consumer.stop());
    await consumer.start();

    await waitUntilSettled(consumer.streamName, consumer.durableName);
    expect(subscription.received).toEqual([event]);
    expect(await countEffects(subscription.name)).toBe(1);
    expect(await hasInboxEntry(subscription.name, event.id)).toBe(true);
    expect(await counterValue(registry, 'keel_jetstream_handled_total', subscription.name)).toBe(1);
    expect(await counterValue(registry, 'keel_jetstream_duplicates_total', subscription.name)).toBe(1);
  });

  it('retries a failing handler with a delayed nak and applies its effect once when it succeeds', async () => {
    const service = await newService();
    const subscription = recordingSubscription(
      { name: `${service}.flaky`, eventTypes: [`${service}.thing_happened.v1`] },
      (_event, attempt) =>
        attempt < 3
          ? new AppError('unavailable', 'tests.dependency_down', 'The dependency is down')
          : undefined,
    );
    const event = buildEnvelope(service);
    await publishEnvelope(event);

    const consumer = await startConsumer({ service, subscription });

    await vi.waitFor(() => expect(subscription.received).toEqual([event]), WAIT);
    await waitUntilSettled(consumer.streamName, consumer.durableName);
    expect(subscription.attempts.get(event.id)).toBe(3);
    // The failed attempts' writes were rolled back with their transactions.
    expect(await countEffects(subscription.name)).toBe(1);
    expect(await findDeadLetter(service, subscription.name)).toBeNull();
  });

  it('terminates and dead-letters at once a handler failing with a permanent error', async () => {
    const service = await newService();
    const subscription = recordingSubscription(
      { name: `${service}.strict`, eventTypes: ['*'] },
      () => new AppError('invalid', 'tests.bad_input', 'The event makes no sense here'),
    );
    const registry = new Registry();
    const event = buildEnvelope(service, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const eventHeaders = headers();
    eventHeaders.set('traceparent', event.traceparent ?? '');
    await nats.jetstream.publish(eventSubject(event.type), JSON.stringify(event), {
      msgID: event.id,
      headers: eventHeaders,
    });

    const consumer = createJetStreamConsumer({
      connection: nats,
      database: testDb.database,
      logger: silentLogger,
      service,
      subscription,
      backoff: FAST_RETRY,
    });
    consumer.registerMetrics(registry);
    cleanups.push(() => consumer.stop());
    await consumer.start();

    await vi.waitFor(
      async () => expect(await findDeadLetter(service, subscription.name)).not.toBeNull(),
      WAIT,
    );
    await waitUntilSettled(consumer.streamName, consumer.durableName);
    const deadLetter = await findDeadLetter(service, subscription.name);
    expect(deadLetter?.subject).toBe(`keel.dead.${service}.${service}.strict`);
    expect(deadLetter?.json()).toEqual(event);
    expect({
      subscriber: deadLetter?.header.get('Keel-Subscriber'),
      errorCode: deadLetter?.header.get('Keel-Error-Code'),
      deliveries: deadLetter?.header.get('Keel-Deliveries'),
      stream: deadLetter?.header.get('Keel-Source-Stream'),
      eventId: deadLetter?.header.get('Keel-Event-Id'),
      traceparent: deadLetter?.header.get('traceparent'),
    }).toEqual({
      subscriber: subscription.name,
      errorCode: 'tests.bad_input',
      deliveries: '1',
      stream: eventStreamName(service),
      eventId: event.id,
      traceparent: event.traceparent,
    });
    // Terminated, not redelivered: one attempt, no effect, no inbox entry.
    expect(subscription.attempts.get(event.id)).toBe(1);
    expect(await countEffects(subscription.name)).toBe(0);
    expect(await hasInboxEntry(subscription.name, event.id)).toBe(false);
    expect(await counterValue(registry, 'keel_jetstream_dead_lettered_total', subscription.name)).toBe(1);
  });

  it('dead-letters a retryable failure after maxDeliver deliveries', async () => {
    const service = await newService();
    const subscription = recordingSubscription(
      { name: `${service}.doomed`, eventTypes: ['*'] },
      () => new AppError('unavailable', 'tests.dependency_down', 'The dependency is down'),
    );
    const event = buildEnvelope(service);
    await publishEnvelope(event);

    const consumer = await startConsumer({ service, subscription, maxDeliver: 3 });

    await vi.waitFor(
      async () => expect(await findDeadLetter(service, subscription.name)).not.toBeNull(),
      WAIT,
    );
    await waitUntilSettled(consumer.streamName, consumer.durableName);
    const deadLetter = await findDeadLetter(service, subscription.name);
    expect(deadLetter?.header.get('Keel-Error-Code')).toBe('tests.dependency_down');
    expect(deadLetter?.header.get('Keel-Deliveries')).toBe('3');
    expect(subscription.attempts.get(event.id)).toBe(3);
  });

  it('dead-letters a message that is not an event envelope without calling the handler', async () => {
    const service = await newService();
    const subscription = recordingSubscription({ name: `${service}.careful`, eventTypes: ['*'] });
    await nats.jetstream.publish(`keel.events.${service}.thing_happened.v1`, '{"not": "an envelope"');

    const consumer = await startConsumer({ service, subscription });

    await vi.waitFor(
      async () => expect(await findDeadLetter(service, subscription.name)).not.toBeNull(),
      WAIT,
    );
    await waitUntilSettled(consumer.streamName, consumer.durableName);
    const deadLetter = await findDeadLetter(service, subscription.name);
    expect(deadLetter?.header.get('Keel-Error-Code')).toBe('nats.invalid_message');
    expect(deadLetter?.string()).toBe('{"not": "an envelope"');
    expect(subscription.attempts.size).toBe(0);
  });

  it('hands only the subscribed types to the handler and acknowledges the others unhandled', async () => {
    const service = await newService();
    const placed = `${service}.order_placed.v1`;
    const paid = `${service}.order_paid.v1`;
    const cancelled = `${service}.order_cancelled.v1`;
    const subscription = recordingSubscription({ name: `${service}.billing`, eventTypes: [placed, paid] });
    const events = [placed, cancelled, paid].map((type) => buildEnvelope(service, { type }));
    for (const event of events) await publishEnvelope(event);

    const consumer = await startConsumer({ service, subscription });

    await waitUntilSettled(consumer.streamName, consumer.durableName);
    expect(subscription.received.map((event) => event.type)).toEqual([placed, paid]);
    expect(await countEffects(subscription.name)).toBe(2);
  });

  it('keeps an ordered subscription in stream order: a failing event holds back the next one', async () => {
    const service = await newService();
    const subscription = recordingSubscription(
      { name: `${service}.ordered`, eventTypes: ['*'], isOrderedPerAggregate: true },
      (event, attempt) =>
        (event.payload as { sequence: number }).sequence === 1 && attempt === 1
          ? new AppError('unavailable', 'tests.dependency_down', 'The dependency is down')
          : undefined,
    );
    const aggregateId = 'a-1';
    const events = [1, 2, 3].map((sequence) =>
      buildEnvelope(service, { aggregateId, payload: { sequence } }),
    );
    for (const event of events) await publishEnvelope(event);

    const consumer = await startConsumer({
      service,
      subscription,
      backoff: { initialDelayMs: 300, maxDelayMs: 300 },
    });

    await waitUntilSettled(consumer.streamName, consumer.durableName);
    expect(subscription.received.map((event) => (event.payload as { sequence: number }).sequence)).toEqual([
      1, 2, 3,
    ]);
  });

  it('finishes the message in flight before stop returns, and acknowledges it', async () => {
    const service = await newService();
    let releaseHandler = () => {};
    const released = new Promise<void>((resolve) => {
      releaseHandler = resolve;
    });
    let signalStarted = () => {};
    const started = new Promise<void>((resolve) => {
      signalStarted = resolve;
    });
    const subscription = recordingSubscription({ name: `${service}.slow`, eventTypes: ['*'] });
    const recordEffect = subscription.handler;
    subscription.handler = async (event, trx) => {
      signalStarted();
      await released;
      await recordEffect(event, trx);
    };
    const event = buildEnvelope(service);
    await publishEnvelope(event);
    const consumer = await startConsumer({ service, subscription });
    await started;

    let isStopped = false;
    const stopping = consumer.stop().then(() => {
      isStopped = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(isStopped).toBe(false);
    releaseHandler();
    await stopping;

    expect(await countEffects(subscription.name)).toBe(1);
    await waitUntilSettled(consumer.streamName, consumer.durableName);
  });

  it('resumes where the durable consumer left off after a restart', async () => {
    const service = await newService();
    const subscription = recordingSubscription({ name: `${service}.durable`, eventTypes: ['*'] });
    const first = buildEnvelope(service);
    await publishEnvelope(first);
    const before = await startConsumer({ service, subscription });
    await waitUntilSettled(before.streamName, before.durableName);
    await before.stop();

    const second = buildEnvelope(service);
    await publishEnvelope(second);
    const after = await startConsumer({ service, subscription });

    await waitUntilSettled(after.streamName, after.durableName);
    expect(subscription.received).toEqual([first, second]);
    expect(subscription.attempts.get(first.id)).toBe(1);
  });

  it("refuses a subscription to another service's events with nats.invalid_settings", () => {
    const subscription = recordingSubscription({
      name: 'billing.orders',
      eventTypes: ['orders.order_placed.v1'],
    });

    expect(() =>
      createJetStreamConsumer({
        connection: nats,
        database: testDb.database,
        logger: silentLogger,
        service: 'payments',
        subscription,
      }),
    ).toThrow(expect.objectContaining({ code: 'nats.invalid_settings' }));
  });
});
