import { ORDER_EVENT_TYPES } from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import type { Subscription } from '@keel/platform/outbox';
import { appendFeedEntry, type TrackingSchema } from './tracking.repository.ts';
import { toFeedEntryInput } from './tracking.ts';

export const TRACKING_SUBSCRIPTION_NAME = 'orders.tracking';

/**
 * Projects every order event into the outlet's tracking feed. Ordered per
 * aggregate, so an order's entries take positions in emit order; different
 * orders of one outlet may be handled in parallel (other workers, other
 * processes) and serialise on the outlet's cursor row.
 *
 * Contention on a busy outlet's cursor is bounded by the dispatcher's batch:
 * the row stays locked until the batch commits. Two batches that append to
 * the same two outlets in opposite order can deadlock; Postgres aborts one,
 * its savepoint gives the positions back and the bus retries it (hence the
 * generous `maxAttempts`).
 */
export function createTrackingSubscription(): Subscription {
  return {
    name: TRACKING_SUBSCRIPTION_NAME,
    eventTypes: ORDER_EVENT_TYPES,
    isOrderedPerAggregate: true,
    // A batch takes outlet cursor locks in event order; two batches at once
    // in one process would take them in different orders and deadlock.
    maxConcurrentBatches: 1,
    maxAttempts: 20,
    async handler(event, trx) {
      await appendFeedEntry(asPlatformTables<TrackingSchema>(trx), toFeedEntryInput(event));
    },
  };
}
