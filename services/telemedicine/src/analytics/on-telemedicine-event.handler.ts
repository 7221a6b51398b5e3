import type { EventEnvelope } from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import { assertNever } from '@keel/platform/errors';
import type { Subscription } from '@keel/platform/outbox';
import type { TelemedicineDb, TelemedicineSchema } from '../database.ts';
import { addSlotsOffered, addToDailyRollup } from './analytics.repository.ts';
import { ANALYTICS_EVENT_TYPES, type DailyDelta, type RollupKey, rollupChangeOf } from './rollup-change.ts';

export const ANALYTICS_SUBSCRIPTION_NAME = 'telemedicine.analytics';

/**
 * The projection behind `getTelemedicineAnalytics`: each event adds to rows
 * of `telemedicine.analytics_daily`. Counting each event exactly once is the
 * platform inbox's job (the handler runs in the transaction that records the
 * event as handled), so the upserts only ever add, and sums commute: a whole
 * batch's counters are merged into one upsert.
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
    handler: (event, trx) => projectEvents(asPlatformTables<TelemedicineSchema>(trx), [event]),
    handleBatch: (events, trx) => projectEvents(asPlatformTables<TelemedicineSchema>(trx), events),
  };
}

/** One upsert for every counter change of the events, one more per slot materialisation. */
async function projectEvents(db: TelemedicineDb, events: readonly EventEnvelope[]): Promise<void> {
  const counters: { key: RollupKey; delta: DailyDelta }[] = [];
  const slotsOffered: { doctorId: string; offeredByDay: { day: string; count: number }[] }[] = [];
  for (const event of events) {
    const change = rollupChangeOf(event);
    switch (change.kind) {
      case 'counters':
        counters.push(...change.rows);
        break;
      case 'slots_offered':
        slotsOffered.push(change);
        break;
      case 'none':
        break;
      default:
        assertNever(change);
    }
  }
  await addToDailyRollup(db, counters);
  for (const { doctorId, offeredByDay } of slotsOffered) await addSlotsOffered(db, doctorId, offeredByDay);
}
