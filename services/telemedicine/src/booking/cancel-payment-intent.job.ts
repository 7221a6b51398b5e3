import { isAppError } from '@keel/platform/errors';
import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { Logger } from '@keel/platform/observability';
import type { PaymentProvider } from '../payments/payment-provider.ts';
import { CANCEL_PAYMENT_INTENT_QUEUE, type CancelPaymentIntentJob } from './booking.ts';

export type CancelPaymentIntentJobDependencies = { provider: PaymentProvider; logger: Logger };

/**
 * Compensation for a booking that ended unpaid (hold expired, cancelled):
 * voids its intent so the patient can no longer pay for a slot we gave away.
 * Idempotent at the gateway (keyed by the payment). An intent the gateway
 * will not cancel (it succeeded meanwhile) is left: its success webhook
 * finds the booking ended and refunds the payment.
 */
export function createCancelPaymentIntentJob(
  deps: CancelPaymentIntentJobDependencies,
): JobQueueDefinition<CancelPaymentIntentJob> {
  return {
    name: CANCEL_PAYMENT_INTENT_QUEUE,
    retryLimit: 8,
    retryDelaySeconds: 5,
    retryBackoff: true,
    retryDelayMaxSeconds: 300,
    deadLetter: true,
    handler: async (job) => {
      try {
        await deps.provider.cancelIntent(job.data.intentId, {
          idempotencyKey: `cancel-${job.data.paymentId}`,
        });
      } catch (error) {
        if (!isAppError(error) || (error.kind !== 'unprocessable' && error.kind !== 'conflict')) throw error;
        deps.logger.info(
          { paymentId: job.data.paymentId, code: error.code },
          'the gateway would not cancel the intent; a late success is refunded by the payment handler',
        );
      }
    },
  };
}
