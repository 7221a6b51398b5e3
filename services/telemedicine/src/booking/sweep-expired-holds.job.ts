import type { JobQueueDefinition } from '@keel/platform/jobs';
import { findOverdueHolds } from '../consultations/consultation.repository.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { findPaymentsAwaitingIntent } from './booking.repository.ts';
import {
  CREATE_PAYMENT_INTENT_QUEUE,
  type CreatePaymentIntentJob,
  STUCK_PAYMENT_AFTER_SECONDS,
  SWEEP_EXPIRED_HOLDS_QUEUE,
} from './booking.ts';
import { expireConsultation, type SagaDependencies } from './booking-saga.ts';

export type SweepExpiredHoldsJobDependencies = SagaDependencies & { db: TelemedicineDatabase };

const BATCH_SIZE = 100;
// Bounds one run; whatever is left is the next minute's.
const MAX_BATCHES = 20;

/**
 * The saga's safety net, every minute (the queue admits one sweep at a time):
 * - expires every hold that ran out and that its own expiry job missed (lost
 *   with a crashed worker, dead-lettered, or run early), one transaction per
 *   consultation, so one stuck booking does not hold back the others;
 * - hands every payment still without an intent STUCK_PAYMENT_AFTER_SECONDS
 *   after booking to the intent job (the booking's process died between its
 *   commit and the gateway, before it could enqueue a retry). The job's
 *   singleton key is the payment id, so a retry already queued is not doubled.
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

  async function resumeStuckPayments(): Promise<number> {
    const before = new Date(deps.clock.now().getTime() - STUCK_PAYMENT_AFTER_SECONDS * 1000);
    const stuck = await deps.db.run((kysely) => findPaymentsAwaitingIntent(kysely, before, BATCH_SIZE));
    for (const paymentId of stuck) {
      await deps.jobs.send(CREATE_PAYMENT_INTENT_QUEUE, { paymentId } satisfies CreatePaymentIntentJob, {
        singletonKey: paymentId,
      });
    }
    return stuck.length;
  }

  return {
    name: SWEEP_EXPIRED_HOLDS_QUEUE,
    policy: 'exclusive',
    retryLimit: 1,
    deadLetter: false,
    handler: async () => {
      const expired = await sweep();
      if (expired > 0) deps.logger.info({ expired }, 'expired overdue booking holds');
      const resumed = await resumeStuckPayments();
      if (resumed > 0) deps.logger.warn({ resumed }, 'payments without an intent handed to the intent job');
    },
  };
}
