import { type Static, Type } from 'typebox';
import { defineEvent } from './envelope.ts';

// The orders service's public events. Every payload names the outlet and the
// customer, so consumers (the tracking feed, notifications, analytics,
// webhooks) never read the orders tables to route or scope an event.

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const MinorUnits = Type.Integer({ minimum: 0 });

export const ORDER_STATUSES = [
  'PLACED',
  'CONFIRMED',
  'PREPARING',
  'READY',
  'OUT_FOR_DELIVERY',
  'DELIVERED',
  'CANCELLED',
] as const;
// Spelled out: mapping over ORDER_STATUSES would widen the literals and type every status as `never`.
export const OrderStatusSchema = Type.Union([
  Type.Literal('PLACED'),
  Type.Literal('CONFIRMED'),
  Type.Literal('PREPARING'),
  Type.Literal('READY'),
  Type.Literal('OUT_FOR_DELIVERY'),
  Type.Literal('DELIVERED'),
  Type.Literal('CANCELLED'),
]);
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const OrderPlacedV1 = defineEvent(
  'orders.order_placed.v1',
  Type.Object({
    orderId: Uuid,
    outletId: Uuid,
    customerId: Uuid,
    version: Type.Integer({ minimum: 1 }),
    currency: Currency,
    totalMinor: MinorUnits,
    lines: Type.Array(
      Type.Object({
        menuItemId: Uuid,
        name: Type.String(),
        quantity: Type.Integer({ minimum: 1 }),
        unitPriceMinor: MinorUnits,
      }),
      { minItems: 1 },
    ),
    placedAt: Timestamp,
  }),
);
export type OrderPlacedPayload = Static<typeof OrderPlacedV1.payloadSchema>;

export const OrderStatusChangedV1 = defineEvent(
  'orders.order_status_changed.v1',
  Type.Object({
    orderId: Uuid,
    outletId: Uuid,
    customerId: Uuid,
    from: OrderStatusSchema,
    to: OrderStatusSchema,
    version: Type.Integer({ minimum: 1 }),
    /** Placement time, so projections compute durations without reading the order. */
    placedAt: Timestamp,
    changedAt: Timestamp,
    /** The account that made the change. */
    changedBy: Uuid,
  }),
);
export type OrderStatusChangedPayload = Static<typeof OrderStatusChangedV1.payloadSchema>;

export const OrderCancelledV1 = defineEvent(
  'orders.order_cancelled.v1',
  Type.Object({
    orderId: Uuid,
    outletId: Uuid,
    customerId: Uuid,
    from: OrderStatusSchema,
    version: Type.Integer({ minimum: 1 }),
    cancelledBy: Type.Union([Type.Literal('customer'), Type.Literal('staff')]),
    reason: Type.Union([Type.String(), Type.Null()]),
    currency: Currency,
    totalMinor: MinorUnits,
    /** The stock returned to the outlet by this cancellation. */
    releasedStock: Type.Array(Type.Object({ stockItemId: Uuid, quantity: Type.Integer({ minimum: 1 }) })),
    placedAt: Timestamp,
    cancelledAt: Timestamp,
  }),
);
export type OrderCancelledPayload = Static<typeof OrderCancelledV1.payloadSchema>;

export const InventoryLowStockV1 = defineEvent(
  'orders.inventory_low_stock.v1',
  Type.Object({
    stockItemId: Uuid,
    outletId: Uuid,
    sku: Type.String(),
    name: Type.String(),
    /** on hand − reserved, after the change that crossed the threshold. */
    available: Type.Integer(),
    threshold: Type.Integer({ minimum: 0 }),
    onHand: Type.Integer({ minimum: 0 }),
    reserved: Type.Integer({ minimum: 0 }),
    /** What crossed it: an order placement or a stock adjustment. */
    cause: Type.Union([Type.Literal('order_placed'), Type.Literal('adjustment')]),
    detectedAt: Timestamp,
  }),
);
export type InventoryLowStockPayload = Static<typeof InventoryLowStockV1.payloadSchema>;

/** Every event the orders service emits, for consumers that take them all (tracking, webhooks). */
export const ORDER_EVENT_TYPES = [
  OrderPlacedV1.type,
  OrderStatusChangedV1.type,
  OrderCancelledV1.type,
] as const;
