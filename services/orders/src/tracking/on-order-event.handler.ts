import { ORDER_EVENT_TYPES } from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import type { Subscription } from '@keel/platform/outbox';
import { appendFeedEntries, type TrackingSchema } from './tracking.repository.ts';
import { toFeedEntryInput } from './tracking.ts';

export const TRACKING_SUBSCRIPTION_NAME = 'orders.tracking';

/**
 * Projects every order event into the outlet's tracking feed. Ordered per
 * aggregate, so an order's entries take positions in emit order; different
 * orders of one outlet may be handled in parallel (other workers, other
 * processes) and serialise on the outlet's cursor row.
 *
 * Contention on a busy outlet's cursor is bounded by the dispatcher's batch:
 * the row stays locked until the batch commits. A whole batch is appended in
 * one statement that takes the cursors in outlet order; events handled one
 * at a time (a failed batch's isolated rerun) take them in event order, so
 * two such runs can deadlock. Postgres aborts one, its positions are given
 * back and the bus retries it (hence the generous `maxAttempts`).
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
      await appendFeedEntries(asPlatformTables<TrackingSchema>(trx), [toFeedEntryInput(event)]);
    },
    async handleBatch(events, trx) {
      await appendFeedEntries(asPlatformTables<TrackingSchema>(trx), events.map(toFeedEntryInput));
    },
  };
}
