import { assertNever, isAppError } from '@keel/platform/errors';
import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { TelemedicineDatabase } from '../database.ts';
import type { GatewayRefund, PaymentProvider } from '../payments/payment-provider.ts';
import { findPaymentById, findRefundById, updateRefundProviderId } from './booking.repository.ts';
import { ISSUE_REFUND_QUEUE, type IssueRefundJob } from './booking.ts';
import { type SagaDependencies, settleRefund } from './booking-saga.ts';

export type IssueRefundJobDependencies = SagaDependencies & {
  db: TelemedicineDatabase;
  provider: PaymentProvider;
};

/**
 * Asks the gateway for a filed refund, keyed by the refund id (a retry,
 * or a second run of this job, gets the first refund back, never a second
 * one), then settles it: at once when the gateway answers with the outcome,
 * or later through the refund webhook when it is still pending. Settling is
 * once-only however the job and the webhook interleave (`settleRefund`).
 */
export function createIssueRefundJob(deps: IssueRefundJobDependencies): JobQueueDefinition<IssueRefundJob> {
  return {
    name: ISSUE_REFUND_QUEUE,
    retryLimit: 8,
    retryDelaySeconds: 5,
    retryBackoff: true,
    retryDelayMaxSeconds: 600,
    deadLetter: true,
    handler: async (job) => {
      const refund = await deps.db.run((kysely) => findRefundById(kysely, job.data.refundId));
      if (refund === undefined || refund.status !== 'PENDING') return;
      const payment = await deps.db.run((kysely) => findPaymentById(kysely, refund.paymentId));
      if (payment?.providerIntentId == null) {
        throw new Error(`refund ${refund.id}: its payment has no intent to refund`);
      }
      let answer: GatewayRefund;
      try {
        answer = await deps.provider.refund({
          intentId: payment.providerIntentId,
          amountMinor: refund.amountMinor,
          idempotencyKey: refund.id,
          reason: refund.reason,
        });
      } catch (error) {
        if (!isAppError(error) || error.kind !== 'unprocessable') throw error;
        // A refusal will not change on retry: record it for an operator.
        await deps.db.transaction((trx) =>
          settleRefund(trx, deps, { refund, to: 'FAILED', providerRefundId: null }),
        );
        return;
      }
      await deps.db.transaction(async (trx) => {
        const status = answer.status;
        switch (status) {
          case 'succeeded':
            return settleRefund(trx, deps, { refund, to: 'SUCCEEDED', providerRefundId: answer.id });
          case 'failed':
            return settleRefund(trx, deps, { refund, to: 'FAILED', providerRefundId: answer.id });
          case 'pending':
            return updateRefundProviderId(trx, {
              id: refund.id,
              providerRefundId: answer.id,
              at: deps.clock.now(),
            });
          default:
            return assertNever(status);
        }
      });
    },
  };
}
