import { randomUUID } from 'node:crypto';
import { type EventEnvelope, EventValidationError } from '@keel/contracts';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type AnyTransaction, createDatabase, type Database } from '../db/database.ts';
import { AppError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { Registry } from '../observability/metrics.ts';
import { createTestDatabase, TEST_DATABASE_SETTINGS, type TestDatabase } from '../testing/test-database.ts';
import { createEventBus, type EventBus, type EventBusOptions } from './outbox.dispatcher.ts';
import {
  buildEventInput,
  createManualClock,
  drainBus,
  emitCommitted,
  uniqueNames,
} from './outbox.factories.ts';
import { emitEvent } from './outbox.service.ts';
import type { Subscription } from './outbox.ts';

const silentLogger = createLogger({ level: 'silent' });
// With no jitter a failed attempt n waits exactly 500 * 2^(n-1) ms.
const RETRY = { initialDelayMs: 1000, maxDelayMs: 60_000 };
const noJitter = () => 0;

let testDb: TestDatabase;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'), { poolMax: 20 });
  await testDb.database.pool.query(`
    create schema outbox_test;
    create table outbox_test.effects (
      id bigserial primary key,
      subscriber text not null,
      event_id uuid not null,
      aggregate_id text not null,
      sequence integer
    )`);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await testDb?.drop();
});

function openBus(
  options: Partial<Omit<EventBusOptions, 'clock'>> & Pick<EventBusOptions, 'subscriptions'>,
): EventBus & { clock: ReturnType<typeof createManualClock> } {
  const clock = createManualClock();
  const bus = createEventBus({
    database: testDb.database,
    logger: silentLogger,
    pollIntervalMs: 50,
    batchSize: 100,
    clock,
    retry: RETRY,
    random: noJitter,
    isListening: false,
    ...options,
  });
  cleanups.push(() => bus.stop());
  return Object.assign(bus, { clock });
}

/** A subscription whose handler records an effect row in its own transaction and remembers what it saw. */
function recordingSubscription(
  overrides: Partial<Subscription> & Pick<Subscription, 'name' | 'eventTypes'>,
  shouldFail: (event: EventEnvelope, attempt: number) => unknown = () => undefined,
): Subscription & { received: EventEnvelope[] } {
  const received: EventEnvelope[] = [];
  const attempts = new Map<string, number>();
  return {
    isOrderedPerAggregate: false,
    maxAttempts: 5,
    ...overrides,
    received,
    async handler(event, trx) {
      const attempt = (attempts.get(event.id) ?? 0) + 1;
      attempts.set(event.id, attempt);
      await insertEffect(trx, overrides.name, event);
      const failure = shouldFail(event, attempt);
      if (failure !== undefined) throw failure;
      received.push(event);
    },
  };
}

async function insertEffect(trx: AnyTransaction, subscriber: string, event: EventEnvelope): Promise<void> {
  const sequence = (event.payload as { sequence?: number }).sequence ?? null;
  await sql`
    insert into outbox_test.effects (subscriber, event_id, aggregate_id, sequence)
    values (${subscriber}, ${event.id}, ${event.aggregateId}, ${sequence})`.execute(trx);
}

async function countEffects(subscriber: string, eventId?: string): Promise<number> {
  const result = await testDb.database.pool.query<{ count: string }>(
    'select count(*) from outbox_test.effects where subscriber = $1 and ($2::uuid is null or event_id = $2)',
    [subscriber, eventId ?? null],
  );
  return Number(result.rows[0]?.count);
}

type DeliveryRow = {
  status: string;
  attempts: number;
  next_attempt_at: Date;
  last_error_code: string | null;
};

async function findDelivery(subscriber: string, eventId: string): Promise<DeliveryRow | undefined> {
  const result = await testDb.database.pool.query<DeliveryRow>(
    `select d.status, d.attempts, d.next_attempt_at, d.last_error_code
     from platform.event_deliveries d join platform.outbox_events e on e.position = d.position
     where d.subscriber = $1 and e.id = $2`,
    [subscriber, eventId],
  );
  return result.rows[0];
}

function unavailable(): AppError {
  return new AppError('unavailable', 'tests.dependency_down', 'The dependency is down');
}

describe('createEventBus delivery', () => {
  it('never delivers an event whose transaction rolled back', async () => {
    const names = uniqueNames();
    const subscription = recordingSubscription({
      name: names.subscriber('a'),
      eventTypes: [names.type('happened')],
    });
    const bus = openBus({ subscriptions: [subscription] });
    await bus.register();
    let emittedId = '';

    const failing = testDb.database.typed<unknown>().transaction(async (trx) => {
      emittedId = (await emitEvent(trx, buildEventInput({ type: names.type('happened') }))).id;
      throw new Error('the business write failed');
    });

    await expect(failing).rejects.toThrow('the business write failed');
    expect(await drainBus(bus)).toBe(0);
    expect(subscription.received).toEqual([]);
    const stored = await testDb.database.pool.query('select 1 from platform.outbox_events where id = $1', [
      emittedId,
    ]);
    expect(stored.rowCount).toBe(0);
  });

  it('delivers a committed event to every subscriber of its type, including a wildcard one, and to no other', async () => {
    const names = uniqueNames();
    const placed = names.type('placed');
    const cancelled = names.type('cancelled');
    const first = recordingSubscription({ name: names.subscriber('first'), eventTypes: [placed] });
    const both = recordingSubscription({ name: names.subscriber('both'), eventTypes: [placed, cancelled] });
    const other = recordingSubscription({ name: names.subscriber('other'), eventTypes: [cancelled] });
    const everything = recordingSubscription({ name: names.subscriber('everything'), eventTypes: ['*'] });
    const bus = openBus({ subscriptions: [first, both, other, everything] });
    await bus.register();
    // The wildcard would otherwise receive every later test's events.
    cleanups.push(async () => {
      await testDb.database.pool.query('delete from platform.event_subscriptions where subscriber = $1', [
        everything.name,
      ]);
    });
    const occurredAt = new Date('2025-03-04T05:06:07.089Z');

    const [event] = await emitCommitted(testDb.database, [
      buildEventInput({
        type: placed,
        aggregateType: 'order',
        payload: { total: 42, items: ['bun'] },
        occurredAt,
      }),
    ]);

    expect(await drainBus(bus)).toBe(3);
    const expected = {
      id: event?.id,
      type: placed,
      aggregateType: 'order',
      aggregateId: event?.aggregateId,
      occurredAt: '2025-03-04T05:06:07.089Z',
      schemaVersion: 1,
      payload: { total: 42, items: ['bun'] },
    };
    expect(first.received).toEqual([expected]);
    expect(both.received).toEqual([expected]);
    expect(everything.received).toEqual([expected]);
    expect(other.received).toEqual([]);
    // UUIDv7: version nibble 7, variant 10xx.
    expect(event?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('retries a failing handler with exponential backoff and applies its effect once when it succeeds', async () => {
    const names = uniqueNames();
    const subscription = recordingSubscription(
      { name: names.subscriber('flaky'), eventTypes: [names.type('happened')] },
      (_event, attempt) => (attempt <= 2 ? unavailable() : undefined),
    );
    const bus = openBus({ subscriptions: [subscription] });
    await bus.register();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);
    const eventId = event?.id ?? '';
    const start = bus.clock.now().getTime();

    expect(await bus.runOnce()).toBe(1);
    expect(await findDelivery(subscription.name, eventId)).toEqual({
      status: 'pending',
      attempts: 1,
      next_attempt_at: new Date(start + 500),
      last_error_code: 'tests.dependency_down',
    });
    expect(await countEffects(subscription.name, eventId)).toBe(0);
    // Not due yet.
    bus.clock.advance(499);
    expect(await bus.runOnce()).toBe(0);

    bus.clock.advance(1);
    expect(await bus.runOnce()).toBe(1);
    expect(await findDelivery(subscription.name, eventId)).toMatchObject({
      attempts: 2,
      next_attempt_at: new Date(start + 500 + 1000),
    });

    bus.clock.advance(1000);
    expect(await drainBus(bus)).toBe(1);
    expect(subscription.received.map((received) => received.id)).toEqual([eventId]);
    expect(await countEffects(subscription.name, eventId)).toBe(1);
    expect(await findDelivery(subscription.name, eventId)).toBeUndefined();
  });

  it('keeps the rest of a batch when one handler fails, and calls the failing handler once per attempt', async () => {
    const names = uniqueNames();
    const calls = new Map<string, number>();
    let failingId = '';
    const subscription = recordingSubscription(
      { name: names.subscriber('batch'), eventTypes: [names.type('happened')] },
      (event) => {
        calls.set(event.id, (calls.get(event.id) ?? 0) + 1);
        return event.id === failingId && (calls.get(event.id) ?? 0) === 1 ? unavailable() : undefined;
      },
    );
    const bus = openBus({ subscriptions: [subscription] });
    await bus.register();
    const events = await emitCommitted(
      testDb.database,
      Array.from({ length: 5 }, (_, sequence) =>
        buildEventInput({ type: names.type('happened'), payload: { sequence } }),
      ),
    );
    failingId = events[2]?.id ?? '';

    // One batch: the third handler fails, its work is undone, the other four commit once.
    expect(await bus.runOnce()).toBe(5);
    for (const event of events) {
      expect(await countEffects(subscription.name, event.id)).toBe(event.id === failingId ? 0 : 1);
    }
    expect(calls.get(failingId)).toBe(1);
    expect(await findDelivery(subscription.name, failingId)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error_code: 'tests.dependency_down',
    });
    const undelivered = [];
    for (const event of events) {
      if ((await findDelivery(subscription.name, event.id)) !== undefined) undelivered.push(event.id);
    }
    expect(undelivered).toEqual([failingId]);

    bus.clock.advance(500);
    expect(await drainBus(bus)).toBe(1);
    expect(calls.get(failingId)).toBe(2);
    expect(await countEffects(subscription.name)).toBe(5);
  });

  it('has no second effect when a handled event is delivered again', async () => {
    const names = uniqueNames();
    const subscription = recordingSubscription({
      name: names.subscriber('once'),
      eventTypes: [names.type('happened')],
    });
    const bus = openBus({ subscriptions: [subscription] });
    const registry = new Registry();
    bus.registerMetrics(registry);
    await bus.register();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);
    await drainBus(bus);

    // A redelivery: the delivery row is back after the event was handled.
    await testDb.database.pool.query(
      `insert into platform.event_deliveries (subscriber, position, aggregate_type, aggregate_id)
       select $1, position, aggregate_type, aggregate_id from platform.outbox_events where id = $2`,
      [subscription.name, event?.id],
    );
    expect(await drainBus(bus)).toBe(1);

    expect(subscription.received).toHaveLength(1);
    expect(await countEffects(subscription.name)).toBe(1);
    expect(await findDelivery(subscription.name, event?.id ?? '')).toBeUndefined();
    const duplicates = await registry.getSingleMetric('keel_events_duplicates_total')?.get();
    expect(duplicates?.values[0]?.value).toBe(1);
  });

  it('dead-letters a delivery after maxAttempts, lists it, and delivers it once when replayed', async () => {
    const names = uniqueNames();
    let isBroken = true;
    const subscription = recordingSubscription(
      { name: names.subscriber('fragile'), eventTypes: [names.type('happened')], maxAttempts: 3 },
      () => (isBroken ? new TypeError('cannot read properties of undefined') : undefined),
    );
    const bus = openBus({ subscriptions: [subscription] });
    await bus.register();
    const [event] = await emitCommitted(testDb.database, [
      buildEventInput({ type: names.type('happened'), aggregateType: 'order', aggregateId: 'order-1' }),
    ]);
    const eventId = event?.id ?? '';

    for (let attempt = 0; attempt < 3; attempt += 1) {
      expect(await bus.runOnce()).toBe(1);
      bus.clock.advance(60_000);
    }
    expect(await bus.runOnce()).toBe(0);
    expect(await findDelivery(subscription.name, eventId)).toMatchObject({
      status: 'dead',
      attempts: 3,
      last_error_code: 'events.handler_failed',
    });
    expect(await bus.listDeadLetters(subscription.name)).toEqual([
      {
        subscriber: subscription.name,
        eventId,
        eventType: names.type('happened'),
        aggregateType: 'order',
        aggregateId: 'order-1',
        occurredAt: new Date(event?.occurredAt ?? ''),
        attempts: 3,
        lastErrorCode: 'events.handler_failed',
        lastAttemptedAt: expect.any(Date),
        deadAt: expect.any(Date),
      },
    ]);
    expect(await countEffects(subscription.name)).toBe(0);

    isBroken = false;
    await bus.replayDeadLetter(subscription.name, eventId);
    expect(await drainBus(bus)).toBe(1);

    expect(subscription.received.map((received) => received.id)).toEqual([eventId]);
    expect(await countEffects(subscription.name, eventId)).toBe(1);
    expect(await bus.listDeadLetters(subscription.name)).toEqual([]);
    await expect(bus.replayDeadLetter(subscription.name, eventId)).rejects.toMatchObject({
      kind: 'not_found',
      code: 'events.dead_letter_not_found',
    });
  });

  it.each([
    ['an invalid AppError', () => new AppError('invalid', 'tests.bad_event', 'bad'), 'tests.bad_event'],
    [
      'a conflict AppError',
      () => new AppError('conflict', 'tests.already_done', 'done'),
      'tests.already_done',
    ],
    [
      "a contract's EventValidationError",
      () => new EventValidationError('tests.x.v1', [{ pointer: '/payload', detail: 'bad' }]),
      'events.invalid_envelope',
    ],
  ])('dead-letters at once without retrying when the handler throws %s', async (_label, makeError, code) => {
    const names = uniqueNames();
    const subscription = recordingSubscription(
      { name: names.subscriber('strict'), eventTypes: [names.type('happened')], maxAttempts: 10 },
      makeError,
    );
    const bus = openBus({ subscriptions: [subscription] });
    await bus.register();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);

    expect(await bus.runOnce()).toBe(1);
    bus.clock.advance(3_600_000);
    expect(await bus.runOnce()).toBe(0);

    expect(await findDelivery(subscription.name, event?.id ?? '')).toMatchObject({
      status: 'dead',
      attempts: 1,
      last_error_code: code,
    });
    expect(await countEffects(subscription.name)).toBe(0);
  });

  it('drops, without calling the handler, a delivery of a type the subscription no longer lists', async () => {
    const names = uniqueNames();
    const name = names.subscriber('changing');
    const before = openBus({
      subscriptions: [
        recordingSubscription({ name, eventTypes: [names.type('kept'), names.type('dropped')] }),
      ],
    });
    await before.register();
    await emitCommitted(testDb.database, [buildEventInput({ type: names.type('dropped') })]);

    const after = recordingSubscription({ name, eventTypes: [names.type('kept')] });
    const bus = openBus({ subscriptions: [after] });
    await bus.register();
    await emitCommitted(testDb.database, [buildEventInput({ type: names.type('dropped') })]);

    expect(await drainBus(bus)).toBe(1);
    expect(after.received).toEqual([]);
    const left = await testDb.database.pool.query(
      'select 1 from platform.event_deliveries where subscriber = $1',
      [name],
    );
    expect(left.rowCount).toBe(0);
  });
});

describe('createEventBus with a batch handler', () => {
  /** A subscription with both handlers; each writes the same effect rows, `handleBatch` in one statement. */
  function batchSubscription(
    overrides: Partial<Subscription> & Pick<Subscription, 'name' | 'eventTypes'>,
    failBatch: (events: readonly EventEnvelope[]) => boolean = () => false,
  ) {
    const batches: string[][] = [];
    const single: string[] = [];
    const commitModes: string[] = [];
    const subscription: Subscription = {
      isOrderedPerAggregate: false,
      maxAttempts: 5,
      ...overrides,
      async handler(event, trx) {
        single.push(event.id);
        await insertEffect(trx, overrides.name, event);
        if ((event.payload as { isPoison?: boolean }).isPoison === true) throw unavailable();
      },
      async handleBatch(events, trx) {
        batches.push(events.map((event) => event.id));
        const setting = await sql<{
          mode: string;
        }>`select current_setting('synchronous_commit') as mode`.execute(trx);
        commitModes.push(setting.rows[0]?.mode ?? '');
        await sql`
          insert into outbox_test.effects (subscriber, event_id, aggregate_id, sequence)
          select ${overrides.name}, id, aggregate_id, sequence
          from unnest(${events.map((event) => event.id)}::uuid[], ${events.map((event) => event.aggregateId)}::text[],
                      ${events.map((event) => (event.payload as { sequence?: number }).sequence ?? null)}::int[])
            as batch(id, aggregate_id, sequence)`.execute(trx);
        if (failBatch(events)) throw unavailable();
      },
    };
    return { subscription, batches, single, commitModes };
  }

  /**
   * A registered bus with a batch subscription whose `handleBatch` fails on
   * any batch holding the poison, and `length` committed events, the one at
   * `poisonAt` poisoned (its single `handler` fails too).
   */
  async function openPoisonedBatch(
    names: ReturnType<typeof uniqueNames>,
    name: string,
    options: { length: number; poisonAt: number },
  ) {
    const parts = batchSubscription({ name, eventTypes: [names.type('happened')] }, (events) =>
      events.some((event) => (event.payload as { isPoison?: boolean }).isPoison === true),
    );
    const bus = openBus({ subscriptions: [parts.subscription], concurrency: 1 });
    await bus.register();
    const events = await emitCommitted(
      testDb.database,
      Array.from({ length: options.length }, (_, sequence) =>
        buildEventInput({
          type: names.type('happened'),
          payload: { sequence, isPoison: sequence === options.poisonAt },
        }),
      ),
    );
    return { ...parts, bus, events };
  }

  it('hands a batch of first deliveries to handleBatch once, in emit order, committing asynchronously', async () => {
    const names = uniqueNames();
    const { subscription, batches, single, commitModes } = batchSubscription({
      name: names.subscriber('batch'),
      eventTypes: [names.type('happened')],
    });
    const bus = openBus({ subscriptions: [subscription], concurrency: 1 });
    await bus.register();
    const events = await emitCommitted(
      testDb.database,
      Array.from({ length: 6 }, (_, sequence) =>
        buildEventInput({ type: names.type('happened'), payload: { sequence } }),
      ),
    );
    // One of them was handled before (its inbox entry exists): a redelivery.
    await testDb.database.pool.query(
      'insert into platform.event_inbox (subscriber, event_id) values ($1, $2)',
      [subscription.name, events[1]?.id],
    );

    expect(await bus.runOnce()).toBe(6);
    const expected = events.filter((_, index) => index !== 1).map((event) => event.id);
    expect(batches).toEqual([expected]);
    expect(single).toEqual([]);
    expect(commitModes).toEqual(['off']);
    expect(await countEffects(subscription.name)).toBe(5);
    for (const event of events) expect(await findDelivery(subscription.name, event.id)).toBeUndefined();
    expect(await drainBus(bus)).toBe(0);
  });

  it('gives an ordered subscription at most one event per aggregate in a batch, and the rest in order after', async () => {
    const names = uniqueNames();
    const { subscription, batches } = batchSubscription({
      name: names.subscriber('ordered'),
      eventTypes: [names.type('happened')],
      isOrderedPerAggregate: true,
    });
    const bus = openBus({ subscriptions: [subscription], concurrency: 1 });
    await bus.register();
    const a = `a-${randomUUID()}`;
    const b = `b-${randomUUID()}`;
    const events = await emitCommitted(
      testDb.database,
      [a, a, b, a].map((aggregateId, sequence) =>
        buildEventInput({ type: names.type('happened'), aggregateId, payload: { sequence } }),
      ),
    );
    const [a1, a2, b1, a3] = events.map((event) => event.id);

    expect(await drainBus(bus)).toBe(4);
    expect(batches).toEqual([[a1, b1], [a2], [a3]]);
  });

  it('runs a failed batch again one event at a time: the bad event is retried, the others commit once', async () => {
    const names = uniqueNames();
    const { subscription, batches, single, bus, events } = await openPoisonedBatch(
      names,
      names.subscriber('poison'),
      { length: 4, poisonAt: 2 },
    );
    const poison = events[2]?.id ?? '';

    expect(await bus.runOnce()).toBe(4);
    // The batch's own writes were rolled back with it; the isolated run wrote
    // each good event's effect once and undid the poison's.
    expect(batches).toHaveLength(1);
    expect(single).toEqual(events.map((event) => event.id));
    for (const event of events) {
      expect(await countEffects(subscription.name, event.id)).toBe(event.id === poison ? 0 : 1);
    }
    expect(await findDelivery(subscription.name, poison)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error_code: 'tests.dependency_down',
    });

    // The retry goes through the fast path again, alone, and fails alone.
    bus.clock.advance(1000);
    expect(await drainBus(bus)).toBe(1);
    expect(batches.at(-1)).toEqual([poison]);
    expect(await findDelivery(subscription.name, poison)).toMatchObject({ attempts: 2 });
    expect(await countEffects(subscription.name)).toBe(3);
  });

  it('tries at most 32 events of a failed batch one at a time and hands the rest back untouched', async () => {
    const names = uniqueNames();
    const { subscription, batches, single, bus, events } = await openPoisonedBatch(
      names,
      names.subscriber('large'),
      { length: 40, poisonAt: 39 },
    );
    const tail = events.slice(32).map((event) => event.id);
    const poison = tail.at(-1) ?? '';
    // An earlier failure of the poison, to see that handing it back counts no attempt.
    await testDb.database.pool.query(
      `update platform.event_deliveries d set attempts = 2, last_error_code = 'tests.earlier'
       from platform.outbox_events e where e.position = d.position and d.subscriber = $1 and e.id = $2`,
      [subscription.name, poison],
    );
    const createdAt = async (eventId: string) =>
      (
        await testDb.database.pool.query<{ created_at: Date }>(
          `select d.created_at from platform.event_deliveries d
           join platform.outbox_events e on e.position = d.position
           where d.subscriber = $1 and e.id = $2`,
          [subscription.name, eventId],
        )
      ).rows[0]?.created_at;
    const poisonCreatedAt = await createdAt(poison);

    // The batch of 40 fails; the first 32 are delivered one at a time and the
    // 8 behind them go back untried, to come again as the next batch, which
    // fails too: 7 are delivered and the poison's attempt is counted.
    expect(await bus.runOnce()).toBe(40);
    expect(batches).toEqual([events.map((event) => event.id), tail]);
    expect(single).toEqual([...events.slice(0, 32).map((event) => event.id), ...tail]);
    expect(await countEffects(subscription.name)).toBe(39);
    expect(await findDelivery(subscription.name, poison)).toMatchObject({
      status: 'pending',
      attempts: 3,
      last_error_code: 'tests.dependency_down',
    });
    expect(await createdAt(poison)).toEqual(poisonCreatedAt);
    const inbox = await testDb.database.pool.query(
      'select event_id::text from platform.event_inbox where subscriber = $1',
      [subscription.name],
    );
    expect(inbox.rows.map((row) => row.event_id).sort()).toEqual(
      events
        .map((event) => event.id)
        .filter((id) => id !== poison)
        .sort(),
    );
  });
});

describe('createEventBus ordering', () => {
  async function emitAggregateEvents(type: string) {
    const aggregateA = `a-${randomUUID()}`;
    const aggregateB = `b-${randomUUID()}`;
    const events = await emitCommitted(testDb.database, [
      buildEventInput({ type, aggregateId: aggregateA, payload: { sequence: 1 } }),
      buildEventInput({ type, aggregateId: aggregateA, payload: { sequence: 2 } }),
      buildEventInput({ type, aggregateId: aggregateB, payload: { sequence: 1 } }),
      buildEventInput({ type, aggregateId: aggregateA, payload: { sequence: 3 } }),
    ]);
    const [a1, a2, b1, a3] = events.map((event) => event.id);
    return { a1, a2, a3, b1 };
  }

  it("holds back an aggregate's later events for an ordered subscriber until the first succeeds", async () => {
    const names = uniqueNames();
    let firstId = '';
    const subscription = recordingSubscription(
      {
        name: names.subscriber('ordered'),
        eventTypes: [names.type('happened')],
        isOrderedPerAggregate: true,
      },
      (event, attempt) => (event.id === firstId && attempt <= 2 ? unavailable() : undefined),
    );
    // One worker: claims follow emit order, so the assertions can name it.
    const bus = openBus({ subscriptions: [subscription], concurrency: 1 });
    await bus.register();
    const { a1, a2, a3, b1 } = await emitAggregateEvents(names.type('happened'));
    firstId = a1 ?? '';

    // a1 fails; b1 (another aggregate) is not held back; a2 and a3 wait.
    expect(await drainBus(bus)).toBe(2);
    expect(subscription.received.map((event) => event.id)).toEqual([b1]);
    bus.clock.advance(500);
    expect(await drainBus(bus)).toBe(1);
    expect(subscription.received.map((event) => event.id)).toEqual([b1]);
    bus.clock.advance(1000);
    expect(await drainBus(bus)).toBe(3);

    expect(subscription.received.map((event) => event.id)).toEqual([b1, a1, a2, a3]);
  });

  it("lets an ordered subscriber's later events through once the failing one is dead-lettered", async () => {
    const names = uniqueNames();
    let firstId = '';
    const subscription = recordingSubscription(
      {
        name: names.subscriber('ordered'),
        eventTypes: [names.type('happened')],
        isOrderedPerAggregate: true,
      },
      (event) => (event.id === firstId ? new AppError('invalid', 'tests.bad_event', 'bad') : undefined),
    );
    const bus = openBus({ subscriptions: [subscription], concurrency: 1 });
    await bus.register();
    const { a1, a2, a3, b1 } = await emitAggregateEvents(names.type('happened'));
    firstId = a1 ?? '';

    expect(await drainBus(bus)).toBe(4);

    // a1 and b1 are their aggregates' heads; a2 is only due once a1 is dead.
    expect(subscription.received.map((event) => event.id)).toEqual([b1, a2, a3]);
    expect((await bus.listDeadLetters(subscription.name)).map((dead) => dead.eventId)).toEqual([a1]);
  });

  it("does not hold back an unordered subscriber's later events while an earlier one is retried", async () => {
    const names = uniqueNames();
    let firstId = '';
    const subscription = recordingSubscription(
      {
        name: names.subscriber('unordered'),
        eventTypes: [names.type('happened')],
        isOrderedPerAggregate: false,
      },
      (event, attempt) => (event.id === firstId && attempt <= 2 ? unavailable() : undefined),
    );
    const bus = openBus({ subscriptions: [subscription], concurrency: 1 });
    await bus.register();
    const { a1, a2, a3, b1 } = await emitAggregateEvents(names.type('happened'));
    firstId = a1 ?? '';

    expect(await drainBus(bus)).toBe(4);
    expect(subscription.received.map((event) => event.id)).toEqual([a2, b1, a3]);
    // One transaction handled all four: the failed handler's write alone was undone.
    expect(await countEffects(subscription.name, a1)).toBe(0);
    expect(await countEffects(subscription.name)).toBe(3);
    bus.clock.advance(500);
    await drainBus(bus);
    bus.clock.advance(1000);
    await drainBus(bus);

    expect(subscription.received.map((event) => event.id)).toEqual([a2, b1, a3, a1]);
  });
});

describe('createEventBus with concurrent dispatchers', () => {
  function openDatabase(): Database {
    const database = createDatabase({ ...TEST_DATABASE_SETTINGS, url: testDb.url, poolMax: 6 }, silentLogger);
    cleanups.push(() => database.close());
    return database;
  }

  it('applies each event exactly once, and in order per aggregate for an ordered subscriber, when two dispatchers race', async () => {
    const names = uniqueNames();
    const type = names.type('happened');
    const calls = { unordered: 0, ordered: 0 };
    const callsByDispatcher = { a: 0, b: 0 };
    const subscriptions = (dispatcher: 'a' | 'b'): Subscription[] => [
      {
        name: names.subscriber('unordered'),
        eventTypes: [type],
        isOrderedPerAggregate: false,
        maxAttempts: 5,
        async handler(event, trx) {
          calls.unordered += 1;
          callsByDispatcher[dispatcher] += 1;
          await insertEffect(trx, names.subscriber('unordered'), event);
        },
      },
      {
        name: names.subscriber('ordered'),
        eventTypes: [type],
        isOrderedPerAggregate: true,
        maxAttempts: 5,
        async handler(event, trx) {
          calls.ordered += 1;
          callsByDispatcher[dispatcher] += 1;
          // Handlers of different lengths give a later event every chance to overtake an earlier one.
          await sql`select pg_sleep(random() * 0.004)`.execute(trx);
          await insertEffect(trx, names.subscriber('ordered'), event);
        },
      },
    ];
    // Two processes in all but name: separate pools, separate buses.
    const busA = openBus({
      database: openDatabase(),
      subscriptions: subscriptions('a'),
      concurrency: 4,
      batchSize: 25,
    });
    const busB = openBus({
      database: openDatabase(),
      subscriptions: subscriptions('b'),
      concurrency: 4,
      batchSize: 25,
    });
    await busA.register();
    const aggregates = Array.from({ length: 3 }, () => randomUUID());
    const inputs = Array.from({ length: 200 }, (_, index) =>
      buildEventInput({
        type,
        aggregateId: aggregates[index % aggregates.length] ?? '',
        payload: { sequence: Math.floor(index / aggregates.length) + 1 },
      }),
    );
    // Emit in several transactions while both dispatchers are already running.
    const emitting = (async () => {
      for (let start = 0; start < inputs.length; start += 20) {
        await emitCommitted(testDb.database, inputs.slice(start, start + 20));
      }
    })();
    let isEmitting = true;
    const dispatch = async (bus: EventBus) => {
      while (isEmitting) await bus.runOnce();
      await drainBus(bus);
    };
    await Promise.all([
      emitting.finally(() => {
        isEmitting = false;
      }),
      dispatch(busA),
      dispatch(busB),
    ]);
    await Promise.all([drainBus(busA), drainBus(busB)]);

    expect(calls).toEqual({ unordered: 200, ordered: 200 });
    // Both dispatchers took part: the race really happened.
    expect(callsByDispatcher.a).toBeGreaterThan(0);
    expect(callsByDispatcher.b).toBeGreaterThan(0);
    const effects = await testDb.database.pool.query<{
      subscriber: string;
      effects: string;
      events: string;
    }>(
      `select subscriber, count(*) as effects, count(distinct event_id) as events
       from outbox_test.effects where subscriber = any($1) group by subscriber order by subscriber`,
      [[names.subscriber('ordered'), names.subscriber('unordered')]],
    );
    expect(effects.rows).toEqual([
      { subscriber: names.subscriber('ordered'), effects: '200', events: '200' },
      { subscriber: names.subscriber('unordered'), effects: '200', events: '200' },
    ]);
    // Effects are numbered in commit order; per aggregate they follow emit order.
    const outOfOrder = await testDb.database.pool.query(
      `select 1 from (
         select sequence, lag(sequence) over (partition by aggregate_id order by id) as previous
         from outbox_test.effects where subscriber = $1
       ) as ordered_effects
       where previous is not null and sequence <> previous + 1`,
      [names.subscriber('ordered')],
    );
    expect(outOfOrder.rowCount).toBe(0);
  });

  it('never lets another dispatcher run a failed batch again before its attempt is counted', async () => {
    const names = uniqueNames();
    const type = names.type('happened');
    const name = names.subscriber('contested');
    const calls: ('a' | 'b')[] = [];
    const subscription = (dispatcher: 'a' | 'b'): Subscription => ({
      name,
      eventTypes: [type],
      isOrderedPerAggregate: false,
      maxAttempts: 5,
      async handler(event, trx) {
        calls.push(dispatcher);
        await insertEffect(trx, name, event);
        throw unavailable();
      },
    });
    // A has one connection. The moment A's batch transaction ends and hands
    // it back, the test takes it and runs B to completion before A may go on:
    // whatever A has not counted by then, B can claim.
    const databaseA = createDatabase(
      { ...TEST_DATABASE_SETTINGS, url: testDb.url, poolMax: 1 },
      silentLogger,
    );
    cleanups.push(() => databaseA.close());
    const busA = openBus({ database: databaseA, subscriptions: [subscription('a')] });
    const busB = openBus({ database: openDatabase(), subscriptions: [subscription('b')] });
    await busA.register();
    const events = await emitCommitted(
      testDb.database,
      Array.from({ length: 3 }, (_, sequence) => buildEventInput({ type, payload: { sequence } })),
    );
    let racing: Promise<number> | undefined;
    databaseA.pool.once('release', () => {
      const holding = databaseA.pool.connect();
      racing = holding.then(async (client) => {
        try {
          return await busB.runOnce();
        } finally {
          client.release();
        }
      });
    });

    expect(await busA.runOnce()).toBe(3);
    expect(await racing).toBe(0);
    expect(calls).toEqual(['a', 'a', 'a']);
    for (const event of events) {
      expect(await findDelivery(name, event.id)).toMatchObject({ status: 'pending', attempts: 1 });
    }
    expect(await countEffects(name)).toBe(0);
  });
});

describe('createEventBus maxConcurrentBatches', () => {
  it('never runs two batches of a subscription limited to one at once, while others use every worker', async () => {
    const names = uniqueNames();
    const type = names.type('happened');
    const inFlight = { limited: 0, free: 0 };
    const peak = { limited: 0, free: 0 };
    const track = (kind: 'limited' | 'free'): Subscription => ({
      name: names.subscriber(kind),
      eventTypes: [type],
      isOrderedPerAggregate: false,
      maxAttempts: 5,
      ...(kind === 'limited' ? { maxConcurrentBatches: 1 } : {}),
      async handler(event, trx) {
        inFlight[kind] += 1;
        peak[kind] = Math.max(peak[kind], inFlight[kind]);
        try {
          await sql`select pg_sleep(0.01)`.execute(trx);
          await insertEffect(trx, names.subscriber(kind), event);
        } finally {
          inFlight[kind] -= 1;
        }
      },
    });
    // 40 events make two batches per subscriber (32 per transaction), which 4 workers would run at once.
    const bus = openBus({ subscriptions: [track('limited'), track('free')], concurrency: 4, batchSize: 200 });
    await bus.register();
    await testDb.database.typed<unknown>().transaction(async (trx) => {
      for (let index = 0; index < 40; index += 1) await emitEvent(trx, buildEventInput({ type }));
    });

    await drainBus(bus);

    expect(await countEffects(names.subscriber('limited'))).toBe(40);
    expect(await countEffects(names.subscriber('free'))).toBe(40);
    expect(peak.limited).toBe(1);
    expect(peak.free).toBeGreaterThan(1);
  });

  it('asks a subscriber that came up empty again within a poll interval while another keeps the run busy', async () => {
    const names = uniqueNames();
    const busyType = names.type('busy');
    const quietType = names.type('quiet');
    let busyHandled = 0;
    let busyHandledWhenQuietRan: number | undefined;
    // Each records its effect, then does what the test needs of it.
    const recording = (kind: string, type: string, after: (trx: AnyTransaction) => Promise<void>) =>
      ({
        name: names.subscriber(kind),
        eventTypes: [type],
        isOrderedPerAggregate: false,
        maxAttempts: 5,
        async handler(event, trx) {
          await insertEffect(trx, names.subscriber(kind), event);
          await after(trx);
        },
      }) satisfies Subscription;
    const busy = recording('busy', busyType, async (trx) => {
      // Each batch of 32 takes well over the 100 ms poll interval.
      await sql`select pg_sleep(0.01)`.execute(trx);
      busyHandled += 1;
      // In the second batch, after the quiet subscriber has already come up empty in this run.
      if (busyHandled === 40) await emitCommitted(testDb.database, [buildEventInput({ type: quietType })]);
    });
    const quiet = recording('quiet', quietType, async () => {
      busyHandledWhenQuietRan ??= busyHandled;
    });
    const bus = openBus({
      subscriptions: [quiet, busy],
      concurrency: 1,
      batchSize: 1000,
      pollIntervalMs: 100,
    });
    await bus.register();
    await emitCommitted(
      testDb.database,
      Array.from({ length: 160 }, () => buildEventInput({ type: busyType })),
    );

    // One run: the busy subscriber alone has enough to keep it going to the end of its backlog.
    await bus.runOnce();

    expect(await countEffects(names.subscriber('busy'))).toBe(160);
    expect(await countEffects(names.subscriber('quiet'))).toBe(1);
    // Handled while the busy backlog still had batches to go, not after it.
    expect(busyHandledWhenQuietRan).toBeDefined();
    expect(busyHandledWhenQuietRan).toBeLessThan(160);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() =>
      openBus({
        subscriptions: [
          {
            ...recordingSubscription({ name: 'tests.zero', eventTypes: ['tests.x.v1'] }),
            maxConcurrentBatches: 0,
          },
        ],
      }),
    ).toThrow(/maxConcurrentBatches/);
  });
});

describe('createEventBus in the background', () => {
  it('wakes in memory when a commit of its own process wrote events, without waiting for the poll interval', async () => {
    const names = uniqueNames();
    const subscription = recordingSubscription({
      name: names.subscriber('live'),
      eventTypes: [names.type('happened')],
    });
    // The poll would only come after the test's timeout, and nothing listens:
    // only the in-process commit signal can deliver in time.
    const bus = openBus({ subscriptions: [subscription], pollIntervalMs: 600_000, isListening: false });
    await bus.start();

    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);

    await vi.waitFor(
      () => expect(subscription.received.map((received) => received.id)).toEqual([event?.id]),
      { timeout: 10_000, interval: 20 },
    );
  });

  it("wakes on another process's NOTIFY and delivers its committed event without waiting for the poll interval", async () => {
    const names = uniqueNames();
    const subscription = recordingSubscription({
      name: names.subscriber('remote'),
      eventTypes: [names.type('happened')],
    });
    // Another process: its own pool and commit signals, so only the NOTIFY reaches it.
    const otherProcess = createDatabase({ ...TEST_DATABASE_SETTINGS, url: testDb.url }, silentLogger);
    cleanups.push(() => otherProcess.close());
    const bus = openBus({
      database: otherProcess,
      subscriptions: [subscription],
      pollIntervalMs: 600_000,
      isListening: true,
    });
    await bus.start();

    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);

    await vi.waitFor(
      () => expect(subscription.received.map((received) => received.id)).toEqual([event?.id]),
      { timeout: 10_000, interval: 20 },
    );
  });

  it('lets the handler in flight finish and commit before stop resolves', async () => {
    const names = uniqueNames();
    let releaseHandler: () => void = () => undefined;
    const handlerReleased = new Promise<void>((resolve) => {
      releaseHandler = resolve;
    });
    let hasStarted = false;
    const subscription: Subscription = {
      name: names.subscriber('slow'),
      eventTypes: [names.type('happened')],
      isOrderedPerAggregate: false,
      maxAttempts: 3,
      async handler(event, trx) {
        hasStarted = true;
        await handlerReleased;
        await insertEffect(trx, names.subscriber('slow'), event);
      },
    };
    const bus = openBus({ subscriptions: [subscription], pollIntervalMs: 20 });
    await bus.start();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);
    await vi.waitFor(() => expect(hasStarted).toBe(true), { timeout: 10_000, interval: 10 });

    let hasStopped = false;
    const stopping = bus.stop().then(() => {
      hasStopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(hasStopped).toBe(false);
    releaseHandler();
    await stopping;

    expect(await countEffects(subscription.name, event?.id)).toBe(1);
    expect(await findDelivery(subscription.name, event?.id ?? '')).toBeUndefined();
  });

  it('counts delivered, retried and dead-lettered deliveries and observes the lag', async () => {
    const names = uniqueNames();
    const subscription = recordingSubscription(
      { name: names.subscriber('measured'), eventTypes: [names.type('happened')], maxAttempts: 2 },
      (event) => ((event.payload as { isPoison?: boolean }).isPoison ? unavailable() : undefined),
    );
    const bus = openBus({ subscriptions: [subscription] });
    const registry = new Registry();
    bus.registerMetrics(registry);
    await bus.register();
    await emitCommitted(testDb.database, [
      buildEventInput({ type: names.type('happened') }),
      buildEventInput({ type: names.type('happened') }),
      buildEventInput({ type: names.type('happened'), payload: { isPoison: true } }),
    ]);

    await drainBus(bus);
    bus.clock.advance(60_000);
    await drainBus(bus);

    const value = async (name: string) =>
      (await registry.getSingleMetric(name)?.get())?.values.find(
        (sample) => sample.labels.subscriber === subscription.name,
      )?.value;
    expect(await value('keel_events_delivered_total')).toBe(2);
    expect(await value('keel_events_failed_total')).toBe(1);
    expect(await value('keel_events_dead_lettered_total')).toBe(1);
    const lag = await registry.getSingleMetric('keel_event_lag_seconds')?.get();
    const lagCount = lag?.values.find(
      (sample) =>
        (sample as { metricName?: string }).metricName === 'keel_event_lag_seconds_count' &&
        sample.labels.subscriber === subscription.name,
    );
    expect(lagCount?.value).toBe(2);
  });
});
