import type { JobQueueDefinition } from '@keel/platform/jobs';
import { findConsultationById } from '../consultations/consultation.repository.ts';
import type { TelemedicineDatabase } from '../database.ts';
import type { PaymentProvider } from '../payments/payment-provider.ts';
import { findPaymentById, updatePaymentIntentRecorded } from './booking.repository.ts';
import { CREATE_PAYMENT_INTENT_QUEUE, type CreatePaymentIntentJob } from './booking.ts';
import { type SagaDependencies, sendCancelIntent } from './booking-saga.ts';

export type CreatePaymentIntentJobDependencies = SagaDependencies & {
  db: TelemedicineDatabase;
  provider: PaymentProvider;
};

/**
 * Step 2 of the saga when the inline attempt failed (the gateway was down,
 * or the process died after the booking committed): creates the intent if
 * the payment still has none and the booking still waits for it. The
 * gateway's idempotency key is the payment id, so this and the inline
 * attempt can never make two intents. A gateway outage is retried with
 * backoff; the hold expiry ends the booking if it never comes back.
 */
export function createCreatePaymentIntentJob(
  deps: CreatePaymentIntentJobDependencies,
): JobQueueDefinition<CreatePaymentIntentJob> {
  return {
    name: CREATE_PAYMENT_INTENT_QUEUE,
    // One queued or running job per payment (the singleton key): the minute
    // sweeper re-sends every payment still CREATING, and must not pile up
    // copies behind a retry that is already waiting.
    policy: 'exclusive',
    retryLimit: 6,
    retryDelaySeconds: 5,
    retryBackoff: true,
    retryDelayMaxSeconds: 120,
    deadLetter: true,
    handler: async (job) => {
      const payment = await deps.db.run((kysely) => findPaymentById(kysely, job.data.paymentId));
      if (payment === undefined || payment.status !== 'CREATING') return;
      const consultation = await deps.db.run((kysely) =>
        findConsultationById(kysely, payment.consultationId),
      );
      if (consultation?.status !== 'PENDING_PAYMENT') return;
      const intent = await deps.provider.createIntent({
        amountMinor: payment.amountMinor,
        currency: payment.currency,
        idempotencyKey: payment.id,
        metadata: { consultation_id: payment.consultationId, payment_id: payment.id },
      });
      await deps.db.transaction(async (trx) => {
        const recorded = await updatePaymentIntentRecorded(trx, {
          id: payment.id,
          intentId: intent.id,
          clientSecret: intent.clientSecret,
          at: deps.clock.now(),
        });
        if (recorded !== undefined && (recorded.status === 'CANCELLED' || recorded.status === 'FAILED')) {
          await sendCancelIntent(trx, deps, { paymentId: recorded.id, intentId: intent.id });
        }
      });
    },
  };
}
