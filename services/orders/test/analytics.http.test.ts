import { randomUUID } from 'node:crypto';
import {
  type EventDefinition,
  type EventEnvelope,
  OrderCancelledV1,
  type OrderPlacedPayload,
  OrderPlacedV1,
  type OrderStatus,
  OrderStatusChangedV1,
} from '@keel/contracts';
import { systemClock } from '@keel/platform/module';
import { emitEvent, handleEventOnce } from '@keel/platform/outbox';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import type { TSchema } from 'typebox';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAnalyticsSubscription } from '../src/analytics/on-order-event.handler.ts';
import { ordersModule } from '../src/index.ts';
import {
  createTestOutlet,
  type OrdersCaller,
  signInCustomer,
  signInOrdersAdmin,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

// The projection is fed with events emitted straight into the outbox, as the
// orders feature emits them: these tests depend on the contracts only.

const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });
const inject = (options: InjectOptions) => harness.testApp.app.inject(options);

// Payloads are checked against the contract by emitEvent at run time.
async function emit(
  definition: EventDefinition<string, TSchema>,
  payload: { orderId: string } & Record<string, unknown>,
  occurredAt: string,
): Promise<EventEnvelope> {
  return harness.testDb.database.typed<unknown>().transaction((trx) =>
    emitEvent(
      trx,
      {
        type: definition.type,
        aggregateType: 'order',
        aggregateId: payload.orderId,
        payload,
        occurredAt: new Date(occurredAt),
      },
      { definition },
    ),
  );
}

type TestOrder = {
  orderId: string;
  outletId: string;
  customerId: string;
  placedAt: string;
  version: number;
  placed: EventEnvelope;
};

async function placeOrder(outlet: TestOutlet, totalMinor: number, placedAt: string): Promise<TestOrder> {
  const order = {
    orderId: randomUUID(),
    outletId: outlet.id,
    customerId: randomUUID(),
    placedAt,
    version: 1,
  };
  const placed = await emit(
    OrderPlacedV1,
    {
      ...order,
      currency: outlet.currency,
      totalMinor,
      lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 1, unitPriceMinor: totalMinor }],
    } satisfies OrderPlacedPayload,
    placedAt,
  );
  return { ...order, placed };
}

async function changeStatus(order: TestOrder, from: OrderStatus, to: OrderStatus, changedAt: string) {
  order.version += 1;
  return emit(
    OrderStatusChangedV1,
    {
      orderId: order.orderId,
      outletId: order.outletId,
      customerId: order.customerId,
      from,
      to,
      version: order.version,
      placedAt: order.placedAt,
      changedAt,
      changedBy: randomUUID(),
    },
    changedAt,
  );
}

async function cancelOrder(order: TestOrder, totalMinor: number, currency: string, cancelledAt: string) {
  order.version += 1;
  return emit(
    OrderCancelledV1,
    {
      orderId: order.orderId,
      outletId: order.outletId,
      customerId: order.customerId,
      from: 'PLACED',
      version: order.version,
      cancelledBy: 'customer',
      reason: null,
      currency,
      totalMinor,
      releasedStock: [],
      placedAt: order.placedAt,
      cancelledAt,
    },
    cancelledAt,
  );
}

/** Walks an order from PLACED to DELIVERED at the given times; returns every event, the last one `DELIVERED`. */
async function deliver(
  order: TestOrder,
  times: { ready: string; out: string; delivered: string },
): Promise<EventEnvelope[]> {
  return [
    await changeStatus(order, 'PLACED', 'CONFIRMED', times.ready),
    await changeStatus(order, 'CONFIRMED', 'PREPARING', times.ready),
    await changeStatus(order, 'PREPARING', 'READY', times.ready),
    await changeStatus(order, 'READY', 'OUT_FOR_DELIVERY', times.out),
    await changeStatus(order, 'OUT_FOR_DELIVERY', 'DELIVERED', times.delivered),
  ];
}

/** Handles events again outside the inbox, as a rebuild or another transport would. */
async function handleBypassingInbox(events: readonly EventEnvelope[]): Promise<void> {
  const subscription = createAnalyticsSubscription({ clock: systemClock });
  for (const event of events) {
    await harness.testDb.database.typed<unknown>().transaction((trx) => subscription.handler(event, trx));
  }
}

/** Handles events outside the inbox through `handleBatch`, one call per batch. */
async function handleBatchesBypassingInbox(batches: readonly (readonly EventEnvelope[])[]): Promise<void> {
  const { handleBatch } = createAnalyticsSubscription({ clock: systemClock });
  if (handleBatch === undefined) throw new Error('the analytics subscription handles batches');
  for (const batch of batches) {
    await harness.testDb.database.typed<unknown>().transaction((trx) => handleBatch(batch, trx));
  }
}

function getAnalytics(caller: OrdersCaller | undefined, query: Record<string, string>) {
  return inject({
    method: 'GET',
    url: `/orders/analytics?${new URLSearchParams(query).toString()}`,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

const DAY = { from: '2030-03-01T00:00:00.000Z', to: '2030-03-02T00:00:00.000Z' };

let eur: TestOutlet;
let usd: TestOutlet;
let staff: OrdersCaller;
let admin: OrdersCaller;
let customer: OrdersCaller;
let delivered: EventEnvelope;

// Outlet EUR, 2030-03-01:
//   A 1000 placed 10:05, ready 10:20 (prep 900 s), out 10:30, delivered 10:50 (delivery 1200 s)
//   B  500 placed 10:10, ready 10:40 (prep 1800 s), out 10:45, delivered 11:05 (delivery 1200 s)
//   C  300 placed 10:15, cancelled 10:16
// Outlet USD: D 700 placed 10:30.
beforeAll(async () => {
  eur = await createTestOutlet(harness.testDb.database, { currency: 'EUR' });
  usd = await createTestOutlet(harness.testDb.database, { currency: 'USD' });
  staff = await signInStaff(harness.testApp, harness.testDb.database, [eur.id]);
  admin = await signInOrdersAdmin(harness.testApp);
  customer = await signInCustomer(harness.testApp);

  const a = await placeOrder(eur, 1000, '2030-03-01T10:05:00.000Z');
  const b = await placeOrder(eur, 500, '2030-03-01T10:10:00.000Z');
  const c = await placeOrder(eur, 300, '2030-03-01T10:15:00.000Z');
  await placeOrder(usd, 700, '2030-03-01T10:30:00.000Z');
  const events = await deliver(a, {
    ready: '2030-03-01T10:20:00.000Z',
    out: '2030-03-01T10:30:00.000Z',
    delivered: '2030-03-01T10:50:00.000Z',
  });
  delivered = events[events.length - 1] as EventEnvelope;
  await deliver(b, {
    ready: '2030-03-01T10:40:00.000Z',
    out: '2030-03-01T10:45:00.000Z',
    delivered: '2030-03-01T11:05:00.000Z',
  });
  await cancelOrder(c, 300, 'EUR', '2030-03-01T10:16:00.000Z');
  await harness.testApp.background.drainEvents();
});

const HOUR_10 = {
  start: '2030-03-01T10:00:00.000Z',
  orders_placed: 3,
  orders_delivered: 1,
  orders_cancelled: 1,
  revenue: [{ currency: 'EUR', placed_value_minor: 1800, revenue_minor: 1000, cancelled_value_minor: 300 }],
  prep_count: 2,
  delivery_count: 1,
  avg_prep_seconds: 1350,
  avg_delivery_seconds: 1200,
};
const HOUR_11 = {
  start: '2030-03-01T11:00:00.000Z',
  orders_placed: 0,
  orders_delivered: 1,
  orders_cancelled: 0,
  revenue: [{ currency: 'EUR', placed_value_minor: 0, revenue_minor: 500, cancelled_value_minor: 0 }],
  prep_count: 0,
  delivery_count: 1,
  avg_prep_seconds: null,
  avg_delivery_seconds: 1200,
};
const EUR_DAY_TOTALS = {
  orders_placed: 3,
  orders_delivered: 2,
  orders_cancelled: 1,
  revenue: [{ currency: 'EUR', placed_value_minor: 1800, revenue_minor: 1500, cancelled_value_minor: 300 }],
  prep_count: 2,
  delivery_count: 2,
  avg_prep_seconds: 1350,
  avg_delivery_seconds: 1200,
};

describe('getOrderAnalytics', () => {
  it('reports orders, revenue and average prep and delivery times per hour for a staff member’s outlet', async () => {
    const response = await getAnalytics(staff, { outlet_id: eur.id, ...DAY });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      outlet_id: eur.id,
      from: DAY.from,
      to: DAY.to,
      granularity: 'hour',
      buckets: [HOUR_10, HOUR_11],
      totals: EUR_DAY_TOTALS,
    });
  });

  it('adds hours up into UTC days, averaging from the totals', async () => {
    const response = await getAnalytics(staff, { outlet_id: eur.id, ...DAY, granularity: 'day' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().buckets).toEqual([{ start: DAY.from, ...EUR_DAY_TOTALS }]);
  });

  it('counts only hours that start within [from, to)', async () => {
    const response = await getAnalytics(staff, {
      outlet_id: eur.id,
      from: '2030-03-01T11:00:00.000Z',
      to: '2030-03-01T12:00:00.000Z',
    });
    expect(response.json().buckets).toEqual([HOUR_11]);
  });

  it('gives an admin every outlet when outlet_id is omitted, money kept apart per currency', async () => {
    const response = await getAnalytics(admin, DAY);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.outlet_id).toBeNull();
    expect(body.totals).toMatchObject({
      orders_placed: 4,
      orders_delivered: 2,
      revenue: [
        { currency: 'EUR', placed_value_minor: 1800, revenue_minor: 1500, cancelled_value_minor: 300 },
        { currency: 'USD', placed_value_minor: 700, revenue_minor: 0, cancelled_value_minor: 0 },
      ],
    });
    const usdOnly = await getAnalytics(admin, { outlet_id: usd.id, ...DAY });
    expect(usdOnly.json().totals).toMatchObject({ orders_placed: 1, orders_delivered: 0 });
  });

  it('does not count an event twice when it is delivered again', async () => {
    const subscription = createAnalyticsSubscription({ clock: systemClock });
    // Through the inbox: recognised as a duplicate and skipped.
    expect(await handleEventOnce(harness.testDb.database, subscription, delivered)).toBe(false);
    // Bypassing the inbox (a rebuild, another transport): the set-once state still holds.
    await harness.testDb.database.typed<unknown>().transaction((trx) => subscription.handler(delivered, trx));
    const response = await getAnalytics(staff, { outlet_id: eur.id, ...DAY });
    expect(response.json().totals).toEqual(EUR_DAY_TOTALS);
  });

  it('counts placements, milestones and cancellations once when every event is handled again bypassing the inbox', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, { currency: 'EUR' });
    // 2030-03-05: E 400 placed 09:05, ready 09:20 (prep 900 s), out 09:30, delivered 09:50
    // (delivery 1200.5 s, rounded up); F 250 placed 09:10, cancelled 09:15.
    const e = await placeOrder(outlet, 400, '2030-03-05T09:05:00.000Z');
    const f = await placeOrder(outlet, 250, '2030-03-05T09:10:00.000Z');
    const eEvents = await deliver(e, {
      ready: '2030-03-05T09:20:00.000Z',
      out: '2030-03-05T09:30:00.000Z',
      delivered: '2030-03-05T09:50:00.500Z',
    });
    const cancelled = await cancelOrder(f, 250, 'EUR', '2030-03-05T09:15:00.000Z');
    await harness.testApp.background.drainEvents();
    const day = { outlet_id: outlet.id, from: '2030-03-05T00:00:00.000Z', to: '2030-03-06T00:00:00.000Z' };
    const expected = {
      orders_placed: 2,
      orders_delivered: 1,
      orders_cancelled: 1,
      revenue: [{ currency: 'EUR', placed_value_minor: 650, revenue_minor: 400, cancelled_value_minor: 250 }],
      prep_count: 1,
      delivery_count: 1,
      avg_prep_seconds: 900,
      avg_delivery_seconds: 1201,
    };
    const before = await getAnalytics(admin, day);
    expect(before.json().totals).toEqual(expected);

    await handleBypassingInbox([e.placed, f.placed, ...eEvents, cancelled]);
    const after = await getAnalytics(admin, day);
    expect(after.json()).toEqual(before.json());
  });

  it('counts a placement that arrives after the order’s later events once, taking its total and currency', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, { currency: 'EUR' });
    // 2030-03-06: G 900 placed 08:55, its status changes seen first: ready 09:10, out 09:20, delivered 09:40.
    const g = await placeOrder(outlet, 900, '2030-03-06T08:55:00.000Z');
    const gEvents = await deliver(g, {
      ready: '2030-03-06T09:10:00.000Z',
      out: '2030-03-06T09:20:00.000Z',
      delivered: '2030-03-06T09:40:00.000Z',
    });
    // Status changes first (the projection started mid-order), then everything
    // through the inbox, placement first, then the placement once more.
    await handleBypassingInbox(gEvents);
    await harness.testApp.background.drainEvents();
    await handleBypassingInbox([g.placed]);
    const response = await getAnalytics(admin, {
      outlet_id: outlet.id,
      from: '2030-03-06T00:00:00.000Z',
      to: '2030-03-07T00:00:00.000Z',
    });
    expect(response.json().buckets).toEqual([
      {
        start: '2030-03-06T08:00:00.000Z',
        orders_placed: 1,
        orders_delivered: 0,
        orders_cancelled: 0,
        revenue: [{ currency: 'EUR', placed_value_minor: 900, revenue_minor: 0, cancelled_value_minor: 0 }],
        prep_count: 0,
        delivery_count: 0,
        avg_prep_seconds: null,
        avg_delivery_seconds: null,
      },
      // Delivered before the projection knew the total or currency: counted, no money.
      {
        start: '2030-03-06T09:00:00.000Z',
        orders_placed: 0,
        orders_delivered: 1,
        orders_cancelled: 0,
        revenue: [],
        prep_count: 1,
        delivery_count: 1,
        avg_prep_seconds: 900,
        avg_delivery_seconds: 1200,
      },
    ]);
  });

  it('projects batches of many orders’ events exactly as it projects them one at a time', async () => {
    // Six orders on 2030-03-08 with every kind of event, the rounding of a
    // half second, a delivery in the next hour, and one order whose status
    // changes arrive before its placement.
    async function history(outlet: TestOutlet): Promise<EventEnvelope[][]> {
      const perOrder: EventEnvelope[][] = [];
      for (let index = 0; index < 6; index += 1) {
        const minute = String(index * 5).padStart(2, '0');
        const order = await placeOrder(outlet, 100 * (index + 1), `2030-03-08T09:${minute}:00.000Z`);
        const events =
          index === 3
            ? [await cancelOrder(order, 400, 'EUR', '2030-03-08T09:50:00.000Z')]
            : await deliver(order, {
                ready: `2030-03-08T09:${minute}:30.000Z`,
                out: `2030-03-08T09:5${index}:00.000Z`,
                delivered: `2030-03-08T10:0${index}:00.500Z`,
              });
        perOrder.push(index === 5 ? [...events, order.placed] : [order.placed, ...events]);
      }
      return perOrder;
    }
    const oneByOne = await createTestOutlet(harness.testDb.database, { currency: 'EUR' });
    const batched = await createTestOutlet(harness.testDb.database, { currency: 'EUR' });
    const wholeHistories = await createTestOutlet(harness.testDb.database, { currency: 'EUR' });
    const [single, batches, whole] = [
      await history(oneByOne),
      await history(batched),
      await history(wholeHistories),
    ];

    await handleBypassingInbox(single.flat());
    // As the bus batches an ordered subscription: at most one event per order per batch.
    const rounds = Math.max(...batches.map((events) => events.length));
    await handleBatchesBypassingInbox(
      Array.from({ length: rounds }, (_, round) =>
        batches.flatMap((events) => (events[round] === undefined ? [] : [events[round]])),
      ),
    );
    // A caller's batch that names an order more than once.
    await handleBatchesBypassingInbox([whole.flat()]);

    const day = { from: '2030-03-08T00:00:00.000Z', to: '2030-03-09T00:00:00.000Z' };
    const expected = await getAnalytics(admin, { outlet_id: oneByOne.id, ...day });
    expect(expected.json().totals).toMatchObject({
      orders_placed: 6,
      orders_delivered: 5,
      orders_cancelled: 1,
    });
    for (const outlet of [batched, wholeHistories]) {
      const response = await getAnalytics(admin, { outlet_id: outlet.id, ...day });
      expect({ ...response.json(), outlet_id: oneByOne.id }).toEqual(expected.json());
    }
    // Delivered through the inbox as well: nothing counts twice.
    await harness.testApp.background.drainEvents();
    const after = await getAnalytics(admin, { outlet_id: batched.id, ...day });
    expect({ ...after.json(), outlet_id: oneByOne.id }).toEqual(expected.json());
  });

  it('answers 404 orders.outlet_not_found for an outlet the staff member does not work at, or that does not exist', async () => {
    for (const outletId of [usd.id, randomUUID()]) {
      const response = await getAnalytics(staff, { outlet_id: outletId, ...DAY });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'orders.outlet_not_found' });
    }
    const unknownForAdmin = await getAnalytics(admin, { outlet_id: randomUUID(), ...DAY });
    expect(unknownForAdmin.statusCode).toBe(404);
    expect(unknownForAdmin.json()).toMatchObject({ code: 'orders.outlet_not_found' });
  });

  it('requires outlet_id from staff with 400 orders.analytics_outlet_required', async () => {
    const response = await getAnalytics(staff, DAY);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'orders.analytics_outlet_required' });
  });

  it('refuses a customer with 403 and an anonymous caller with 401', async () => {
    const refused = await getAnalytics(customer, { outlet_id: eur.id, ...DAY });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'auth.forbidden' });
    expect((await getAnalytics(undefined, { outlet_id: eur.id, ...DAY })).statusCode).toBe(401);
  });

  it('answers 400 orders.analytics_invalid_range for a range over 31 days, empty or inverted', async () => {
    for (const range of [
      { from: '2030-03-01T00:00:00.000Z', to: '2030-04-01T00:00:01.000Z' },
      { from: DAY.from, to: DAY.from },
      { from: DAY.to, to: DAY.from },
    ]) {
      const response = await getAnalytics(staff, { outlet_id: eur.id, ...range });
      expect(response.statusCode, JSON.stringify(range)).toBe(400);
      expect(response.json()).toMatchObject({ code: 'orders.analytics_invalid_range' });
    }
  });

  it('answers 400 for a malformed query', async () => {
    const queries: Record<string, string>[] = [
      { outlet_id: eur.id, from: 'yesterday', to: DAY.to },
      { outlet_id: eur.id, ...DAY, granularity: 'week' },
      { outlet_id: 'not-a-uuid', ...DAY },
      { outlet_id: eur.id, to: DAY.to },
    ];
    for (const query of queries) {
      const response = await getAnalytics(staff, query);
      expect(response.statusCode, JSON.stringify(query)).toBe(400);
    }
  });
});
