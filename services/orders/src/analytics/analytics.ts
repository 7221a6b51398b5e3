// The analytics rollup's rules, free of I/O: hour buckets, durations, and how
// hourly rows add up into the buckets and totals `getOrderAnalytics` returns.

export const ANALYTICS_GRANULARITIES = ['hour', 'day'] as const;
export type AnalyticsGranularity = (typeof ANALYTICS_GRANULARITIES)[number];

/** The longest range one report may cover: 31 days of hourly buckets is 744 rows per outlet. */
export const ANALYTICS_MAX_RANGE_DAYS = 31;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The start of the UTC hour `time` falls in. */
export function hourBucketOf(time: Date): Date {
  return new Date(Math.floor(time.getTime() / HOUR_MS) * HOUR_MS);
}

/**
 * Whole seconds from `start` to `end`, never negative: the two times come
 * from different requests (maybe different hosts), and a skewed clock must
 * not subtract from a total.
 */
export function secondsBetween(start: Date, end: Date): number {
  return Math.max(0, Math.round((end.getTime() - start.getTime()) / 1000));
}

/** Why a requested range cannot be served, or undefined when it can. */
export function describeRangeProblem(from: Date, to: Date): string | undefined {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return 'from and to must be timestamps';
  if (from.getTime() >= to.getTime()) return 'from must be before to';
  if (to.getTime() - from.getTime() > ANALYTICS_MAX_RANGE_DAYS * DAY_MS)
    return `the range must not exceed ${ANALYTICS_MAX_RANGE_DAYS} days`;
  return undefined;
}

/** What one event adds to an hour bucket. Every counter only ever grows. */
export type HourlyDelta = {
  ordersPlaced?: number;
  placedValueMinor?: number;
  ordersDelivered?: number;
  revenueMinor?: number;
  ordersCancelled?: number;
  cancelledValueMinor?: number;
  prepSecondsTotal?: number;
  prepCount?: number;
  deliverySecondsTotal?: number;
  deliveryCount?: number;
};

/** The rollup summed per report bucket and currency, as the repository reads it. */
export type RollupRow = {
  bucketStart: Date;
  currency: string | null;
  ordersPlaced: number;
  placedValueMinor: number;
  ordersDelivered: number;
  revenueMinor: number;
  ordersCancelled: number;
  cancelledValueMinor: number;
  prepSecondsTotal: number;
  prepCount: number;
  deliverySecondsTotal: number;
  deliveryCount: number;
};

/** Money per currency: amounts of different currencies are never added together. */
export type CurrencyFigures = {
  currency: string;
  placedValueMinor: number;
  revenueMinor: number;
  cancelledValueMinor: number;
};

export type AnalyticsFigures = {
  ordersPlaced: number;
  ordersDelivered: number;
  ordersCancelled: number;
  revenue: CurrencyFigures[];
  prepCount: number;
  deliveryCount: number;
  /** Null when no order became ready in the bucket. */
  avgPrepSeconds: number | null;
  /** Null when no order was delivered after going out for delivery in the bucket. */
  avgDeliverySeconds: number | null;
};

export type AnalyticsBucket = AnalyticsFigures & { start: Date };

export type AnalyticsSummary = { buckets: AnalyticsBucket[]; totals: AnalyticsFigures };

type Accumulator = {
  ordersPlaced: number;
  ordersDelivered: number;
  ordersCancelled: number;
  revenue: Map<string, CurrencyFigures>;
  prepSecondsTotal: number;
  prepCount: number;
  deliverySecondsTotal: number;
  deliveryCount: number;
};

function emptyAccumulator(): Accumulator {
  return {
    ordersPlaced: 0,
    ordersDelivered: 0,
    ordersCancelled: 0,
    revenue: new Map(),
    prepSecondsTotal: 0,
    prepCount: 0,
    deliverySecondsTotal: 0,
    deliveryCount: 0,
  };
}

function add(into: Accumulator, row: RollupRow): void {
  into.ordersPlaced += row.ordersPlaced;
  into.ordersDelivered += row.ordersDelivered;
  into.ordersCancelled += row.ordersCancelled;
  into.prepSecondsTotal += row.prepSecondsTotal;
  into.prepCount += row.prepCount;
  into.deliverySecondsTotal += row.deliverySecondsTotal;
  into.deliveryCount += row.deliveryCount;
  // A null currency only counts orders whose totals the projection never saw.
  if (row.currency === null) return;
  const money = into.revenue.get(row.currency) ?? {
    currency: row.currency,
    placedValueMinor: 0,
    revenueMinor: 0,
    cancelledValueMinor: 0,
  };
  money.placedValueMinor += row.placedValueMinor;
  money.revenueMinor += row.revenueMinor;
  money.cancelledValueMinor += row.cancelledValueMinor;
  into.revenue.set(row.currency, money);
}

function average(total: number, count: number): number | null {
  return count === 0 ? null : Math.round((total / count) * 10) / 10;
}

function toFigures(accumulator: Accumulator): AnalyticsFigures {
  return {
    ordersPlaced: accumulator.ordersPlaced,
    ordersDelivered: accumulator.ordersDelivered,
    ordersCancelled: accumulator.ordersCancelled,
    revenue: [...accumulator.revenue.values()].sort((left, right) =>
      left.currency.localeCompare(right.currency),
    ),
    prepCount: accumulator.prepCount,
    deliveryCount: accumulator.deliveryCount,
    avgPrepSeconds: average(accumulator.prepSecondsTotal, accumulator.prepCount),
    avgDeliverySeconds: average(accumulator.deliverySecondsTotal, accumulator.deliveryCount),
  };
}

/**
 * Folds rollup rows (one per bucket and currency) into buckets in time order
 * and overall totals. Buckets without activity are absent, not zero-filled.
 * Averages are recomputed from the summed totals and counts, never averaged
 * from averages.
 */
export function summariseRollup(rows: readonly RollupRow[]): AnalyticsSummary {
  const byStart = new Map<number, Accumulator>();
  const totals = emptyAccumulator();
  for (const row of rows) {
    const key = row.bucketStart.getTime();
    const bucket = byStart.get(key) ?? emptyAccumulator();
    add(bucket, row);
    byStart.set(key, bucket);
    add(totals, row);
  }
  const buckets = [...byStart.entries()]
    .sort(([left], [right]) => left - right)
    .map(([start, accumulator]) => ({ start: new Date(start), ...toFigures(accumulator) }));
  return { buckets, totals: toFigures(totals) };
}
