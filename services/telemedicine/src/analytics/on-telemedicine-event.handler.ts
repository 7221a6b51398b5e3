import { asPlatformTables } from '@keel/platform/db';
import { assertNever } from '@keel/platform/errors';
import type { Subscription } from '@keel/platform/outbox';
import type { TelemedicineSchema } from '../database.ts';
import { addSlotsOffered, addToDailyRollup } from './analytics.repository.ts';
import { ANALYTICS_EVENT_TYPES, rollupChangeOf } from './rollup-change.ts';

export const ANALYTICS_SUBSCRIPTION_NAME = 'telemedicine.analytics';

/**
 * The projection behind `getTelemedicineAnalytics`: each event is one upsert
 * into `telemedicine.analytics_daily`. Counting each event exactly once is the
 * platform inbox's job (the handler runs in the transaction that records the
 * event as handled), so the upserts only ever add.
 */
export function createAnalyticsSubscription(): Subscription {
  return {
    name: ANALYTICS_SUBSCRIPTION_NAME,
    eventTypes: ANALYTICS_EVENT_TYPES,
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    // Every event of a doctor's day updates one rollup row: parallel batches
    // would queue on (and could deadlock over) those row locks, so one at a time.
    maxConcurrentBatches: 1,
    handler: async (event, trx) => {
      const db = asPlatformTables<TelemedicineSchema>(trx);
      const change = rollupChangeOf(event);
      switch (change.kind) {
        case 'counters':
          return addToDailyRollup(db, change.rows);
        case 'slots_offered':
          return addSlotsOffered(db, change.doctorId, change.offeredByDay);
        case 'none':
          return;
        default:
          return assertNever(change);
      }
    },
  };
}
