import {
  ConsultationCancelledV1,
  ConsultationExpiredV1,
  PaymentSucceededV1,
  RefundIssuedV1,
} from '@keel/contracts';
import type { Transaction } from '@keel/platform/db';
import type { Clock, IdGenerator, JobSender } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import { emitEvent } from '@keel/platform/outbox';
import { refreshNextAvailableAt } from '../availability/slot.repository.ts';
import {
  findConsultationById,
  lockConsultation,
  updateConsultationExpired,
} from '../consultations/consultation.repository.ts';
import type { ConsultationRecord } from '../consultations/consultation.ts';
import type { CancelledBy, RefundReason, TelemedicineSchema } from '../database.ts';
import {
  findPaymentByConsultation,
  insertRefund,
  updatePaymentRefunded,
  updatePaymentStatus,
  updateRefundSettled,
  updateSlotReleased,
} from './booking.repository.ts';
import {
  CANCEL_PAYMENT_INTENT_QUEUE,
  type CancelPaymentIntentJob,
  ISSUE_REFUND_QUEUE,
  type IssueRefundJob,
  type PaymentRecord,
  type RefundRecord,
  UNPAID_PAYMENT_STATUSES,
} from './booking.ts';

// The booking saga. A booking spans our database and the payment gateway,
// which cannot share a transaction, so it is a sequence of local steps, each
// idempotent, each with its compensation:
//
//   1. Book (booking.service.ts): hold the slot, insert the consultation
//      (PENDING_PAYMENT), its payment (CREATING) and consents, and enqueue the
//      hold-expiry job and a fallback intent-creation job, in one transaction.
//   2. Create the payment intent at the gateway (inline after the commit; the
//      fallback job if that fails), keyed by the payment id so a retry gets
//      the same intent; record it (REQUIRES_PAYMENT).
//   3. The gateway's webhook decides (on-payment-event.handler.ts):
//      succeeded → SCHEDULED and the slot BOOKED; failed → EXPIRED and the
//      slot OPEN again.
//   Compensations: the hold runs out first → EXPIRED, slot OPEN, and the
//   intent is cancelled at the gateway (a job); money arrives for a
//   consultation that already expired or was cancelled → it is refunded in
//   full (a job). A cancellation releases the slot and refunds by policy.
//
// Every step below runs inside its caller's transaction, so its writes, its
// events and the jobs it enqueues commit together. Locks are taken in one
// order everywhere (consultation, then slots, then payment rows).

export type SagaTransaction = Transaction<TelemedicineSchema>;

export type SagaDependencies = {
  clock: Clock;
  ids: IdGenerator;
  jobs: JobSender;
  logger: Logger;
};

/** What every consultation event says about the consultation. */
export function consultationFacts(consultation: ConsultationRecord) {
  return {
    consultationId: consultation.id,
    patientId: consultation.patientId,
    doctorId: consultation.doctorId,
    slotId: consultation.slotId,
    specialty: consultation.specialty,
    startsAt: consultation.startsAt.toISOString(),
    endsAt: consultation.endsAt.toISOString(),
    feeMinor: consultation.feeMinor,
    currency: consultation.currency,
  };
}

/**
 * Expires a consultation still waiting for its payment: EXPIRED, its slot
 * OPEN again, its payment FAILED (the gateway said so) or CANCELLED (the hold
 * ran out: the intent is cancelled at the gateway too, so no money can
 * arrive for a slot we gave away; if some does anyway, the payment handler
 * refunds it). Only a hold that really ran out by `now` expires; anything no
 * longer pending is left alone. Undefined when nothing changed.
 */
export async function expireConsultation(
  trx: SagaTransaction,
  deps: SagaDependencies,
  expiry: { consultationId: string; reason: 'payment_failed' | 'hold_expired'; failureCode?: string | null },
): Promise<ConsultationRecord | undefined> {
  const now = deps.clock.now();
  const locked = await lockConsultation(trx, expiry.consultationId);
  if (locked === undefined || locked.status !== 'PENDING_PAYMENT') return undefined;
  if (expiry.reason === 'hold_expired' && (locked.holdExpiresAt === null || locked.holdExpiresAt > now)) {
    return undefined;
  }
  const expired = await updateConsultationExpired(trx, { id: locked.id, reason: expiry.reason, at: now });
  if (expired === undefined) return undefined;
  await updateSlotReleased(trx, expired.slotId);
  await refreshNextAvailableAt(trx, expired.doctorId, now);

  const payment = await findPaymentByConsultation(trx, expired.id);
  if (payment !== undefined) {
    const isFailed = expiry.reason === 'payment_failed';
    const settled = await updatePaymentStatus(trx, {
      id: payment.id,
      from: UNPAID_PAYMENT_STATUSES,
      to: isFailed ? 'FAILED' : 'CANCELLED',
      ...(isFailed ? { failureCode: expiry.failureCode ?? null } : {}),
      at: now,
    });
    if (!isFailed && settled?.providerIntentId != null) {
      await sendCancelIntent(trx, deps, { paymentId: settled.id, intentId: settled.providerIntentId });
    }
  }
  await emitEvent(
    trx,
    {
      type: ConsultationExpiredV1.type,
      aggregateType: 'consultation',
      aggregateId: expired.id,
      occurredAt: now,
      payload: { ...consultationFacts(expired), reason: expiry.reason },
    },
    { definition: ConsultationExpiredV1 },
  );
  return expired;
}

/** Compensation: void the intent at the gateway, after this transaction commits. */
export async function sendCancelIntent(
  trx: SagaTransaction,
  deps: SagaDependencies,
  job: CancelPaymentIntentJob,
): Promise<void> {
  await deps.jobs.sendWith(trx, CANCEL_PAYMENT_INTENT_QUEUE, job, { singletonKey: job.paymentId });
}

/**
 * Files a PENDING refund and enqueues the job that asks the gateway for it.
 * A payment is refunded at most once per reason (unique (payment_id,
 * reason)): a second request for the same reason returns undefined and
 * enqueues nothing.
 */
export async function queueRefund(
  trx: SagaTransaction,
  deps: SagaDependencies,
  refund: { paymentId: string; amountMinor: number; reason: RefundReason },
): Promise<string | undefined> {
  const refundId = deps.ids.uuid();
  const isFiled = await insertRefund(trx, { id: refundId, ...refund, at: deps.clock.now() });
  if (!isFiled) return undefined;
  await deps.jobs.sendWith(trx, ISSUE_REFUND_QUEUE, { refundId } satisfies IssueRefundJob, {
    singletonKey: refundId,
  });
  return refundId;
}

/**
 * The refund reason for money that arrives after its consultation ended
 * without it (expired, or cancelled while unpaid): always a full refund, filed
 * apart from cancellation refunds so reports can tell them apart.
 */
export function lateRefundReason(): RefundReason {
  return 'late_payment';
}

/**
 * Settles a refund from the gateway's answer (the refund job) or its
 * webhook, whichever comes first: the conditional update lets exactly one of
 * them apply the effects (the payment's refunded amount and
 * `refund_issued`); the other finds it settled and changes nothing.
 */
export async function settleRefund(
  trx: SagaTransaction,
  deps: SagaDependencies,
  settlement: { refund: RefundRecord; to: 'SUCCEEDED' | 'FAILED'; providerRefundId: string | null },
): Promise<void> {
  const now = deps.clock.now();
  const settled = await updateRefundSettled(trx, {
    id: settlement.refund.id,
    to: settlement.to,
    providerRefundId: settlement.providerRefundId,
    at: now,
  });
  if (settled === undefined) return;
  if (settled.status === 'FAILED') {
    // Nothing to undo on our side; the money is still with us and an operator must act.
    deps.logger.warn({ refundId: settled.id, paymentId: settled.paymentId }, 'the gateway failed a refund');
    return;
  }
  const payment = await updatePaymentRefunded(trx, {
    id: settled.paymentId,
    amountMinor: settled.amountMinor,
    at: now,
  });
  if (payment === undefined) throw new Error(`settleRefund: payment ${settled.paymentId} vanished`);
  const consultation = await findConsultationById(trx, payment.consultationId);
  if (consultation === undefined)
    throw new Error(`settleRefund: consultation ${payment.consultationId} vanished`);
  await emitEvent(
    trx,
    {
      type: RefundIssuedV1.type,
      aggregateType: 'consultation',
      aggregateId: consultation.id,
      occurredAt: now,
      payload: {
        refundId: settled.id,
        paymentId: payment.id,
        consultationId: consultation.id,
        doctorId: consultation.doctorId,
        specialty: consultation.specialty,
        amountMinor: settled.amountMinor,
        currency: payment.currency,
        reason: settled.reason,
        issuedAt: now.toISOString(),
      },
    },
    { definition: RefundIssuedV1 },
  );
}

export async function emitPaymentSucceeded(
  trx: SagaTransaction,
  consultation: ConsultationRecord,
  payment: PaymentRecord,
  at: Date,
): Promise<void> {
  await emitEvent(
    trx,
    {
      type: PaymentSucceededV1.type,
      aggregateType: 'consultation',
      aggregateId: consultation.id,
      occurredAt: at,
      payload: {
        paymentId: payment.id,
        consultationId: consultation.id,
        doctorId: consultation.doctorId,
        specialty: consultation.specialty,
        amountMinor: payment.amountMinor,
        currency: payment.currency,
        succeededAt: at.toISOString(),
      },
    },
    { definition: PaymentSucceededV1 },
  );
}

export async function emitConsultationCancelled(
  trx: SagaTransaction,
  consultation: ConsultationRecord,
  cancellation: { by: CancelledBy; refundMinor: number; at: Date },
): Promise<void> {
  await emitEvent(
    trx,
    {
      type: ConsultationCancelledV1.type,
      aggregateType: 'consultation',
      aggregateId: consultation.id,
      occurredAt: cancellation.at,
      payload: {
        ...consultationFacts(consultation),
        cancelledBy: cancellation.by,
        refundMinor: cancellation.refundMinor,
      },
    },
    { definition: ConsultationCancelledV1 },
  );
}
