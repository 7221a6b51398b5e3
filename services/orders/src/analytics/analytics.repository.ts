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

/**
 * What one event tells the projection about its order: the order's identity
 * and placement time (so a state row can be created by whichever event
 * arrives first), and what it adds to the outlet's bucket of `hour`.
 */
export type OrderFact = {
  orderId: string;
  outletId: string;
  placedAt: Date;
  /** The start of the UTC hour the event counts in. */
  hour: Date;
  /** The bucket's currency; undefined: the order's remembered one (null when its placement was never seen). */
  currency?: string;
  delta: HourlyDelta;
};

/** A placement: remembered total and currency, counted once. */
export type PlacementFact = OrderFact & { currency: string; totalMinor: number };

/** A milestone the order passed at `at`, recorded once. */
export type MilestoneFact = OrderFact & { at: Date };

/**
 * What a newly set milestone adds to its bucket beyond `delta`: nothing
 * (`none`: only remembered), or (`delivery`) the order's remembered total
 * (0 when unknown) as revenue and, when it is known to have gone out for
 * delivery, the seconds from then to the milestone as one delivery time.
 */
export type MilestoneCounting = 'bucket' | 'delivery' | 'none';

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

// Each statement below takes a batch of facts as one jsonb parameter (`input`),
// writes the orders' state rows in a CTE named `counted` that returns a row
// only for the orders whose state this call set, and adds to each hour bucket
// once, summed over its counted facts: one round trip per batch, and the
// set-once state rows still keep a replay that bypasses the inbox from
// counting anything twice. A batch must name each order at most once (one
// statement cannot upsert a row twice); the handler sees to that.

/**
 * Remembers each placed order's total and, the first time only, counts the
 * placement in its hour bucket.
 */
export async function recordPlacements(
  db: AnalyticsDb,
  facts: readonly PlacementFact[],
  updatedAt: Date,
): Promise<void> {
  if (facts.length === 0) return;
  await sql`
    with ${factsInput(facts, [sql`total_minor bigint`])},
    counted as (
      insert into orders.analytics_order_state as s (
        order_id, outlet_id, currency, total_minor, placed_at, is_placement_counted
      )
      select order_id, outlet_id, currency, total_minor, placed_at, true from input
      -- Row locks in one order, whoever else projects concurrently.
      order by order_id
      -- A row created by a later event (the projection started mid-order) still takes the total.
      on conflict (order_id) do update
        set currency = excluded.currency, total_minor = excluded.total_minor, is_placement_counted = true
        where s.is_placement_counted = false
      returning s.order_id
    )
    ${addToHourlyBuckets({ currency: sql`i.currency`, counters: givenCounters(), updatedAt })}
  `.execute(db);
}

/**
 * Sets one milestone of each order if it is not set yet, creating the state
 * row where the projection has not seen the order, and only where this call
 * set it adds the fact to the milestone's hour bucket (see
 * `MilestoneCounting`).
 */
export async function recordMilestones(
  db: AnalyticsDb,
  milestone: OrderMilestone,
  facts: readonly MilestoneFact[],
  options: { counting: MilestoneCounting; updatedAt: Date },
): Promise<void> {
  if (facts.length === 0) return;
  const setOnce = sql`
    insert into orders.analytics_order_state as s (order_id, outlet_id, placed_at, ${sql.ref(milestone)})
    select order_id, outlet_id, placed_at, at from input
    order by order_id
    on conflict (order_id) do update
      set ${sql.ref(milestone)} = ${sql.ref(`excluded.${milestone}`)}
      where ${sql.ref(`s.${milestone}`)} is null`;
  const input = factsInput(facts, [sql`at timestamptz`]);
  if (options.counting === 'none') {
    await sql`with ${input} ${setOnce}`.execute(db);
    return;
  }
  const counters = givenCounters();
  if (options.counting === 'delivery') {
    // The same rule as secondsBetween: whole seconds rounded half up, never
    // negative (JavaScript dates, so the times are whole milliseconds).
    const deliverySeconds = sql`greatest(0, floor(extract(epoch from i.at - counted.out_for_delivery_at) + 0.5))`;
    const isTimed = sql`counted.out_for_delivery_at is not null`;
    counters.revenue_minor = sql`${counters.revenue_minor} + coalesce(counted.total_minor, 0)`;
    counters.delivery_seconds_total = sql`${counters.delivery_seconds_total} + case when ${isTimed} then ${deliverySeconds} else 0 end`;
    counters.delivery_count = sql`${counters.delivery_count} + case when ${isTimed} then 1 else 0 end`;
  }
  await sql`
    with ${input},
    counted as (
      ${setOnce}
      returning s.order_id, s.currency, s.total_minor, s.out_for_delivery_at
    )
    ${addToHourlyBuckets({
      // The fact's own currency, else the order's remembered one.
      currency: sql`coalesce(i.currency, counted.currency)`,
      counters,
      updatedAt: options.updatedAt,
    })}
  `.execute(db);
}

/** The facts as the rows of a CTE named `input`, `seq` giving their order in the batch. */
function factsInput(facts: readonly OrderFact[], extraColumns: SqlFragment[]): SqlFragment {
  const rows = facts.map((fact, seq) => {
    const row: Record<string, unknown> = {
      seq,
      order_id: fact.orderId,
      outlet_id: fact.outletId,
      placed_at: fact.placedAt,
      hour: fact.hour,
      currency: fact.currency ?? null,
      total_minor: (fact as Partial<PlacementFact>).totalMinor ?? null,
      at: (fact as Partial<MilestoneFact>).at ?? null,
    };
    for (const [field, column] of COUNTERS) row[column] = fact.delta[field] ?? 0;
    return row;
  });
  return sql`input as (
    select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(
      seq int, order_id uuid, outlet_id uuid, placed_at timestamptz, hour timestamptz, currency char(3),
      ${sql.join([...COUNTERS.map(([, column]) => sql`${sql.ref(column)} bigint`), ...extraColumns])}
    )
  )`;
}

/** Every counter as the facts give it: `i.<column>`. */
function givenCounters(): Record<CounterColumn, SqlFragment> {
  const counters = {} as Record<CounterColumn, SqlFragment>;
  for (const [, column] of COUNTERS) counters[column] = sql.ref(`i.${column}`);
  return counters;
}

/**
 * Adds, per outlet and hour, the sum of `counters` over the facts of `input`
 * (as `i`) whose order is in the `counted` CTE, as one upsert per bucket:
 * concurrent batches serialise on the bucket rows (taken in one order) and
 * all land. A new bucket takes the first non-null `currency` in batch order
 * and keeps it, as events applied one at a time would.
 */
function addToHourlyBuckets(bucket: {
  currency: SqlFragment;
  counters: Record<CounterColumn, SqlFragment>;
  updatedAt: Date;
}): SqlFragment {
  const columns = COUNTERS.map(([, column]) => column);
  return sql`
    insert into orders.analytics_hourly as h (
      outlet_id, hour, currency, ${sql.join(columns.map((column) => sql.ref(column)))}, updated_at
    )
    select i.outlet_id, i.hour,
      (array_agg(${bucket.currency} order by i.seq) filter (where ${bucket.currency} is not null))[1],
      ${sql.join(columns.map((column) => sql`sum(${bucket.counters[column]})::bigint`))},
      ${bucket.updatedAt}::timestamptz
    from counted
    join input i on i.order_id = counted.order_id
    group by i.outlet_id, i.hour
    order by i.outlet_id, i.hour
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
