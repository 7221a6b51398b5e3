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
  addToHourlyBucket,
  recordMilestone,
  recordPlacement,
} from './analytics.repository.ts';
import { type HourlyDelta, hourBucketOf, secondsBetween } from './analytics.ts';

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
  const isFirst = await recordPlacement(trx, {
    orderId: payload.orderId,
    outletId: payload.outletId,
    currency: payload.currency,
    totalMinor: payload.totalMinor,
    placedAt,
  });
  if (!isFirst) return;
  await addToHourlyBucket(trx, {
    outletId: payload.outletId,
    hour: hourBucketOf(placedAt),
    currency: payload.currency,
    delta: { ordersPlaced: 1, placedValueMinor: payload.totalMinor },
    updatedAt: now,
  });
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
  let delta: HourlyDelta;
  let currency: string | null;
  switch (payload.to) {
    case 'READY': {
      const state = await recordMilestone(trx, order, 'ready_at', changedAt);
      if (state === undefined) return;
      delta = { prepSecondsTotal: secondsBetween(order.placedAt, changedAt), prepCount: 1 };
      currency = state.currency;
      break;
    }
    case 'OUT_FOR_DELIVERY':
      // Only remembered: the delivery time is counted when the order arrives.
      await recordMilestone(trx, order, 'out_for_delivery_at', changedAt);
      return;
    case 'DELIVERED': {
      const state = await recordMilestone(trx, order, 'delivered_at', changedAt);
      if (state === undefined) return;
      delta = {
        ordersDelivered: 1,
        // Unknown (0) only for orders placed before the projection existed.
        revenueMinor: state.totalMinor ?? 0,
        ...(state.outForDeliveryAt === null
          ? {}
          : { deliverySecondsTotal: secondsBetween(state.outForDeliveryAt, changedAt), deliveryCount: 1 }),
      };
      currency = state.currency;
      break;
    }
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
  await addToHourlyBucket(trx, {
    outletId: payload.outletId,
    hour: hourBucketOf(changedAt),
    currency,
    delta,
    updatedAt: now,
  });
}

async function projectCancelled(trx: AnalyticsDb, payload: OrderCancelledPayload, now: Date): Promise<void> {
  const cancelledAt = new Date(payload.cancelledAt);
  const state = await recordMilestone(
    trx,
    { orderId: payload.orderId, outletId: payload.outletId, placedAt: new Date(payload.placedAt) },
    'cancelled_at',
    cancelledAt,
  );
  if (state === undefined) return;
  await addToHourlyBucket(trx, {
    outletId: payload.outletId,
    hour: hourBucketOf(cancelledAt),
    currency: payload.currency,
    delta: { ordersCancelled: 1, cancelledValueMinor: payload.totalMinor },
    updatedAt: now,
  });
}
