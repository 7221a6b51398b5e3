import { handleEventOnce } from '@keel/platform/outbox';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestOutlet } from '../../test/fixtures.ts';
import { createTrackingSubscription } from './on-order-event.handler.ts';
import {
  buildTrackedOrder,
  orderCancelled,
  orderPlaced,
  statusChanges,
  toEnvelope,
} from './tracking.factories.ts';
import {
  findFeedEntriesAfter,
  findFeedPositions,
  TRACKING_CHANNEL,
  type TrackingDatabase,
  type TrackingSchema,
} from './tracking.repository.ts';

// The feed's guarantees, on Postgres: gap-free per-outlet positions that
// commit in order under concurrent handlers, one row per event however often
// it is delivered, and a notification at commit.

let testDb: TestDatabase;
let db: TrackingDatabase;
const subscription = createTrackingSubscription();

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  db = testDb.database.typed<TrackingSchema>();
});

afterAll(async () => {
  await testDb?.drop();
});

async function feedRowsOf(outletId: string) {
  return db.run((kysely) =>
    kysely
      .selectFrom('orders.tracking_feed')
      .select(['position', 'event_id', 'order_id', 'event_type', 'status', 'version'])
      .where('outlet_id', '=', outletId)
      .orderBy('position')
      .execute(),
  );
}

describe('orders.tracking subscription', () => {
  it('takes positions 1..N with no gap or duplicate when one outlet’s events are handled concurrently', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const events = Array.from({ length: 60 }, () =>
      toEnvelope(orderPlaced(buildTrackedOrder({ outletId: outlet.id }))),
    );

    await Promise.all(events.map((event) => handleEventOnce(testDb.database, subscription, event)));

    const rows = await feedRowsOf(outlet.id);
    expect(rows.map((row) => Number(row.position))).toEqual(events.map((_, index) => index + 1));
    expect(new Set(rows.map((row) => row.event_id))).toEqual(new Set(events.map((event) => event.id)));
    const positions = await db.run((kysely) => findFeedPositions(kysely, [outlet.id]));
    expect(positions.get(outlet.id)).toBe(events.length);
  });

  it('never lets a reader see position N before N-1 while handlers append concurrently', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const events = Array.from({ length: 80 }, () =>
      toEnvelope(orderPlaced(buildTrackedOrder({ outletId: outlet.id }))),
    );
    let isWriting = true;
    const writing = Promise.all(
      events.map((event) => handleEventOnce(testDb.database, subscription, event)),
    ).finally(() => {
      isWriting = false;
    });

    // A stream's read: everything after the last position it saw. Every read
    // must continue exactly where the previous one stopped.
    let seen = 0;
    const holes: string[] = [];
    while (isWriting || seen < events.length) {
      const entries = await db.run((kysely) =>
        findFeedEntriesAfter(kysely, { outletId: outlet.id, after: seen, limit: 1000 }),
      );
      entries.forEach((entry, index) => {
        if (entry.position !== seen + index + 1) holes.push(`after ${seen} read ${entry.position}`);
      });
      seen = entries.at(-1)?.position ?? seen;
      if (!isWriting && entries.length === 0) break;
    }
    await writing;

    expect(holes).toEqual([]);
    expect(seen).toBe(events.length);
  });

  it('numbers each outlet’s feed on its own', async () => {
    const first = await createTestOutlet(testDb.database);
    const second = await createTestOutlet(testDb.database);
    for (const outletId of [first.id, second.id, first.id]) {
      await handleEventOnce(
        testDb.database,
        subscription,
        toEnvelope(orderPlaced(buildTrackedOrder({ outletId }))),
      );
    }
    expect((await feedRowsOf(first.id)).map((row) => Number(row.position))).toEqual([1, 2]);
    expect((await feedRowsOf(second.id)).map((row) => Number(row.position))).toEqual([1]);
  });

  it('appends one row when the same event is delivered twice through the inbox', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const event = toEnvelope(orderPlaced(buildTrackedOrder({ outletId: outlet.id })));

    expect(await handleEventOnce(testDb.database, subscription, event)).toBe(true);
    expect(await handleEventOnce(testDb.database, subscription, event)).toBe(false);

    expect(await feedRowsOf(outlet.id)).toHaveLength(1);
  });

  it('appends nothing and uses up no position when the handler itself runs twice for one event', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const order = buildTrackedOrder({ outletId: outlet.id });
    const placed = toEnvelope(orderPlaced(order));
    for (let run = 0; run < 2; run += 1) {
      await testDb.database.typed<unknown>().transaction((trx) => subscription.handler(placed, trx));
    }
    const [confirmed] = statusChanges(order, ['CONFIRMED']).map(toEnvelope);
    if (confirmed === undefined) throw new Error('no status change built');
    await handleEventOnce(testDb.database, subscription, confirmed);

    const rows = await feedRowsOf(outlet.id);
    expect(rows.map((row) => [Number(row.position), row.event_type, row.status, row.version])).toEqual([
      [1, 'order_placed', 'PLACED', 1],
      [2, 'order_status_changed', 'CONFIRMED', 2],
    ]);
  });

  it('reads an order’s entries only when asked for one order', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const mine = buildTrackedOrder({ outletId: outlet.id });
    const theirs = buildTrackedOrder({ outletId: outlet.id });
    for (const event of [orderPlaced(mine), orderPlaced(theirs), orderCancelled(mine, 'PLACED', 2)]) {
      await handleEventOnce(testDb.database, subscription, toEnvelope(event));
    }
    const entries = await db.run((kysely) =>
      findFeedEntriesAfter(kysely, { outletId: outlet.id, after: 0, orderId: mine.orderId, limit: 10 }),
    );
    expect(entries.map((entry) => [entry.position, entry.eventName])).toEqual([
      [1, 'order_placed'],
      [3, 'order_cancelled'],
    ]);
    expect(entries[1]?.view).toMatchObject({ status: 'CANCELLED', reason: 'out of buns' });
  });

  it('notifies `<outletId>:<position>` on orders_tracking when the append commits', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const listener = new pg.Client({ connectionString: testDb.url });
    await listener.connect();
    try {
      const received = new Promise<string | undefined>((resolve) => {
        listener.on('notification', (message) => resolve(message.payload));
      });
      await listener.query(`listen ${TRACKING_CHANNEL}`);

      await handleEventOnce(
        testDb.database,
        subscription,
        toEnvelope(orderPlaced(buildTrackedOrder({ outletId: outlet.id }))),
      );

      expect(await received).toBe(`${outlet.id}:1`);
    } finally {
      await listener.end();
    }
  });
});
