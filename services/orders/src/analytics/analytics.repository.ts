import { type ColumnType, type Generated, type Kysely, sql } from '@keel/platform/db';
import type { MinorUnitsColumn, OutletsTable } from '../database.ts';
import type { AnalyticsGranularity, HourlyDelta, RollupRow } from './analytics.ts';

// Tables of migrations/0003_analytics.sql, owned by this feature alone.

/** A `bigint` counter (seconds, minor units): pg returns it as a string. */
type BigintColumn = MinorUnitsColumn;

export type AnalyticsHourlyTable = {
  outlet_id: string;
  hour: Date;
  currency: string | null;
  orders_placed: number;
  placed_value_minor: BigintColumn;
  orders_delivered: number;
  revenue_minor: BigintColumn;
  orders_cancelled: number;
  cancelled_value_minor: BigintColumn;
  prep_seconds_total: BigintColumn;
  prep_count: number;
  delivery_seconds_total: BigintColumn;
  delivery_count: number;
  updated_at: Date;
};

export type AnalyticsOrderStateTable = {
  order_id: string;
  outlet_id: string;
  currency: string | null;
  total_minor: ColumnType<string | null, number | null | undefined, number | null>;
  placed_at: Date;
  ready_at: Date | null;
  out_for_delivery_at: Date | null;
  delivered_at: Date | null;
  cancelled_at: Date | null;
  is_placement_counted: Generated<boolean>;
};

export type AnalyticsSchema = {
  'orders.analytics_hourly': AnalyticsHourlyTable;
  'orders.analytics_order_state': AnalyticsOrderStateTable;
  'orders.outlets': OutletsTable;
};

export type AnalyticsDb = Kysely<AnalyticsSchema>;

/** A piece of SQL to splice into a statement. */
type SqlFragment = ReturnType<typeof sql<unknown>>;

/** The times an order passes that the projection counts from; each is recorded once. */
export type OrderMilestone = 'ready_at' | 'out_for_delivery_at' | 'delivered_at' | 'cancelled_at';

/** What a counted event adds to an outlet's hour bucket, as the handler computed it from the event. */
export type BucketAddition = {
  outletId: string;
  hour: Date;
  currency: string | null;
  delta: HourlyDelta;
  updatedAt: Date;
};

/**
 * What a newly set milestone adds to its hour bucket: `delta` is what the
 * event itself tells; what only the projection remembers of the order is
 * read from its state row by the same statement.
 */
export type MilestoneAddition = Omit<BucketAddition, 'currency'> & {
  /** The bucket's currency; undefined: the order's remembered one (null when its placement was never seen). */
  currency?: string;
  /**
   * Also adds the order's remembered total (0 when unknown) to revenue and,
   * when it is known to have gone out for delivery, the seconds from then to
   * the milestone as one delivery time.
   */
  isDelivery?: boolean;
};

const COUNTER_COLUMNS = {
  ordersPlaced: 'orders_placed',
  placedValueMinor: 'placed_value_minor',
  ordersDelivered: 'orders_delivered',
  revenueMinor: 'revenue_minor',
  ordersCancelled: 'orders_cancelled',
  cancelledValueMinor: 'cancelled_value_minor',
  prepSecondsTotal: 'prep_seconds_total',
  prepCount: 'prep_count',
  deliverySecondsTotal: 'delivery_seconds_total',
  deliveryCount: 'delivery_count',
} as const satisfies Record<keyof Required<HourlyDelta>, keyof AnalyticsHourlyTable>;

type CounterColumn = (typeof COUNTER_COLUMNS)[keyof typeof COUNTER_COLUMNS];

const COUNTERS = Object.entries(COUNTER_COLUMNS) as [keyof HourlyDelta, CounterColumn][];

// Each statement below writes the order's state row in a CTE named `counted`
// that returns a row only when this call set what it records, and adds to the
// hour bucket once per row of `counted`: one round trip per event, and the
// set-once state row still keeps a replay that bypasses the inbox from
// counting anything twice.

/**
 * Remembers a placed order's total and, the first time only, counts the
 * placement in its hour bucket, in one statement.
 */
export async function recordPlacementIntoBucket(
  db: AnalyticsDb,
  order: { orderId: string; outletId: string; currency: string; totalMinor: number; placedAt: Date },
  bucket: BucketAddition,
): Promise<void> {
  await sql`
    with counted as (
      insert into orders.analytics_order_state as s (
        order_id, outlet_id, currency, total_minor, placed_at, is_placement_counted
      )
      values (
        ${order.orderId}::uuid, ${order.outletId}::uuid, ${order.currency}::char(3),
        ${order.totalMinor}::bigint, ${order.placedAt}::timestamptz, true
      )
      -- A row created by a later event (the projection started mid-order) still takes the total.
      on conflict (order_id) do update
        set currency = excluded.currency, total_minor = excluded.total_minor, is_placement_counted = true
        where s.is_placement_counted = false
      returning s.order_id
    )
    ${addToHourlyBucketPerCounted({
      ...bucket,
      currency: sql`${bucket.currency}::char(3)`,
      counters: givenCounters(bucket.delta),
    })}
  `.execute(db);
}

/**
 * Sets one milestone of an order if it is not set yet, creating the state
 * row if the projection has not seen the order, and only when this call set
 * it adds `bucket` to the milestone's hour bucket, in one statement.
 */
export async function recordMilestoneIntoBucket(
  db: AnalyticsDb,
  order: { orderId: string; outletId: string; placedAt: Date },
  milestone: OrderMilestone,
  at: Date,
  bucket: MilestoneAddition,
): Promise<void> {
  const counters = givenCounters(bucket.delta);
  if (bucket.isDelivery === true) {
    // The same rule as secondsBetween: whole seconds rounded half up, never
    // negative (JavaScript dates, so the times are whole milliseconds).
    const deliverySeconds = sql`greatest(0, floor(
      extract(epoch from ${at}::timestamptz - counted.out_for_delivery_at) + 0.5
    ))`;
    const isTimed = sql`counted.out_for_delivery_at is not null`;
    counters.revenue_minor = sql`${counters.revenue_minor} + coalesce(counted.total_minor, 0)`;
    counters.delivery_seconds_total = sql`(${counters.delivery_seconds_total} + case when ${isTimed} then ${deliverySeconds} else 0 end)::bigint`;
    counters.delivery_count = sql`${counters.delivery_count} + case when ${isTimed} then 1 else 0 end`;
  }
  await sql`
    with counted as (
      ${setMilestoneOnce(order, milestone, at)}
      returning s.currency, s.total_minor, s.out_for_delivery_at
    )
    ${addToHourlyBucketPerCounted({
      ...bucket,
      currency: bucket.currency === undefined ? sql`counted.currency` : sql`${bucket.currency}::char(3)`,
      counters,
    })}
  `.execute(db);
}

/** Sets one milestone of an order if it is not set yet; counts nothing. */
export async function recordMilestone(
  db: AnalyticsDb,
  order: { orderId: string; outletId: string; placedAt: Date },
  milestone: OrderMilestone,
  at: Date,
): Promise<void> {
  await setMilestoneOnce(order, milestone, at).execute(db);
}

function setMilestoneOnce(
  order: { orderId: string; outletId: string; placedAt: Date },
  milestone: OrderMilestone,
  at: Date,
): SqlFragment {
  return sql`
    insert into orders.analytics_order_state as s (order_id, outlet_id, placed_at, ${sql.ref(milestone)})
    values (${order.orderId}::uuid, ${order.outletId}::uuid, ${order.placedAt}::timestamptz, ${at}::timestamptz)
    on conflict (order_id) do update
      set ${sql.ref(milestone)} = ${sql.ref(`excluded.${milestone}`)}
      where ${sql.ref(`s.${milestone}`)} is null`;
}

/** Every counter as the parameter `delta` gives it, 0 when absent. */
function givenCounters(delta: HourlyDelta): Record<CounterColumn, SqlFragment> {
  const counters = {} as Record<CounterColumn, SqlFragment>;
  for (const [field, column] of COUNTERS) counters[column] = sql`${delta[field] ?? 0}::bigint`;
  return counters;
}

/**
 * Adds `counters` to the outlet's bucket once per row of the `counted` CTE
 * (none or one), as one upsert: concurrent events of different orders in the
 * same hour serialise on the row and both land. `currency` and `counters`
 * may refer to `counted`.
 */
function addToHourlyBucketPerCounted(bucket: {
  outletId: string;
  hour: Date;
  currency: SqlFragment;
  counters: Record<CounterColumn, SqlFragment>;
  updatedAt: Date;
}): SqlFragment {
  const columns = COUNTERS.map(([, column]) => column);
  return sql`
    insert into orders.analytics_hourly as h (
      outlet_id, hour, currency, ${sql.join(columns.map((column) => sql.ref(column)))}, updated_at
    )
    select ${bucket.outletId}::uuid, ${bucket.hour}::timestamptz, ${bucket.currency},
      ${sql.join(columns.map((column) => bucket.counters[column]))}, ${bucket.updatedAt}::timestamptz
    from counted
    on conflict (outlet_id, hour) do update set
      ${sql.join(
        columns.map(
          (column) => sql`${sql.ref(column)} = ${sql.ref(`h.${column}`)} + ${sql.ref(`excluded.${column}`)}`,
        ),
      )},
      currency = coalesce(h.currency, excluded.currency),
      updated_at = excluded.updated_at`;
}

export async function hasOutlet(db: AnalyticsDb, outletId: string): Promise<boolean> {
  const row = await db
    .selectFrom('orders.outlets')
    .select('id')
    .where('id', '=', outletId)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The rollup summed per report bucket (UTC hour or UTC day) and currency,
 * over the hours starting in [from, to), for one outlet or all of them.
 */
export async function findRollup(
  db: AnalyticsDb,
  query: { outletId: string | undefined; from: Date; to: Date; granularity: AnalyticsGranularity },
): Promise<RollupRow[]> {
  // `hour` is already an hour start, so hourly buckets are the rows themselves.
  const bucketStart =
    query.granularity === 'day'
      ? sql<Date>`date_trunc('day', hour at time zone 'UTC') at time zone 'UTC'`
      : sql<Date>`hour`;
  const sum = (column: CounterColumn) => sql<string>`sum(${sql.ref(column)})::bigint`;
  let select = db
    .selectFrom('orders.analytics_hourly')
    .select([
      bucketStart.as('bucket_start'),
      'currency',
      sum('orders_placed').as('orders_placed'),
      sum('placed_value_minor').as('placed_value_minor'),
      sum('orders_delivered').as('orders_delivered'),
      sum('revenue_minor').as('revenue_minor'),
      sum('orders_cancelled').as('orders_cancelled'),
      sum('cancelled_value_minor').as('cancelled_value_minor'),
      sum('prep_seconds_total').as('prep_seconds_total'),
      sum('prep_count').as('prep_count'),
      sum('delivery_seconds_total').as('delivery_seconds_total'),
      sum('delivery_count').as('delivery_count'),
    ])
    .where('hour', '>=', query.from)
    .where('hour', '<', query.to);
  if (query.outletId !== undefined) select = select.where('outlet_id', '=', query.outletId);
  const rows = await select.groupBy([sql`1`, 'currency']).orderBy(sql`1`).execute();
  return rows.map((row) => ({
    bucketStart: row.bucket_start,
    currency: row.currency,
    ordersPlaced: Number(row.orders_placed),
    placedValueMinor: Number(row.placed_value_minor),
    ordersDelivered: Number(row.orders_delivered),
    revenueMinor: Number(row.revenue_minor),
    ordersCancelled: Number(row.orders_cancelled),
    cancelledValueMinor: Number(row.cancelled_value_minor),
    prepSecondsTotal: Number(row.prep_seconds_total),
    prepCount: Number(row.prep_count),
    deliverySecondsTotal: Number(row.delivery_seconds_total),
    deliveryCount: Number(row.delivery_count),
  }));
}
