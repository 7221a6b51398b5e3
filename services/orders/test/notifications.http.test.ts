import { randomUUID } from 'node:crypto';
import {
  type EventDefinition,
  type EventEnvelope,
  type OrderCancelledPayload,
  OrderCancelledV1,
  type OrderPlacedPayload,
  OrderPlacedV1,
  type OrderStatus,
  type OrderStatusChangedPayload,
  OrderStatusChangedV1,
} from '@keel/contracts';
import type { AnyTransaction } from '@keel/platform/db';
import { systemClock } from '@keel/platform/module';
import type { Notification } from '@keel/platform/notifier';
import { emitEvent, handleEventOnce, type Subscription } from '@keel/platform/outbox';
import { useTestApp } from '@keel/platform/testing';
import type { TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import { createCustomerNotificationsSubscription } from '../src/notifications/on-order-event.handler.ts';
import { batchHandlerOf, countingStatements } from './fixtures.ts';

// Events are emitted straight into the outbox, as the orders feature emits
// them; the send-notification jobs run on the real queue (the test app's job
// workers run; only event dispatch is by hand, with drainEvents).

const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });

// Payloads are checked against the contract by emitEvent at run time.
async function emit(
  definition: EventDefinition<string, TSchema>,
  payload: { orderId: string } & Record<string, unknown>,
) {
  return harness.testDb.database
    .typed<unknown>()
    .transaction((trx) =>
      emitEvent(
        trx,
        { type: definition.type, aggregateType: 'order', aggregateId: payload.orderId, payload },
        { definition },
      ),
    );
}

type TestOrder = { orderId: string; outletId: string; customerId: string; placedAt: string; version: number };

function buildOrder(): TestOrder {
  return {
    orderId: randomUUID(),
    outletId: randomUUID(),
    customerId: randomUUID(),
    placedAt: new Date().toISOString(),
    version: 1,
  };
}

function placedPayload(order: TestOrder, totalMinor = 1248): OrderPlacedPayload {
  return {
    ...order,
    currency: 'EUR',
    totalMinor,
    lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 1, unitPriceMinor: totalMinor }],
  };
}

function statusChangedPayload(
  order: TestOrder,
  from: OrderStatus,
  to: OrderStatus,
): OrderStatusChangedPayload {
  order.version += 1;
  return {
    orderId: order.orderId,
    outletId: order.outletId,
    customerId: order.customerId,
    from,
    to,
    version: order.version,
    placedAt: order.placedAt,
    changedAt: new Date().toISOString(),
    changedBy: randomUUID(),
  };
}

function cancelledPayload(order: TestOrder): OrderCancelledPayload {
  order.version += 1;
  return {
    orderId: order.orderId,
    outletId: order.outletId,
    customerId: order.customerId,
    from: 'PLACED',
    version: order.version,
    cancelledBy: 'customer',
    reason: 'Changed my mind',
    currency: 'EUR',
    totalMinor: 899,
    releasedStock: [],
    placedAt: order.placedAt,
    cancelledAt: new Date().toISOString(),
  };
}

function place(order: TestOrder, totalMinor = 1248) {
  return emit(OrderPlacedV1, placedPayload(order, totalMinor));
}

function changeStatus(order: TestOrder, from: OrderStatus, to: OrderStatus) {
  return emit(OrderStatusChangedV1, statusChangedPayload(order, from, to));
}

function cancel(order: TestOrder) {
  return emit(OrderCancelledV1, cancelledPayload(order));
}

function sentTo(order: TestOrder): Notification[] {
  return harness.testApp.notifications.filter((notification) => notification.data.orderId === order.orderId);
}

/** Waits (bounded) until the order's customer got `count` notifications. */
async function waitForNotifications(order: TestOrder, count: number): Promise<Notification[]> {
  const deadline = Date.now() + 15_000;
  while (sentTo(order).length < count && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  return sentTo(order);
}

async function notificationRows(orderId: string) {
  const result = await harness.testDb.database.pool.query<{ template: string; sent_at: Date | null }>(
    'select template, sent_at from orders.customer_notifications where order_id = $1 order by created_at',
    [orderId],
  );
  return result.rows;
}

async function countSendJobs(eventId: string): Promise<number> {
  const result = await harness.testDb.database.pool.query<{ count: string }>(
    "select count(*) from pgboss.job where name = 'orders.send-notification' and data->>'eventId' = $1",
    [eventId],
  );
  return Number(result.rows[0]?.count);
}

describe('customer notifications', () => {
  it('tells the customer of the placement, confirmation, dispatch and delivery, nothing else', async () => {
    const order = buildOrder();
    await place(order);
    await changeStatus(order, 'PLACED', 'CONFIRMED');
    await changeStatus(order, 'CONFIRMED', 'PREPARING');
    await changeStatus(order, 'PREPARING', 'READY');
    await changeStatus(order, 'READY', 'OUT_FOR_DELIVERY');
    await changeStatus(order, 'OUT_FOR_DELIVERY', 'DELIVERED');
    await harness.testApp.background.drainEvents();

    const sent = await waitForNotifications(order, 4);
    const common = { orderId: order.orderId, outletId: order.outletId, totalMinor: 1248, currency: 'EUR' };
    const to = `account:${order.customerId}`;
    // Jobs run concurrently, so the order they arrive in is not asserted.
    expect(sent).toHaveLength(4);
    expect(sent).toEqual(
      expect.arrayContaining([
        { to, template: 'orders.order_placed', data: { ...common, status: 'PLACED' } },
        { to, template: 'orders.order_status_changed', data: { ...common, status: 'CONFIRMED' } },
        { to, template: 'orders.order_status_changed', data: { ...common, status: 'OUT_FOR_DELIVERY' } },
        { to, template: 'orders.order_status_changed', data: { ...common, status: 'DELIVERED' } },
      ]),
    );
    // Only these four were ever decided: PREPARING and READY recorded nothing to send.
    expect(await notificationRows(order.orderId)).toHaveLength(4);
  });

  it('tells the customer of a cancellation, without the reason', async () => {
    const order = buildOrder();
    await place(order, 899);
    await cancel(order);
    await harness.testApp.background.drainEvents();

    const sent = await waitForNotifications(order, 2);
    expect(sent.map((notification) => notification.template).sort()).toEqual([
      'orders.order_cancelled',
      'orders.order_placed',
    ]);
    expect(sent.find((notification) => notification.template === 'orders.order_cancelled')).toEqual({
      to: `account:${order.customerId}`,
      template: 'orders.order_cancelled',
      data: {
        orderId: order.orderId,
        outletId: order.outletId,
        status: 'CANCELLED',
        cancelledBy: 'customer',
        totalMinor: 899,
        currency: 'EUR',
      },
    });
  });

  it('sends once per event, however often the event is delivered', async () => {
    const order = buildOrder();
    const placed: EventEnvelope = await place(order);
    await harness.testApp.background.drainEvents();
    await waitForNotifications(order, 1);

    const subscription = createCustomerNotificationsSubscription({
      clock: systemClock,
      jobs: harness.testApp.background.registry.jobs,
    });
    // Again through the inbox: a duplicate, skipped.
    expect(await handleEventOnce(harness.testDb.database, subscription, placed)).toBe(false);
    // Bypassing the inbox: the event id keys the record, so no second job is enqueued.
    await harness.testDb.database.typed<unknown>().transaction((trx) => subscription.handler(placed, trx));

    // One job for the event, in pg-boss's own table, whatever ran above.
    expect(await countSendJobs(placed.id)).toBe(1);
    await changeStatus(order, 'PLACED', 'CONFIRMED');
    await harness.testApp.background.drainEvents();
    const sent = await waitForNotifications(order, 2);
    expect(sent.map((notification) => notification.data.status).sort()).toEqual(['CONFIRMED', 'PLACED']);
    const rows = await notificationRows(order.orderId);
    expect(rows.map((row) => row.template)).toEqual(['orders.order_placed', 'orders.order_status_changed']);
    expect(rows.every((row) => row.sent_at !== null)).toBe(true);
  });
});

// Both paths of the subscription, called directly (bypassing the inbox) on
// envelopes that never reach the outbox, so no drainEvents elsewhere sees them.

/** An event as the bus delivers it. */
function envelope(definition: EventDefinition<string, TSchema>, payload: { orderId: string }): EventEnvelope {
  return {
    id: randomUUID(),
    type: definition.type,
    aggregateType: 'order',
    aggregateId: payload.orderId,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
    payload,
  };
}

type Scenario = {
  batches: EventEnvelope[][];
  /** Event id to a name like `b out for delivery`. */
  eventNames: Map<string, string>;
  /** Order, outlet and customer ids to names like `b.order`. */
  idNames: Map<string, string>;
};

/**
 * Six fresh orders' events, in batches the bus could hand the subscription
 * (one event per order per batch; statuses that are told and one that is not;
 * an order never placed), then one batch with an order's placement and status
 * change together, as only a direct caller could hand it.
 */
function buildScenario(): Scenario {
  const orders = {
    a: buildOrder(),
    b: buildOrder(),
    c: buildOrder(),
    d: buildOrder(),
    e: buildOrder(),
    f: buildOrder(),
  };
  const eventNames = new Map<string, string>();
  const idNames = new Map<string, string>();
  for (const [letter, order] of Object.entries(orders)) {
    idNames.set(order.orderId, `${letter}.order`);
    idNames.set(order.outletId, `${letter}.outlet`);
    idNames.set(order.customerId, `${letter}.customer`);
  }
  const event = (
    name: string,
    definition: EventDefinition<string, TSchema>,
    payload: { orderId: string },
  ) => {
    const built = envelope(definition, payload);
    eventNames.set(built.id, name);
    return built;
  };
  const { a, b, c, d, e, f } = orders;
  const batches = [
    [
      event('a placed', OrderPlacedV1, placedPayload(a, 1248)),
      event('b placed', OrderPlacedV1, placedPayload(b, 2000)),
      event('c placed', OrderPlacedV1, placedPayload(c, 899)),
      event('d placed', OrderPlacedV1, placedPayload(d, 500)),
    ],
    [
      event('a confirmed', OrderStatusChangedV1, statusChangedPayload(a, 'PLACED', 'CONFIRMED')),
      event('b confirmed', OrderStatusChangedV1, statusChangedPayload(b, 'PLACED', 'CONFIRMED')),
      event('c cancelled', OrderCancelledV1, cancelledPayload(c)),
      event('d confirmed', OrderStatusChangedV1, statusChangedPayload(d, 'PLACED', 'CONFIRMED')),
      event('e confirmed', OrderStatusChangedV1, statusChangedPayload(e, 'PLACED', 'CONFIRMED')),
    ],
    [
      event('a preparing', OrderStatusChangedV1, statusChangedPayload(a, 'CONFIRMED', 'PREPARING')),
      event('b out for delivery', OrderStatusChangedV1, statusChangedPayload(b, 'READY', 'OUT_FOR_DELIVERY')),
      event('d delivered', OrderStatusChangedV1, statusChangedPayload(d, 'OUT_FOR_DELIVERY', 'DELIVERED')),
    ],
    [
      event('f placed', OrderPlacedV1, placedPayload(f, 750)),
      event('f confirmed', OrderStatusChangedV1, statusChangedPayload(f, 'PLACED', 'CONFIRMED')),
    ],
  ];
  return { batches, eventNames, idNames };
}

/** What the scenario must leave: one record and one job per told event, ids as names. */
function expectedEffects() {
  const told = (name: string, letter: string, template: string, data: Record<string, string | number>) => ({
    event: name,
    orderId: `${letter}.order`,
    customerId: `${letter}.customer`,
    template,
    data: { orderId: `${letter}.order`, outletId: `${letter}.outlet`, ...data },
  });
  const placed = (name: string, letter: string, totalMinor: number) =>
    told(name, letter, 'orders.order_placed', { status: 'PLACED', totalMinor, currency: 'EUR' });
  const changed = (name: string, letter: string, status: OrderStatus, totalMinor?: number) =>
    told(name, letter, 'orders.order_status_changed', {
      status,
      ...(totalMinor === undefined ? {} : { totalMinor, currency: 'EUR' }),
    });
  const notifications = [
    changed('a confirmed', 'a', 'CONFIRMED', 1248),
    placed('a placed', 'a', 1248),
    changed('b confirmed', 'b', 'CONFIRMED', 2000),
    changed('b out for delivery', 'b', 'OUT_FOR_DELIVERY', 2000),
    placed('b placed', 'b', 2000),
    told('c cancelled', 'c', 'orders.order_cancelled', {
      status: 'CANCELLED',
      cancelledBy: 'customer',
      totalMinor: 899,
      currency: 'EUR',
    }),
    placed('c placed', 'c', 899),
    changed('d confirmed', 'd', 'CONFIRMED', 500),
    changed('d delivered', 'd', 'DELIVERED', 500),
    placed('d placed', 'd', 500),
    // Never placed: nothing to repeat the total from.
    changed('e confirmed', 'e', 'CONFIRMED'),
    changed('f confirmed', 'f', 'CONFIRMED', 750),
    placed('f placed', 'f', 750),
  ];
  return {
    notifications,
    // 'a preparing' is not told: no record, no job.
    jobs: notifications.map((notification) => ({
      event: notification.event,
      retryLimit: 6,
      deadLetter: 'orders.send-notification.dead-letter',
    })),
  };
}

/** The scenario's records and send jobs as stored, ids replaced by names, sorted by event name. */
async function storedEffects(scenario: Scenario) {
  const eventIds = [...scenario.eventNames.keys()];
  const nameOf = (id: string) => scenario.idNames.get(id) ?? scenario.eventNames.get(id) ?? id;
  const byEvent = (left: { event: string }, right: { event: string }) =>
    left.event.localeCompare(right.event);
  const notifications = await harness.testDb.database.pool.query<{
    event_id: string;
    order_id: string;
    customer_id: string;
    template: string;
    data: Record<string, string | number>;
  }>(
    'select event_id, order_id, customer_id, template, data from orders.customer_notifications where event_id = any($1::uuid[])',
    [eventIds],
  );
  const jobs = await harness.testDb.database.pool.query<{
    event_id: string;
    retry_limit: number;
    dead_letter: string;
  }>(
    `select data->>'eventId' as event_id, retry_limit, dead_letter from pgboss.job
      where name = 'orders.send-notification' and data->>'eventId' = any($1::text[])`,
    [eventIds],
  );
  return {
    notifications: notifications.rows
      .map((row) => ({
        event: nameOf(row.event_id),
        orderId: nameOf(row.order_id),
        customerId: nameOf(row.customer_id),
        template: row.template,
        data: Object.fromEntries(
          Object.entries(row.data).map(([key, value]) => [
            key,
            typeof value === 'string' ? nameOf(value) : value,
          ]),
        ),
      }))
      .sort(byEvent),
    jobs: jobs.rows
      .map((row) => ({
        event: nameOf(row.event_id),
        retryLimit: row.retry_limit,
        deadLetter: row.dead_letter,
      }))
      .sort(byEvent),
  };
}

function buildSubscription(): Subscription {
  return createCustomerNotificationsSubscription({
    clock: systemClock,
    jobs: harness.testApp.background.registry.jobs,
  });
}

function inTransaction(work: (trx: AnyTransaction) => Promise<void>): Promise<void> {
  return harness.testDb.database.typed<unknown>().transaction(work);
}

describe('customer notifications, a batch at once and one event at a time', () => {
  it('records the same notifications and jobs through handleBatch as through handler event by event', async () => {
    const subscription = buildSubscription();
    const handleBatch = batchHandlerOf(subscription);
    const oneByOne = buildScenario();
    const batched = buildScenario();

    for (const batch of oneByOne.batches)
      await inTransaction(async (trx) => {
        for (const event of batch) await subscription.handler(event, trx);
      });
    for (const batch of batched.batches) await inTransaction((trx) => handleBatch(batch, trx));

    const expected = expectedEffects();
    expect(await storedEffects(oneByOne)).toEqual(expected);
    expect(await storedEffects(batched)).toEqual(expected);
  });

  it('handles a batch in three statements (totals, records, jobs), and one with nothing to tell in none', async () => {
    const handleBatch = batchHandlerOf(buildSubscription());
    const scenario = buildScenario();
    const [placements, statusChanges, laterChanges] = scenario.batches;
    await inTransaction((trx) => handleBatch(placements ?? [], trx));

    await inTransaction(async (trx) => {
      const counting = countingStatements(trx);
      await handleBatch(statusChanges ?? [], counting.trx);
      expect(counting.statements()).toBe(3);
    });
    const notTold = (laterChanges ?? []).filter(
      (event) => scenario.eventNames.get(event.id) === 'a preparing',
    );
    await inTransaction(async (trx) => {
      const counting = countingStatements(trx);
      await handleBatch(notTold, counting.trx);
      expect(counting.statements()).toBe(0);
    });
  });

  it('records no second notification and enqueues no second job when batches are handled again', async () => {
    const subscription = buildSubscription();
    const handleBatch = batchHandlerOf(subscription);
    const scenario = buildScenario();
    for (const batch of scenario.batches) await inTransaction((trx) => handleBatch(batch, trx));

    // Redelivered as batches, then one event at a time: the event ids key the records.
    for (const batch of scenario.batches) await inTransaction((trx) => handleBatch(batch, trx));
    await inTransaction(async (trx) => {
      for (const event of scenario.batches.flat()) await subscription.handler(event, trx);
    });

    expect(await storedEffects(scenario)).toEqual(expectedEffects());
  });
});
