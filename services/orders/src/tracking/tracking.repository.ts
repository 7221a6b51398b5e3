import type { OrderStatus } from '@keel/contracts';
import { type ColumnType, type Db, type Generated, type Kysely, sql } from '@keel/platform/db';
import type { OrdersSchema } from '../database.ts';
import type { FeedEntry, FeedEntryInput, TrackingEventName } from './tracking.ts';

// Tables of migrations/0002_tracking.sql, owned by this feature alone.

/** `bigint`: pg returns it as a string; converted with `Number()` (positions stay far below 2^53). */
type PositionColumn = ColumnType<string, number, number>;

export type TrackingCursorsTable = {
  outlet_id: string;
  last_position: PositionColumn;
};

export type TrackingFeedTable = {
  outlet_id: string;
  position: PositionColumn;
  order_id: string;
  customer_id: string;
  event_id: string;
  event_type: string;
  status: string;
  version: number;
  // Written as a JSON string (pg would turn an array into a Postgres array), read back parsed.
  payload: ColumnType<Record<string, unknown>, string, string>;
  occurred_at: Date;
  recorded_at: Generated<Date>;
};

export type TrackingSchema = OrdersSchema & {
  'orders.tracking_cursors': TrackingCursorsTable;
  'orders.tracking_feed': TrackingFeedTable;
};
export type TrackingDb = Kysely<TrackingSchema>;
export type TrackingDatabase = Db<TrackingSchema>;

/** Every append notifies this channel with `<outletId>:<position>`, delivered at commit. */
export const TRACKING_CHANNEL = 'orders_tracking';

/**
 * Appends an order event to its outlet's feed and notifies listeners at
 * commit, in one statement (one round trip per event). Returns the position,
 * or undefined when the event is in the feed already (a redelivery that
 * bypassed the inbox: nothing is appended, no position is used up and
 * nobody is notified).
 *
 * Must run in the transaction that commits the append: the cursor row stays
 * locked until then, which is what makes positions commit in order.
 */
export async function appendFeedEntry(trx: TrackingDb, entry: FeedEntryInput): Promise<number | undefined> {
  // next_position takes the next position and the cursor row's lock. A
  // concurrent append to the same outlet waits there until this transaction
  // commits, then continues from the committed value: positions are
  // gap-free (a rolled back append gives its number back with the row) and
  // N-1 is visible before N is. The first append of an outlet inserts the
  // row; a racing first append waits on that insert and then updates.
  //
  // Data-modifying CTEs always run, so the event id check sits inside the
  // cursor's insert: an event already in the feed selects no row, so it takes
  // no position, inserts no feed row and sends no notification. The check
  // reads the statement's snapshot; the unique event id still guards a
  // concurrent duplicate that passed it: its insert fails, its transaction
  // (and position) rolls back.
  //
  // The notification is the feed row's RETURNING, so it is sent once per
  // appended row, at commit; its payload is formatFeedNotification's
  // `<outletId>:<position>`, built here because the position is only known
  // inside the statement.
  const result = await sql<{ position: string }>`
    with next_position as (
      insert into orders.tracking_cursors (outlet_id, last_position)
      select ${entry.outletId}::uuid, 1
      where not exists (select 1 from orders.tracking_feed where event_id = ${entry.eventId}::uuid)
      on conflict (outlet_id) do update set last_position = orders.tracking_cursors.last_position + 1
      returning last_position
    ),
    appended as (
      insert into orders.tracking_feed (
        outlet_id, position, order_id, customer_id, event_id, event_type, status, version, payload, occurred_at
      )
      select ${entry.outletId}::uuid, next_position.last_position, ${entry.orderId}::uuid,
             ${entry.customerId}::uuid, ${entry.eventId}::uuid, ${entry.eventName}::text, ${entry.status}::text,
             ${entry.version}::int, ${JSON.stringify(entry.view)}::jsonb, ${entry.occurredAt}::timestamptz
      from next_position
      returning position, pg_notify(${TRACKING_CHANNEL}::text, ${entry.outletId}::text || ':' || position::text)
    )
    select position from appended`.execute(trx);
  const row = result.rows[0];
  return row === undefined ? undefined : Number(row.position);
}

/** Entries of an outlet after `position`, oldest first; only `orderId`'s when given. */
export async function findFeedEntriesAfter(
  db: TrackingDb,
  query: { outletId: string; after: number; orderId?: string; limit: number },
): Promise<FeedEntry[]> {
  let select = db
    .selectFrom('orders.tracking_feed')
    .select(['outlet_id', 'position', 'order_id', 'event_type', 'payload'])
    .where('outlet_id', '=', query.outletId)
    .where('position', '>', String(query.after));
  if (query.orderId !== undefined) select = select.where('order_id', '=', query.orderId);
  const rows = await select.orderBy('position').limit(query.limit).execute();
  return rows.map(toFeedEntry);
}

function toFeedEntry(row: {
  outlet_id: string;
  position: string;
  order_id: string;
  event_type: string;
  payload: Record<string, unknown>;
}): FeedEntry {
  return {
    outletId: row.outlet_id,
    position: Number(row.position),
    orderId: row.order_id,
    // The column's CHECK constraint admits only the three names.
    eventName: row.event_type as TrackingEventName,
    view: row.payload,
  };
}

/** The last position of each listed outlet that has a feed (others are absent). */
export async function findFeedPositions(
  db: TrackingDb,
  outletIds: readonly string[],
): Promise<Map<string, number>> {
  if (outletIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('orders.tracking_cursors')
    .select(['outlet_id', 'last_position'])
    .where('outlet_id', 'in', outletIds)
    .execute();
  return new Map(rows.map((row) => [row.outlet_id, Number(row.last_position)]));
}

/** The outlet's last feed position (0 before its first event), or undefined when there is no such outlet. */
export async function findOutletFeedPosition(db: TrackingDb, outletId: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('orders.outlets as outlet')
    .leftJoin('orders.tracking_cursors as cursor', 'cursor.outlet_id', 'outlet.id')
    .select(['outlet.id', 'cursor.last_position'])
    .where('outlet.id', '=', outletId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return row.last_position === null ? 0 : Number(row.last_position);
}

export type OrderTrackingState = {
  orderId: string;
  outletId: string;
  customerId: string;
  status: OrderStatus;
  version: number;
  updatedAt: Date;
  /** The outlet's feed position read in the same statement (0 before its first event). */
  feedPosition: number;
};

/**
 * The order and its outlet's feed position, read in one statement, so one
 * snapshot: every feed entry at or below `feedPosition` was appended after its
 * order change committed, so the order row read here already reflects it.
 */
export async function findOrderTrackingState(
  db: TrackingDb,
  orderId: string,
): Promise<OrderTrackingState | undefined> {
  const row = await db
    .selectFrom('orders.orders as order')
    .leftJoin('orders.tracking_cursors as cursor', 'cursor.outlet_id', 'order.outlet_id')
    .select([
      'order.id',
      'order.outlet_id',
      'order.customer_id',
      'order.status',
      'order.version',
      'order.updated_at',
      'cursor.last_position',
    ])
    .where('order.id', '=', orderId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    orderId: row.id,
    outletId: row.outlet_id,
    customerId: row.customer_id,
    // The column's CHECK constraint admits only the contract's statuses.
    status: row.status as OrderStatus,
    version: row.version,
    updatedAt: row.updated_at,
    feedPosition: row.last_position === null ? 0 : Number(row.last_position),
  };
}
