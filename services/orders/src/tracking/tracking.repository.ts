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
 * commit (see `appendFeedEntries`). Returns the position, or undefined when
 * the event is in the feed already.
 */
export async function appendFeedEntry(trx: TrackingDb, entry: FeedEntryInput): Promise<number | undefined> {
  const positions = await appendFeedEntries(trx, [entry]);
  return positions.get(entry.eventId);
}

/**
 * Appends order events to their outlets' feeds, in the given order within
 * each outlet, and notifies listeners at commit, in one statement (one round
 * trip per batch). Returns the positions taken, by event id; an event in the
 * feed already (a redelivery that bypassed the inbox), or named twice, is
 * appended once: no second row, no position used up, nobody notified.
 *
 * Must run in the transaction that commits the appends: the cursor rows stay
 * locked until then, which is what makes positions commit in order.
 */
export async function appendFeedEntries(
  trx: TrackingDb,
  entries: readonly FeedEntryInput[],
): Promise<Map<string, number>> {
  if (entries.length === 0) return new Map();
  const rows = entries.map((entry, seq) => ({
    seq,
    outlet_id: entry.outletId,
    order_id: entry.orderId,
    customer_id: entry.customerId,
    event_id: entry.eventId,
    event_type: entry.eventName,
    status: entry.status,
    version: entry.version,
    payload: entry.view,
    occurred_at: entry.occurredAt,
  }));
  // next_positions takes as many positions as an outlet has new entries and
  // the cursor row's lock. A concurrent append to the same outlet waits there
  // until this transaction commits, then continues from the committed value:
  // positions are gap-free (rolled back appends give their numbers back with
  // the row) and N-1 is visible before N is. An outlet's first append inserts
  // the row; a racing first append waits on that insert and then updates.
  // Cursor rows are taken in outlet id order, so two batches cannot deadlock.
  //
  // Data-modifying CTEs always run, so the event id check sits in `fresh`,
  // which everything else reads: an event already in the feed takes no
  // position, inserts no feed row and sends no notification. The check reads
  // the statement's snapshot; the unique event id still guards a concurrent
  // duplicate that passed it: its insert fails, its transaction (and
  // positions) roll back.
  //
  // The notification is each feed row's RETURNING, so it is sent once per
  // appended row, at commit; its payload is formatFeedNotification's
  // `<outletId>:<position>`, built here because the position is only known
  // inside the statement.
  const result = await sql<{ event_id: string; position: string }>`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(
        seq int, outlet_id uuid, order_id uuid, customer_id uuid, event_id uuid, event_type text,
        status text, version int, payload jsonb, occurred_at timestamptz
      )
    ),
    fresh as (
      select distinct on (input.event_id) input.* from input
      where not exists (select 1 from orders.tracking_feed f where f.event_id = input.event_id)
      order by input.event_id, input.seq
    ),
    ranked as (
      select fresh.*,
        row_number() over (partition by outlet_id order by seq) as rank,
        count(*) over (partition by outlet_id) as taken
      from fresh
    ),
    next_positions as (
      insert into orders.tracking_cursors as c (outlet_id, last_position)
      select outlet_id, count(*) from fresh group by outlet_id order by outlet_id
      on conflict (outlet_id) do update set last_position = c.last_position + excluded.last_position
      returning outlet_id, last_position
    ),
    appended as (
      insert into orders.tracking_feed (
        outlet_id, position, order_id, customer_id, event_id, event_type, status, version, payload, occurred_at
      )
      select r.outlet_id, n.last_position - r.taken + r.rank, r.order_id, r.customer_id, r.event_id,
             r.event_type, r.status, r.version, r.payload, r.occurred_at
      from ranked r
      join next_positions n on n.outlet_id = r.outlet_id
      order by r.outlet_id, r.rank
      returning event_id, position,
        pg_notify(${TRACKING_CHANNEL}::text, outlet_id::text || ':' || position::text)
    )
    select event_id::text as event_id, position::text as position from appended`.execute(trx);
  return new Map(result.rows.map((row) => [row.event_id, Number(row.position)]));
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
