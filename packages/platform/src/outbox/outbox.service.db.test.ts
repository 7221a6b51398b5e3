import { randomUUID } from 'node:crypto';
import { defineEvent } from '@keel/contracts';
import { sql } from 'kysely';
import pg from 'pg';
import { Type } from 'typebox';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AppError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { createEventBus } from './outbox.dispatcher.ts';
import { OUTBOX_APPEND_ONLY_SQLSTATE } from './outbox.errors.ts';
import {
  buildEventInput,
  createManualClock,
  drainBus,
  emitCommitted,
  uniqueNames,
} from './outbox.factories.ts';
import { EVENTS_CHANNEL } from './outbox.repository.ts';
import {
  emitEvent,
  handleEventOnce,
  listDeadLetters,
  prepareEvent,
  pruneEvents,
  replayDeadLetter,
  retireSubscription,
} from './outbox.service.ts';
import type { Subscription } from './outbox.ts';

let testDb: TestDatabase;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await testDb?.drop();
});

function openBus(subscriptions: Subscription[]) {
  const clock = createManualClock();
  const bus = createEventBus({
    database: testDb.database,
    logger: createLogger({ level: 'silent' }),
    subscriptions,
    pollIntervalMs: 50,
    batchSize: 100,
    clock,
    isListening: false,
    random: () => 0,
  });
  cleanups.push(() => bus.stop());
  return Object.assign(bus, { clock });
}

function noopSubscription(
  name: string,
  eventTypes: string[],
  overrides: Partial<Subscription> = {},
): Subscription {
  return {
    name,
    eventTypes,
    isOrderedPerAggregate: false,
    maxAttempts: 3,
    handler: async () => undefined,
    ...overrides,
  };
}

async function countRows(table: string, column: string, value: string): Promise<number> {
  const result = await testDb.database.pool.query<{ count: string }>(
    `select count(*) from ${table} where ${column} = $1`,
    [value],
  );
  return Number(result.rows[0]?.count);
}

async function countDeliveries(eventId: string): Promise<number> {
  const result = await testDb.database.pool.query<{ count: string }>(
    `select count(*) from platform.event_deliveries d
     join platform.outbox_events e on e.position = d.position where e.id = $1`,
    [eventId],
  );
  return Number(result.rows[0]?.count);
}

describe('emitEvent', () => {
  it('stores an event nobody subscribes to without any delivery', async () => {
    const names = uniqueNames();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('unheard') })]);

    expect(await countRows('platform.outbox_events', 'id', event?.id ?? '')).toBe(1);
    expect(await countDeliveries(event?.id ?? '')).toBe(0);
  });

  it('rejects with events.invalid_event and writes nothing when the type is not <service>.<event>.v<major>', async () => {
    const aggregateId = randomUUID();
    const emitting = emitCommitted(testDb.database, [
      buildEventInput({ type: 'orders.OrderPlaced', aggregateId }),
    ]);

    await expect(emitting).rejects.toMatchObject({ kind: 'internal', code: 'events.invalid_event' });
    expect(await countRows('platform.outbox_events', 'aggregate_id', aggregateId)).toBe(0);
  });

  it("rejects with events.invalid_event when the payload does not match the definition's schema", async () => {
    const names = uniqueNames();
    const definition = defineEvent(names.type('priced'), Type.Object({ totalMinor: Type.Integer() }));
    const aggregateId = randomUUID();

    const emitting = emitCommitted(
      testDb.database,
      [buildEventInput({ type: definition.type, aggregateId, payload: { totalMinor: 'twelve' } })],
      { definition },
    );

    await expect(emitting).rejects.toMatchObject({ kind: 'internal', code: 'events.invalid_event' });
    expect(await countRows('platform.outbox_events', 'aggregate_id', aggregateId)).toBe(0);
  });

  it("stamps the definition's schema version on an event that matches it", async () => {
    const names = uniqueNames();
    const definition = defineEvent(names.type('priced'), Type.Object({ totalMinor: Type.Integer() }), {
      schemaVersion: 2,
    });

    const [event] = await emitCommitted(
      testDb.database,
      [buildEventInput({ type: definition.type, payload: { totalMinor: 1200 } })],
      { definition },
    );

    expect(event?.schemaVersion).toBe(2);
    expect(definition.parse(event)).toEqual(event);
    const stored = await testDb.database.pool.query(
      'select schema_version from platform.outbox_events where id = $1',
      [event?.id],
    );
    expect(stored.rows).toEqual([{ schema_version: 2 }]);
  });

  it('refuses to update a stored event with KE001', async () => {
    const names = uniqueNames();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('fixed') })]);

    const updating = testDb.database.pool.query(
      `update platform.outbox_events set payload = '{"note":"forged"}' where id = $1`,
      [event?.id],
    );

    await expect(updating).rejects.toMatchObject({ code: OUTBOX_APPEND_ONLY_SQLSTATE });
  });

  it('signals after the commit, not inside the transaction, unless told not to', async () => {
    const names = uniqueNames();
    const { listener, localSignals } = await watchEventSignals(names);

    await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })], {
      isNotifying: false,
    });
    expect(localSignals()).toBe(0);
    await emitCommitted(testDb.database, [
      buildEventInput({ type: names.type('happened') }),
      buildEventInput({ type: names.type('happened') }),
    ]);
    expect(localSignals()).toBe(1);

    // The payload is this process's origin: the commit signal sent it, after
    // the commit (a NOTIFY inside the transaction would carry none).
    await vi.waitFor(() => expect(listener.payloads).toHaveLength(1), { timeout: 10_000, interval: 10 });
    await listener.client.query('select 1');
    expect(listener.payloads).toEqual([testDb.database.signals.origin]);
  });

  it('notifies inside a transaction it cannot signal after (one not opened by Db.transaction)', async () => {
    const names = uniqueNames();
    const { listener } = await watchEventSignals(names);

    await testDb.database
      .typed<unknown>()
      .run((db) =>
        db.transaction().execute((trx) => emitEvent(trx, buildEventInput({ type: names.type('happened') }))),
      );

    await vi.waitFor(() => expect(listener.payloads).toEqual(['']), { timeout: 10_000, interval: 10 });
  });
});

/** Another process's view: a connection listening on the events channel, with the payloads it received. */
async function listenOnEventsChannel(): Promise<{ client: pg.Client; payloads: string[] }> {
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  cleanups.push(() => client.end());
  const payloads: string[] = [];
  client.on('notification', (message) => {
    if (message.channel === EVENTS_CHANNEL) payloads.push(message.payload ?? '');
  });
  await client.query(`listen ${EVENTS_CHANNEL}`);
  return { client, payloads };
}

/**
 * Subscribes a no-op subscriber to `names.type('happened')` and watches both
 * ways a commit can wake dispatchers: this process's in-memory signals and
 * another process's view of the events channel.
 */
async function watchEventSignals(names: ReturnType<typeof uniqueNames>) {
  const bus = openBus([noopSubscription(names.subscriber('listener'), [names.type('happened')])]);
  await bus.register();
  const listener = await listenOnEventsChannel();
  let signals = 0;
  const unsubscribe = testDb.database.signals.subscribe(EVENTS_CHANNEL, () => {
    signals += 1;
  });
  cleanups.push(async () => unsubscribe());
  return { listener, localSignals: () => signals };
}

describe('prepareEvent', () => {
  async function countRows(eventId: string): Promise<{ events: number; deliveries: number }> {
    const result = await testDb.database.pool.query<{ events: number; deliveries: number }>(
      `select (select count(*) from platform.outbox_events where id = $1)::int as events,
              (select count(*) from platform.event_deliveries d join platform.outbox_events e
                 on e.position = d.position where e.id = $1)::int as deliveries`,
      [eventId],
    );
    return result.rows[0] ?? { events: -1, deliveries: -1 };
  }

  it("writes the event and one delivery per subscriber in the caller's statement, only when its condition holds", async () => {
    const names = uniqueNames();
    const bus = openBus([
      noopSubscription(names.subscriber('first'), [names.type('happened')]),
      noopSubscription(names.subscriber('second'), [names.type('happened')]),
    ]);
    await bus.register();
    const db = testDb.database.typed<unknown>();
    const { written, skipped } = await db.transaction(async (trx) => {
      const written = prepareEvent(trx, buildEventInput({ type: names.type('happened') }));
      const skipped = prepareEvent(trx, buildEventInput({ type: names.type('happened') }));
      await sql`with chosen as (select 1 where ${true}), ${written.insertWhen(sql`select 1 from chosen`)}
        select 1`.execute(trx);
      await sql`with chosen as (select 1 where ${false}), ${skipped.insertWhen(sql`select 1 from chosen`)}
        select 1`.execute(trx);
      return { written, skipped };
    });
    expect(await countRows(written.envelope.id)).toEqual({ events: 1, deliveries: 2 });
    expect(await countRows(skipped.envelope.id)).toEqual({ events: 0, deliveries: 0 });
    const stored = await testDb.database.pool.query(
      'select type, aggregate_id, payload from platform.outbox_events where id = $1',
      [written.envelope.id],
    );
    expect(stored.rows).toEqual([
      {
        type: written.envelope.type,
        aggregate_id: written.envelope.aggregateId,
        payload: written.envelope.payload,
      },
    ]);
  });

  it("commits with Db.autocommit's one statement and signals after it, without a NOTIFY inside it", async () => {
    const names = uniqueNames();
    const { listener, localSignals } = await watchEventSignals(names);
    const db = testDb.database.typed<unknown>();

    const event = await db.autocommit(async (writer) => {
      const prepared = prepareEvent(writer, buildEventInput({ type: names.type('happened') }));
      await sql`with ${prepared.insertWhen(sql`select 1`)} select 1`.execute(writer);
      // Committed already (the statement was its own transaction), but not yet signalled.
      expect(await countRows(prepared.envelope.id)).toEqual({ events: 1, deliveries: 1 });
      expect(localSignals()).toBe(0);
      return prepared.envelope;
    });

    expect(localSignals()).toBe(1);
    expect(await countRows(event.id)).toEqual({ events: 1, deliveries: 1 });
    // Only the signal's NOTIFY, with this process's origin; one inside the statement would carry ''.
    await vi.waitFor(() => expect(listener.payloads).toHaveLength(1), { timeout: 10_000, interval: 10 });
    await listener.client.query('select 1');
    expect(listener.payloads).toEqual([testDb.database.signals.origin]);
  });

  it("notifies inside the statement when given Db.run's handle, which cannot signal after it", async () => {
    const names = uniqueNames();
    const { listener } = await watchEventSignals(names);

    await testDb.database.typed<unknown>().run(async (db) => {
      const prepared = prepareEvent(db, buildEventInput({ type: names.type('happened') }));
      await sql`with ${prepared.insertWhen(sql`select 1`)} select 1`.execute(db);
    });

    await vi.waitFor(() => expect(listener.payloads).toEqual(['']), { timeout: 10_000, interval: 10 });
  });

  it('checks the envelope as emitEvent does, before any statement runs', async () => {
    const db = testDb.database.typed<unknown>();
    await expect(
      db.transaction(async (trx) => prepareEvent(trx, buildEventInput({ type: 'NotAnEventType' }))),
    ).rejects.toMatchObject({ code: 'events.invalid_event' });
  });
});

describe('dead letter administration', () => {
  it('rejects a page size outside 1..500 with events.invalid_limit', async () => {
    await expect(listDeadLetters(testDb.database, { limit: 0 })).rejects.toMatchObject({
      kind: 'invalid',
      code: 'events.invalid_limit',
    });
    await expect(listDeadLetters(testDb.database, { limit: 501 })).rejects.toMatchObject({
      code: 'events.invalid_limit',
    });
  });

  it('answers 404 events.dead_letter_not_found for an event id that is not a UUID or not dead', async () => {
    const names = uniqueNames();
    const bus = openBus([noopSubscription(names.subscriber('healthy'), [names.type('happened')])]);
    await bus.register();
    const [pending] = await emitCommitted(testDb.database, [
      buildEventInput({ type: names.type('happened') }),
    ]);

    await expect(
      replayDeadLetter(testDb.database, names.subscriber('healthy'), 'not-a-uuid'),
    ).rejects.toMatchObject({
      kind: 'not_found',
      code: 'events.dead_letter_not_found',
    });
    // Pending, not dead: replay must not reset its attempts.
    await expect(
      replayDeadLetter(testDb.database, names.subscriber('healthy'), pending?.id ?? ''),
    ).rejects.toMatchObject({ code: 'events.dead_letter_not_found' });
  });
});

describe('retireSubscription', () => {
  it('stops fanning events out to a retired subscriber and drops its queued deliveries', async () => {
    const names = uniqueNames();
    const bus = openBus([noopSubscription(names.subscriber('legacy'), [names.type('happened')])]);
    await bus.register();
    const [queued] = await emitCommitted(testDb.database, [
      buildEventInput({ type: names.type('happened') }),
    ]);

    expect(await retireSubscription(testDb.database, names.subscriber('legacy'))).toEqual({ deliveries: 1 });
    const [later] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);

    expect(await countDeliveries(queued?.id ?? '')).toBe(0);
    expect(await countDeliveries(later?.id ?? '')).toBe(0);
  });
});

describe('handleEventOnce', () => {
  it('applies an event received twice from another transport only once', async () => {
    const names = uniqueNames();
    let calls = 0;
    const subscription = {
      name: names.subscriber('jetstream'),
      handler: async () => {
        calls += 1;
      },
    };
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('relayed') })]);
    if (event === undefined) throw new Error('no event emitted');

    expect(await handleEventOnce(testDb.database, subscription, event)).toBe(true);
    expect(await handleEventOnce(testDb.database, subscription, event)).toBe(false);

    expect(calls).toBe(1);
  });

  it('records nothing in the inbox when the handler fails, so the event can be applied later', async () => {
    const names = uniqueNames();
    const [event] = await emitCommitted(testDb.database, [buildEventInput({ type: names.type('relayed') })]);
    if (event === undefined) throw new Error('no event emitted');
    const failing = {
      name: names.subscriber('jetstream'),
      handler: async () => {
        throw new Error('downstream failed');
      },
    };

    await expect(handleEventOnce(testDb.database, failing, event)).rejects.toThrow('downstream failed');

    expect(await countRows('platform.event_inbox', 'event_id', event.id)).toBe(0);
  });
});

describe('pruneEvents', () => {
  it('deletes handled events and inbox entries older than the cutoff, and keeps events still to be delivered', async () => {
    const names = uniqueNames();
    const healthy = noopSubscription(names.subscriber('healthy'), [names.type('handled')]);
    const failing = noopSubscription(
      names.subscriber('failing'),
      [names.type('stuck'), names.type('doomed')],
      {
        maxAttempts: 1,
        handler: async (event) => {
          if (event.type === names.type('stuck')) throw new Error('not yet');
          throw new AppError('invalid', 'tests.bad_event', 'bad');
        },
      },
    );
    const retrying = noopSubscription(names.subscriber('retrying'), [names.type('stuck')], {
      maxAttempts: 5,
      handler: async () => {
        throw new Error('not yet');
      },
    });
    const bus = openBus([healthy, failing, retrying]);
    await bus.register();
    const [handled, stuck, doomed] = await emitCommitted(testDb.database, [
      buildEventInput({ type: names.type('handled') }),
      buildEventInput({ type: names.type('stuck') }),
      buildEventInput({ type: names.type('doomed') }),
    ]);
    await drainBus(bus);
    const cutoff = new Date(Date.now() + 60_000);

    const pruned = await pruneEvents(testDb.database, { before: cutoff, batchSize: 2 });

    expect(pruned.events).toBeGreaterThanOrEqual(1);
    expect(pruned.inboxEntries).toBeGreaterThanOrEqual(1);
    expect(await countRows('platform.outbox_events', 'id', handled?.id ?? '')).toBe(0);
    expect(await countRows('platform.event_inbox', 'event_id', handled?.id ?? '')).toBe(0);
    // Pending for one subscriber and dead for another: both stay.
    expect(await countRows('platform.outbox_events', 'id', stuck?.id ?? '')).toBe(1);
    expect(await countRows('platform.outbox_events', 'id', doomed?.id ?? '')).toBe(1);
  });
});
