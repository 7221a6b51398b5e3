import type { JobQueueDefinition } from '@keel/platform/jobs';
import { findOverdueHolds } from '../consultations/consultation.repository.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { SWEEP_EXPIRED_HOLDS_QUEUE } from './booking.ts';
import { expireConsultation, type SagaDependencies } from './booking-saga.ts';

export type SweepExpiredHoldsJobDependencies = SagaDependencies & { db: TelemedicineDatabase };

const BATCH_SIZE = 100;
// Bounds one run; whatever is left is the next minute's.
const MAX_BATCHES = 20;

/**
 * Expires every hold that ran out and that its own expiry job missed (lost
 * with a crashed worker, dead-lettered, or run early). One transaction per
 * consultation, so one stuck booking does not hold back the others.
 * Scheduled every minute; the queue admits one sweep at a time.
 */
export function createSweepExpiredHoldsJob(
  deps: SweepExpiredHoldsJobDependencies,
): JobQueueDefinition<object> {
  async function sweep(): Promise<number> {
    let expired = 0;
    for (let batch = 0; batch < MAX_BATCHES; batch += 1) {
      const now = deps.clock.now();
      const overdue = await deps.db.run((kysely) => findOverdueHolds(kysely, now, BATCH_SIZE));
      for (const consultationId of overdue) {
        const outcome = await deps.db.transaction((trx) =>
          expireConsultation(trx, deps, { consultationId, reason: 'hold_expired' }),
        );
        if (outcome !== undefined) expired += 1;
      }
      if (overdue.length < BATCH_SIZE) break;
    }
    return expired;
  }

  return {
    name: SWEEP_EXPIRED_HOLDS_QUEUE,
    policy: 'exclusive',
    retryLimit: 1,
    deadLetter: false,
    handler: async () => {
      const expired = await sweep();
      if (expired > 0) deps.logger.info({ expired }, 'expired overdue booking holds');
    },
  };
}
