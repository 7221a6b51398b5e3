import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { TelemedicineDatabase } from '../database.ts';
import { EXPIRE_HOLD_QUEUE, type ExpireHoldJob } from './booking.ts';
import { expireConsultation, type SagaDependencies } from './booking-saga.ts';

export type ExpireHoldJobDependencies = SagaDependencies & { db: TelemedicineDatabase };

/**
 * Sent with the booking, due when its hold runs out: expires the booking if
 * it is still unpaid (booking-saga.ts, `expireConsultation`). A paid,
 * cancelled or already expired booking is left alone, so a late or repeated
 * run is harmless; one that runs early (clock skew) also changes nothing and
 * leaves the hold to the sweeper.
 */
export function createExpireHoldJob(deps: ExpireHoldJobDependencies): JobQueueDefinition<ExpireHoldJob> {
  return {
    name: EXPIRE_HOLD_QUEUE,
    retryLimit: 5,
    retryDelaySeconds: 5,
    retryBackoff: true,
    deadLetter: true,
    handler: async (job) => {
      await deps.db.transaction((trx) =>
        expireConsultation(trx, deps, { consultationId: job.data.consultationId, reason: 'hold_expired' }),
      );
    },
  };
}
