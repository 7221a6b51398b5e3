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
  type MilestoneFact,
  type PlacementFact,
  recordMilestones,
  recordPlacements,
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
      projectOrderEvents(asPlatformTables<AnalyticsSchema>(trx), [event], deps.clock.now()),
    handleBatch: (events, trx) =>
      projectOrderEvents(asPlatformTables<AnalyticsSchema>(trx), events, deps.clock.now()),
  };
}

/** A batch's facts, sorted by what each records: one statement per kind present. */
type BatchFacts = {
  placements: PlacementFact[];
  ready: MilestoneFact[];
  outForDelivery: MilestoneFact[];
  delivered: MilestoneFact[];
  cancelled: MilestoneFact[];
};

/**
 * Projects events, one event and a whole batch alike. A batch of the bus
 * names each order at most once (the subscription is ordered per order), so
 * the kinds can be written one statement each: different orders' facts
 * commute (sums, and set-once milestones of different rows). Events that
 * name an order twice (a caller replaying an order's history) are projected
 * one at a time, in order, because one statement cannot write a row twice.
 */
async function projectOrderEvents(
  trx: AnalyticsDb,
  events: readonly EventEnvelope[],
  now: Date,
): Promise<void> {
  const orderIds = new Set(events.map((event) => event.aggregateId));
  if (orderIds.size < events.length) {
    for (const event of events) await projectOrderEvents(trx, [event], now);
    return;
  }
  const facts: BatchFacts = { placements: [], ready: [], outForDelivery: [], delivered: [], cancelled: [] };
  for (const event of events) collectFact(facts, event);
  await recordPlacements(trx, facts.placements, now);
  await recordMilestones(trx, 'ready_at', facts.ready, { counting: 'bucket', updatedAt: now });
  // Only remembered: the delivery time is counted when the order arrives.
  await recordMilestones(trx, 'out_for_delivery_at', facts.outForDelivery, {
    counting: 'none',
    updatedAt: now,
  });
  // Revenue is the remembered total, unknown (0) only for orders placed
  // before the projection existed; the delivery time runs from the
  // remembered dispatch, when there was one. Both are read in the statement.
  await recordMilestones(trx, 'delivered_at', facts.delivered, { counting: 'delivery', updatedAt: now });
  await recordMilestones(trx, 'cancelled_at', facts.cancelled, { counting: 'bucket', updatedAt: now });
}

/**
 * Adds what `event` records to `facts`. Parsing holds the event to its
 * contract: a mismatch throws EventValidationError, which dead-letters it.
 * Only subscribed types are delivered; anything else is ignored, not failed.
 */
function collectFact(facts: BatchFacts, event: EventEnvelope): void {
  if (event.type === OrderPlacedV1.type) collectPlaced(facts, OrderPlacedV1.parse(event).payload);
  else if (event.type === OrderStatusChangedV1.type)
    collectStatusChanged(facts, OrderStatusChangedV1.parse(event).payload);
  else if (event.type === OrderCancelledV1.type)
    collectCancelled(facts, OrderCancelledV1.parse(event).payload);
}

function collectPlaced(facts: BatchFacts, payload: OrderPlacedPayload): void {
  const placedAt = new Date(payload.placedAt);
  facts.placements.push({
    orderId: payload.orderId,
    outletId: payload.outletId,
    placedAt,
    hour: hourBucketOf(placedAt),
    currency: payload.currency,
    totalMinor: payload.totalMinor,
    delta: { ordersPlaced: 1, placedValueMinor: payload.totalMinor },
  });
}

function collectStatusChanged(facts: BatchFacts, payload: OrderStatusChangedPayload): void {
  const placedAt = new Date(payload.placedAt);
  const at = new Date(payload.changedAt);
  const fact = { orderId: payload.orderId, outletId: payload.outletId, placedAt, hour: hourBucketOf(at), at };
  switch (payload.to) {
    case 'READY':
      // Counted in the order's remembered currency.
      facts.ready.push({ ...fact, delta: { prepSecondsTotal: secondsBetween(placedAt, at), prepCount: 1 } });
      return;
    case 'OUT_FOR_DELIVERY':
      facts.outForDelivery.push({ ...fact, delta: {} });
      return;
    case 'DELIVERED':
      facts.delivered.push({ ...fact, delta: { ordersDelivered: 1 } });
      return;
    // Cancellations are counted from `order_cancelled`, which carries the total;
    // counting a status change to CANCELLED as well would count them twice.
    case 'CANCELLED':
    case 'PLACED':
    case 'CONFIRMED':
    case 'PREPARING':
      return;
    default:
      assertNever(payload.to);
  }
}

function collectCancelled(facts: BatchFacts, payload: OrderCancelledPayload): void {
  const at = new Date(payload.cancelledAt);
  facts.cancelled.push({
    orderId: payload.orderId,
    outletId: payload.outletId,
    placedAt: new Date(payload.placedAt),
    hour: hourBucketOf(at),
    at,
    currency: payload.currency,
    delta: { ordersCancelled: 1, cancelledValueMinor: payload.totalMinor },
  });
}
