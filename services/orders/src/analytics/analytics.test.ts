import { describe, expect, it } from 'vitest';
import {
  describeRangeProblem,
  hourBucketOf,
  type RollupRow,
  secondsBetween,
  summariseRollup,
} from './analytics.ts';

function buildRow(overrides: Partial<RollupRow> = {}): RollupRow {
  return {
    bucketStart: new Date('2030-01-01T10:00:00Z'),
    currency: 'EUR',
    ordersPlaced: 0,
    placedValueMinor: 0,
    ordersDelivered: 0,
    revenueMinor: 0,
    ordersCancelled: 0,
    cancelledValueMinor: 0,
    prepSecondsTotal: 0,
    prepCount: 0,
    deliverySecondsTotal: 0,
    deliveryCount: 0,
    ...overrides,
  };
}

describe('hourBucketOf', () => {
  it('returns the start of the UTC hour', () => {
    expect(hourBucketOf(new Date('2030-01-01T10:59:59.999Z'))).toEqual(new Date('2030-01-01T10:00:00Z'));
    expect(hourBucketOf(new Date('2030-01-01T11:00:00Z'))).toEqual(new Date('2030-01-01T11:00:00Z'));
    expect(hourBucketOf(new Date('2030-01-01T12:30:00+02:00'))).toEqual(new Date('2030-01-01T10:00:00Z'));
  });
});

describe('secondsBetween', () => {
  it('counts whole seconds and never goes negative when clocks disagree', () => {
    expect(secondsBetween(new Date('2030-01-01T10:00:00Z'), new Date('2030-01-01T10:12:30.4Z'))).toBe(750);
    expect(secondsBetween(new Date('2030-01-01T10:00:05Z'), new Date('2030-01-01T10:00:00Z'))).toBe(0);
  });
});

describe('describeRangeProblem', () => {
  const from = new Date('2030-01-01T00:00:00Z');
  it('accepts up to 31 days', () => {
    expect(describeRangeProblem(from, new Date('2030-02-01T00:00:00Z'))).toBeUndefined();
  });
  it('refuses a longer range, an empty or inverted one, and invalid dates', () => {
    expect(describeRangeProblem(from, new Date('2030-02-01T00:00:01Z'))).toMatch(/31 days/);
    expect(describeRangeProblem(from, from)).toMatch(/before/);
    expect(describeRangeProblem(new Date('2030-01-02T00:00:00Z'), from)).toMatch(/before/);
    expect(describeRangeProblem(new Date('nope'), from)).toBeDefined();
  });
});

describe('summariseRollup', () => {
  it('adds currencies apart, orders buckets in time and averages from totals', () => {
    const ten = new Date('2030-01-01T10:00:00Z');
    const nine = new Date('2030-01-01T09:00:00Z');
    const summary = summariseRollup([
      buildRow({
        bucketStart: ten,
        currency: 'EUR',
        ordersPlaced: 2,
        placedValueMinor: 1000,
        prepSecondsTotal: 600,
        prepCount: 2,
      }),
      buildRow({
        bucketStart: ten,
        currency: 'USD',
        ordersPlaced: 1,
        placedValueMinor: 700,
        prepSecondsTotal: 100,
        prepCount: 1,
      }),
      buildRow({
        bucketStart: nine,
        currency: 'EUR',
        ordersDelivered: 1,
        revenueMinor: 500,
        deliverySecondsTotal: 900,
        deliveryCount: 1,
        ordersCancelled: 1,
        cancelledValueMinor: 250,
      }),
      // An order the projection never saw placed: counted, no money.
      buildRow({ bucketStart: nine, currency: null, ordersDelivered: 1 }),
    ]);
    expect(summary.buckets.map((bucket) => bucket.start)).toEqual([nine, ten]);
    expect(summary.buckets[1]).toMatchObject({
      ordersPlaced: 3,
      avgPrepSeconds: 233.3,
      avgDeliverySeconds: null,
      revenue: [
        { currency: 'EUR', placedValueMinor: 1000, revenueMinor: 0, cancelledValueMinor: 0 },
        { currency: 'USD', placedValueMinor: 700, revenueMinor: 0, cancelledValueMinor: 0 },
      ],
    });
    expect(summary.totals).toEqual({
      ordersPlaced: 3,
      ordersDelivered: 2,
      ordersCancelled: 1,
      revenue: [
        { currency: 'EUR', placedValueMinor: 1000, revenueMinor: 500, cancelledValueMinor: 250 },
        { currency: 'USD', placedValueMinor: 700, revenueMinor: 0, cancelledValueMinor: 0 },
      ],
      prepCount: 3,
      deliveryCount: 1,
      avgPrepSeconds: 233.3,
      avgDeliverySeconds: 900,
    });
  });

  it('returns no buckets and null averages for no rows', () => {
    expect(summariseRollup([])).toEqual({
      buckets: [],
      totals: {
        ordersPlaced: 0,
        ordersDelivered: 0,
        ordersCancelled: 0,
        revenue: [],
        prepCount: 0,
        deliveryCount: 0,
        avgPrepSeconds: null,
        avgDeliverySeconds: null,
      },
    });
  });
});
