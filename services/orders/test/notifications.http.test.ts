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
import type { Notification } from '@keel/platform/notifier';
import { emitEvent, handleEventOnce } from '@keel/platform/outbox';
import { useTestApp } from '@keel/platform/testing';
import type { TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import { createCustomerNotificationsSubscription } from '../src/notifications/on-order-event.handler.ts';

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

function place(order: TestOrder, totalMinor = 1248) {
  return emit(OrderPlacedV1, {
    ...order,
    currency: 'EUR',
    totalMinor,
    lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 1, unitPriceMinor: totalMinor }],
  } satisfies OrderPlacedPayload);
}

function changeStatus(order: TestOrder, from: OrderStatus, to: OrderStatus) {
  order.version += 1;
  return emit(OrderStatusChangedV1, {
    orderId: order.orderId,
    outletId: order.outletId,
    customerId: order.customerId,
    from,
    to,
    version: order.version,
    placedAt: order.placedAt,
    changedAt: new Date().toISOString(),
    changedBy: randomUUID(),
  });
}

function cancel(order: TestOrder) {
  order.version += 1;
  return emit(OrderCancelledV1, {
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
  });
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
