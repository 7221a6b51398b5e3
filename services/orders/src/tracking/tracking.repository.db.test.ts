import { isUniqueViolation, sql } from '@keel/platform/db';
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
  appendFeedEntries,
  appendFeedEntry,
  findFeedEntriesAfter,
  findFeedPositions,
  TRACKING_CHANNEL,
  type TrackingDatabase,
  type TrackingSchema,
} from './tracking.repository.ts';
import { type FeedEntryInput, formatFeedNotification, toFeedEntryInput } from './tracking.ts';

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

describe('appendFeedEntries (a dispatcher batch)', () => {
  function placedEntry(outletId: string): FeedEntryInput {
    return toFeedEntryInput(toEnvelope(orderPlaced(buildTrackedOrder({ outletId }))));
  }

  it('continues each outlet’s positions in batch order, skipping events in the feed already or named twice', async () => {
    const first = await createTestOutlet(testDb.database);
    const second = await createTestOutlet(testDb.database);
    const earlier = placedEntry(first.id);
    await db.transaction((trx) => appendFeedEntries(trx, [earlier]));
    const batch = [
      placedEntry(second.id),
      placedEntry(first.id),
      earlier,
      placedEntry(second.id),
      placedEntry(first.id),
    ];
    const listener = new pg.Client({ connectionString: testDb.url });
    await listener.connect();
    try {
      const received: (string | undefined)[] = [];
      listener.on('notification', (message) => received.push(message.payload));
      await listener.query(`listen ${TRACKING_CHANNEL}`);

      const positions = await db.transaction((trx) =>
        appendFeedEntries(trx, [...batch, batch[1] as FeedEntryInput]),
      );
      await listener.query('select 1');

      const [s1, f2, , s2, f3] = batch.map((entry) => entry.eventId);
      expect(positions).toEqual(
        new Map([
          [s1, 1],
          [f2, 2],
          [s2, 2],
          [f3, 3],
        ]),
      );
      expect((await feedRowsOf(first.id)).map((row) => [Number(row.position), row.event_id])).toEqual([
        [1, earlier.eventId],
        [2, f2],
        [3, f3],
      ]);
      expect((await feedRowsOf(second.id)).map((row) => [Number(row.position), row.event_id])).toEqual([
        [1, s1],
        [2, s2],
      ]);
      expect(new Set(received)).toEqual(
        new Set([
          formatFeedNotification(first.id, 2),
          formatFeedNotification(first.id, 3),
          formatFeedNotification(second.id, 1),
          formatFeedNotification(second.id, 2),
        ]),
      );
      expect(received).toHaveLength(4);
    } finally {
      await listener.end();
    }
  });

  it('keeps every outlet gap-free, without deadlock, when batches over the same outlets run concurrently', async () => {
    const outlets = [
      await createTestOutlet(testDb.database),
      await createTestOutlet(testDb.database),
      await createTestOutlet(testDb.database),
    ];
    // Twelve batches of six, each naming the outlets in a different order.
    const batches = Array.from({ length: 12 }, (_, batch) =>
      Array.from({ length: 6 }, (_, index) =>
        placedEntry(outlets[(batch + index * (batch % 2 === 0 ? 1 : 2)) % 3]?.id ?? ''),
      ),
    );

    await Promise.all(batches.map((batch) => db.transaction((trx) => appendFeedEntries(trx, batch))));

    for (const outlet of outlets) {
      const expected = batches.flat().filter((entry) => entry.outletId === outlet.id).length;
      const rows = await feedRowsOf(outlet.id);
      expect(rows.map((row) => Number(row.position))).toEqual(
        Array.from({ length: expected }, (_, i) => i + 1),
      );
    }
  });
});

describe('appendFeedEntry', () => {
  function buildFeedEntryInput(outletId: string): FeedEntryInput {
    return toFeedEntryInput(toEnvelope(orderPlaced(buildTrackedOrder({ outletId }))));
  }

  function append(entry: FeedEntryInput): Promise<number | undefined> {
    return db.transaction((trx) => appendFeedEntry(trx, entry));
  }

  async function cursorOf(outletId: string): Promise<number | undefined> {
    const positions = await db.run((kysely) => findFeedPositions(kysely, [outletId]));
    return positions.get(outletId);
  }

  it('returns undefined, writes nothing and takes no position when the event is in the feed already', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const entry = buildFeedEntryInput(outlet.id);

    expect(await append(entry)).toBe(1);
    expect(await append(entry)).toBeUndefined();

    expect((await feedRowsOf(outlet.id)).map((row) => [Number(row.position), row.event_id])).toEqual([
      [1, entry.eventId],
    ]);
    expect(await cursorOf(outlet.id)).toBe(1);
    expect(await append(buildFeedEntryInput(outlet.id))).toBe(2);
  });

  it('notifies `<outletId>:<position>` once per appended row and not for an event in the feed already', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const listener = new pg.Client({ connectionString: testDb.url });
    await listener.connect();
    try {
      const received: { channel: string; payload: string | undefined }[] = [];
      listener.on('notification', (message) => {
        received.push({ channel: message.channel, payload: message.payload });
      });
      await listener.query(`listen ${TRACKING_CHANNEL}`);
      const first = buildFeedEntryInput(outlet.id);

      await append(first);
      await append(first);
      await append(buildFeedEntryInput(outlet.id));
      // The notifications were queued for this session at each commit; a round
      // trip delivers them before its own result.
      await listener.query('select 1');

      expect(received).toEqual([
        { channel: TRACKING_CHANNEL, payload: formatFeedNotification(outlet.id, 1) },
        { channel: TRACKING_CHANNEL, payload: formatFeedNotification(outlet.id, 2) },
      ]);
    } finally {
      await listener.end();
    }
  });

  it('fails a concurrent duplicate that passed the event id check on the unique index and gives its position back', async () => {
    const outlet = await createTestOutlet(testDb.database);
    const entry = buildFeedEntryInput(outlet.id);
    let releaseFirst = () => {};
    const isFirstReleased = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let reportFirstAppended = (_position: number | undefined) => {};
    const firstAppended = new Promise<number | undefined>((resolve) => {
      reportFirstAppended = resolve;
    });

    // The first append holds the cursor row, uncommitted, so the second
    // cannot see its feed row: it passes the check and waits on the cursor.
    const first = db.transaction(async (trx) => {
      const position = await appendFeedEntry(trx, entry);
      reportFirstAppended(position);
      await isFirstReleased;
      return position;
    });
    expect(await firstAppended).toBe(1);
    const second = append(entry).then(
      (position) => ({ position }),
      (error: unknown) => ({ error }),
    );
    await waitForLockWaiters(1);
    releaseFirst();

    expect(await first).toBe(1);
    const outcome = await second;
    expect('error' in outcome && isUniqueViolation(outcome.error, 'tracking_feed_event_id_key')).toBe(true);
    expect(await feedRowsOf(outlet.id)).toHaveLength(1);
    expect(await cursorOf(outlet.id)).toBe(1);
    expect(await append(buildFeedEntryInput(outlet.id))).toBe(2);
  });
});

async function waitForLockWaiters(count: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const result = await db.run((kysely) =>
      sql<{ waiting: number }>`
        select count(*)::int as waiting from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`.execute(kysely),
    );
    if ((result.rows[0]?.waiting ?? 0) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no ${count} sessions waiting on a lock after 2 s`);
}
