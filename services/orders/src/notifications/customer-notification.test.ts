import { randomUUID } from 'node:crypto';
import type { EventEnvelope, OrderStatus } from '@keel/contracts';
import { describe, expect, it } from 'vitest';
import {
  addPlacedAmounts,
  type CustomerNotification,
  decideNotification,
  recipientOf,
} from './customer-notification.ts';

const orderId = randomUUID();
const outletId = randomUUID();
const customerId = randomUUID();
const placedAt = '2030-01-01T10:00:00.000Z';

function envelope(type: string, payload: unknown): EventEnvelope {
  return {
    id: randomUUID(),
    type,
    aggregateType: 'order',
    aggregateId: orderId,
    occurredAt: placedAt,
    schemaVersion: 1,
    payload,
  };
}

function statusChanged(to: OrderStatus): EventEnvelope {
  return envelope('orders.order_status_changed.v1', {
    orderId,
    outletId,
    customerId,
    from: 'PLACED',
    to,
    version: 2,
    placedAt,
    changedAt: placedAt,
    changedBy: randomUUID(),
  });
}

describe('decideNotification', () => {
  it('tells the customer an order was received, with its total', () => {
    const event = envelope('orders.order_placed.v1', {
      orderId,
      outletId,
      customerId,
      version: 1,
      currency: 'EUR',
      totalMinor: 1248,
      lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 1, unitPriceMinor: 1248 }],
      placedAt,
    });
    expect(decideNotification(event)).toEqual({
      eventId: event.id,
      orderId,
      customerId,
      template: 'orders.order_placed',
      data: { orderId, outletId, status: 'PLACED', totalMinor: 1248, currency: 'EUR' },
    });
  });

  it('tells them of CONFIRMED, OUT_FOR_DELIVERY and DELIVERED only', () => {
    for (const to of ['CONFIRMED', 'OUT_FOR_DELIVERY', 'DELIVERED'] as const) {
      expect(decideNotification(statusChanged(to))).toMatchObject({
        template: 'orders.order_status_changed',
        data: { orderId, outletId, status: to },
      });
    }
    for (const to of ['PREPARING', 'READY', 'CANCELLED'] as const) {
      expect(decideNotification(statusChanged(to))).toBeUndefined();
    }
  });

  it('tells them of a cancellation without the free-text reason', () => {
    const event = envelope('orders.order_cancelled.v1', {
      orderId,
      outletId,
      customerId,
      from: 'CONFIRMED',
      version: 3,
      cancelledBy: 'staff',
      reason: 'Out of buns, sorry Jane',
      currency: 'EUR',
      totalMinor: 899,
      releasedStock: [],
      placedAt,
      cancelledAt: placedAt,
    });
    const notification = decideNotification(event);
    expect(notification).toMatchObject({ template: 'orders.order_cancelled' });
    expect(notification?.data).toEqual({
      orderId,
      outletId,
      status: 'CANCELLED',
      cancelledBy: 'staff',
      totalMinor: 899,
      currency: 'EUR',
    });
  });

  it('throws the contract error for a malformed event of a known type', () => {
    expect(() => decideNotification(envelope('orders.order_placed.v1', { orderId }))).toThrow(
      expect.objectContaining({ code: 'events.invalid_envelope' }),
    );
  });

  it('ignores other event types', () => {
    expect(decideNotification(envelope('orders.inventory_low_stock.v1', {}))).toBeUndefined();
  });
});

describe('recipientOf', () => {
  it('addresses the account, for the notifier adapter to resolve', () => {
    expect(recipientOf(customerId)).toBe(`account:${customerId}`);
  });
});

describe('addPlacedAmounts', () => {
  function notification(
    order: string,
    template: CustomerNotification['template'],
    data: CustomerNotification['data'] = {},
  ): CustomerNotification {
    return { eventId: randomUUID(), orderId: order, customerId, template, data: { orderId: order, ...data } };
  }

  it('adds the stored total, else a placement earlier in the batch, to status messages only', () => {
    const [stored, earlier, later, none] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const batch = [
      notification(stored, 'orders.order_status_changed', { status: 'CONFIRMED' }),
      notification(earlier, 'orders.order_placed', { status: 'PLACED', totalMinor: 500, currency: 'EUR' }),
      notification(earlier, 'orders.order_status_changed', { status: 'CONFIRMED' }),
      // The one-event path would not have stored this placement yet when it reads the total.
      notification(later, 'orders.order_status_changed', { status: 'CONFIRMED' }),
      notification(later, 'orders.order_placed', { status: 'PLACED', totalMinor: 700, currency: 'EUR' }),
      notification(none, 'orders.order_cancelled', { status: 'CANCELLED' }),
    ];

    const withAmounts = addPlacedAmounts(batch, new Map([[stored, { totalMinor: 1248, currency: 'USD' }]]));

    expect(withAmounts.map((each) => each.data)).toEqual([
      { orderId: stored, status: 'CONFIRMED', totalMinor: 1248, currency: 'USD' },
      { orderId: earlier, status: 'PLACED', totalMinor: 500, currency: 'EUR' },
      { orderId: earlier, status: 'CONFIRMED', totalMinor: 500, currency: 'EUR' },
      { orderId: later, status: 'CONFIRMED' },
      { orderId: later, status: 'PLACED', totalMinor: 700, currency: 'EUR' },
      { orderId: none, status: 'CANCELLED' },
    ]);
  });
});
