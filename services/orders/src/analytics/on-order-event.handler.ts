import {
  type EventEnvelope,
  type OrderCancelledPayload,
  OrderCancelledV1,
  type OrderPlacedPayload,
  OrderPlacedV1,
  type OrderStatusChangedPayload,
  OrderStatusChangedV1,
} from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import { assertNever } from '@keel/platform/errors';
import type { Clock } from '@keel/platform/module';
import type { Subscription } from '@keel/platform/outbox';
import {
  type AnalyticsDb,
  type AnalyticsSchema,
  recordMilestone,
  recordMilestoneIntoBucket,
  recordPlacementIntoBucket,
} from './analytics.repository.ts';
import { hourBucketOf, secondsBetween } from './analytics.ts';

export const ANALYTICS_SUBSCRIPTION_NAME = 'orders.analytics';

/**
 * The projection behind `getOrderAnalytics`. Ordered per order, so a
 * status change always finds what the placement recorded. The inbox makes
 * each event count once; the state table's set-once milestones make a replay
 * that bypasses the inbox (a rebuild, `handleEventOnce` from another
 * transport) count nothing a second time as well.
 */
export function createAnalyticsSubscription(deps: { clock: Clock }): Subscription {
  return {
    name: ANALYTICS_SUBSCRIPTION_NAME,
    eventTypes: [OrderPlacedV1.type, OrderStatusChangedV1.type, OrderCancelledV1.type],
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    // Every event of an outlet's hour updates one rollup row: parallel batches
    // would queue on (and deadlock over) those row locks, so one at a time.
    maxConcurrentBatches: 1,
    handler: (event, trx) =>
      projectOrderEvent(asPlatformTables<AnalyticsSchema>(trx), event, deps.clock.now()),
  };
}

async function projectOrderEvent(trx: AnalyticsDb, event: EventEnvelope, now: Date): Promise<void> {
  if (event.type === OrderPlacedV1.type) return projectPlaced(trx, OrderPlacedV1.parse(event).payload, now);
  if (event.type === OrderStatusChangedV1.type)
    return projectStatusChanged(trx, OrderStatusChangedV1.parse(event).payload, now);
  if (event.type === OrderCancelledV1.type)
    return projectCancelled(trx, OrderCancelledV1.parse(event).payload, now);
  // Only subscribed types are delivered; anything else is ignored, not failed.
}

async function projectPlaced(trx: AnalyticsDb, payload: OrderPlacedPayload, now: Date): Promise<void> {
  const placedAt = new Date(payload.placedAt);
  await recordPlacementIntoBucket(
    trx,
    {
      orderId: payload.orderId,
      outletId: payload.outletId,
      currency: payload.currency,
      totalMinor: payload.totalMinor,
      placedAt,
    },
    {
      outletId: payload.outletId,
      hour: hourBucketOf(placedAt),
      currency: payload.currency,
      delta: { ordersPlaced: 1, placedValueMinor: payload.totalMinor },
      updatedAt: now,
    },
  );
}

async function projectStatusChanged(
  trx: AnalyticsDb,
  payload: OrderStatusChangedPayload,
  now: Date,
): Promise<void> {
  const order = {
    orderId: payload.orderId,
    outletId: payload.outletId,
    placedAt: new Date(payload.placedAt),
  };
  const changedAt = new Date(payload.changedAt);
  const bucket = { outletId: payload.outletId, hour: hourBucketOf(changedAt), updatedAt: now };
  switch (payload.to) {
    case 'READY':
      // Counted in the order's remembered currency.
      return recordMilestoneIntoBucket(trx, order, 'ready_at', changedAt, {
        ...bucket,
        delta: { prepSecondsTotal: secondsBetween(order.placedAt, changedAt), prepCount: 1 },
      });
    case 'OUT_FOR_DELIVERY':
      // Only remembered: the delivery time is counted when the order arrives.
      return recordMilestone(trx, order, 'out_for_delivery_at', changedAt);
    case 'DELIVERED':
      // Revenue is the remembered total, unknown (0) only for orders placed
      // before the projection existed; the delivery time runs from the
      // remembered dispatch, when there was one. Both are read in the statement.
      return recordMilestoneIntoBucket(trx, order, 'delivered_at', changedAt, {
        ...bucket,
        delta: { ordersDelivered: 1 },
        isDelivery: true,
      });
    // Cancellations are counted from `order_cancelled`, which carries the total;
    // counting a status change to CANCELLED as well would count them twice.
    case 'CANCELLED':
    case 'PLACED':
    case 'CONFIRMED':
    case 'PREPARING':
      return;
    default:
      return assertNever(payload.to);
  }
}

async function projectCancelled(trx: AnalyticsDb, payload: OrderCancelledPayload, now: Date): Promise<void> {
  const cancelledAt = new Date(payload.cancelledAt);
  await recordMilestoneIntoBucket(
    trx,
    { orderId: payload.orderId, outletId: payload.outletId, placedAt: new Date(payload.placedAt) },
    'cancelled_at',
    cancelledAt,
    {
      outletId: payload.outletId,
      hour: hourBucketOf(cancelledAt),
      currency: payload.currency,
      delta: { ordersCancelled: 1, cancelledValueMinor: payload.totalMinor },
      updatedAt: now,
    },
  );
}
