import {
  ConsultationBookedV1,
  ConsultationCancelledV1,
  ConsultationConfirmedV1,
  ConsultationExpiredV1,
  ConsultationRescheduledV1,
  DoctorProfileChangedV1,
  SlotsChangedV1,
} from '@keel/contracts';
import type { Subscription } from '@keel/platform/outbox';
import type { DoctorSearchCache } from './doctor-search.cache.ts';

/**
 * Every event after which a search may answer differently: a profile,
 * verification or rating change, and anything that opens or closes a slot
 * (materialisation, holds, expiries, cancellations, reschedules) and so moves
 * availability and `next_available_at`.
 */
export const DOCTOR_LISTING_EVENT_TYPES = [
  DoctorProfileChangedV1.type,
  SlotsChangedV1.type,
  ConsultationBookedV1.type,
  ConsultationExpiredV1.type,
  ConsultationCancelledV1.type,
  ConsultationRescheduledV1.type,
  ConsultationConfirmedV1.type,
] as const;

/**
 * Marks the whole search cache stale on each such event; the cache publishes
 * the mark (one generation bump) within its coalescing interval. Unordered:
 * setting a flag commutes. A failed mark is retried (`unavailable`), so once
 * Redis answers again no page cached before the event outlives the next
 * publish.
 */
export function createDoctorListingChangedSubscription(cache: DoctorSearchCache): Subscription {
  return {
    name: 'telemedicine.search-cache',
    eventTypes: DOCTOR_LISTING_EVENT_TYPES,
    isOrderedPerAggregate: false,
    maxAttempts: 10,
    handler: async () => {
      await cache.invalidate();
    },
    // One mark covers the whole batch.
    handleBatch: async () => {
      await cache.invalidate();
    },
  };
}
