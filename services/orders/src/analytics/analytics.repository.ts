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

/** The times an order passes that the projection counts from; each is recorded once. */
export type OrderMilestone = 'ready_at' | 'out_for_delivery_at' | 'delivered_at' | 'cancelled_at';

/** What the projection knows of an order when a milestone is first recorded. */
export type OrderStateAtMilestone = {
  currency: string | null;
  totalMinor: number | null;
  outForDeliveryAt: Date | null;
};

/**
 * Remembers a placed order's total. True only the first time for the order:
 * the caller counts the placement then and never again.
 */
export async function recordPlacement(
  db: AnalyticsDb,
  order: { orderId: string; outletId: string; currency: string; totalMinor: number; placedAt: Date },
): Promise<boolean> {
  const row = await db
    .insertInto('orders.analytics_order_state')
    .values({
      order_id: order.orderId,
      outlet_id: order.outletId,
      currency: order.currency,
      total_minor: order.totalMinor,
      placed_at: order.placedAt,
      is_placement_counted: true,
    })
    // A row created by a later event (the projection started mid-order) still takes the total.
    .onConflict((conflict) =>
      conflict
        .column('order_id')
        .doUpdateSet((eb) => ({
          currency: eb.ref('excluded.currency'),
          total_minor: eb.ref('excluded.total_minor'),
          is_placement_counted: true,
        }))
        .where('orders.analytics_order_state.is_placement_counted', '=', false),
    )
    .returning('order_id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Sets one milestone of an order if it is not set yet, creating the state
 * row if the projection has not seen the order. Returns the order's state
 * when this call set it, undefined when it was already set (a replay).
 */
export async function recordMilestone(
  db: AnalyticsDb,
  order: { orderId: string; outletId: string; placedAt: Date },
  milestone: OrderMilestone,
  at: Date,
): Promise<OrderStateAtMilestone | undefined> {
  const times: Record<OrderMilestone, Date | null> = {
    ready_at: null,
    out_for_delivery_at: null,
    delivered_at: null,
    cancelled_at: null,
  };
  times[milestone] = at;
  const row = await db
    .insertInto('orders.analytics_order_state')
    .values({ order_id: order.orderId, outlet_id: order.outletId, placed_at: order.placedAt, ...times })
    .onConflict((conflict) =>
      conflict
        .column('order_id')
        .doUpdateSet((eb) => ({ [milestone]: eb.ref(`excluded.${milestone}`) }))
        .where(`orders.analytics_order_state.${milestone}`, 'is', null),
    )
    .returning(['currency', 'total_minor', 'out_for_delivery_at'])
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    currency: row.currency,
    totalMinor: row.total_minor === null ? null : Number(row.total_minor),
    outForDeliveryAt: row.out_for_delivery_at,
  };
}

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

/**
 * Adds `delta` to the outlet's bucket in one upsert: concurrent events of
 * different orders in the same hour serialise on the row and both land.
 */
export async function addToHourlyBucket(
  db: AnalyticsDb,
  bucket: { outletId: string; hour: Date; currency: string | null; delta: HourlyDelta; updatedAt: Date },
): Promise<void> {
  const counters = {} as Record<CounterColumn, number>;
  for (const [field, column] of Object.entries(COUNTER_COLUMNS) as [keyof HourlyDelta, CounterColumn][]) {
    counters[column] = bucket.delta[field] ?? 0;
  }
  await db
    .insertInto('orders.analytics_hourly')
    .values({
      outlet_id: bucket.outletId,
      hour: bucket.hour,
      currency: bucket.currency,
      ...counters,
      updated_at: bucket.updatedAt,
    })
    .onConflict((conflict) =>
      conflict.columns(['outlet_id', 'hour']).doUpdateSet((eb) => {
        const sums = {} as Record<CounterColumn, ReturnType<typeof sql<number>>>;
        for (const column of Object.values(COUNTER_COLUMNS)) {
          sums[column] =
            sql<number>`${sql.ref(`analytics_hourly.${column}`)} + ${sql.ref(`excluded.${column}`)}`;
        }
        return {
          ...sums,
          currency: eb.fn.coalesce('orders.analytics_hourly.currency', 'excluded.currency'),
          updated_at: eb.ref('excluded.updated_at'),
        };
      }),
    )
    .execute();
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
