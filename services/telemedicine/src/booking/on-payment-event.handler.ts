import { ConsultationConfirmedV1 } from '@keel/contracts';
import { assertNever } from '@keel/platform/errors';
import { emitEvent } from '@keel/platform/outbox';
import { lockConsultation, updateConsultationScheduled } from '../consultations/consultation.repository.ts';
import type { ConsultationRecord } from '../consultations/consultation.ts';
import type { PaymentStatus } from '../database.ts';
import type { PaymentEventHandler, PaymentWebhookEvent } from '../payments/payment-provider.ts';
import {
  findPaymentById,
  findPaymentByIntent,
  findRefundOfPayment,
  updatePaymentStatus,
  updateSlotBooked,
} from './booking.repository.ts';
import type { PaymentRecord } from './booking.ts';
import {
  consultationFacts,
  emitPaymentSucceeded,
  expireConsultation,
  lateRefundReason,
  queueRefund,
  type SagaDependencies,
  type SagaTransaction,
  settleRefund,
} from './booking-saga.ts';

export type PaymentEventHandlerDependencies = SagaDependencies & { providerName: string };

/** A success may follow an earlier failed attempt, or arrive after we voided the intent: it wins over both. */
const SUCCEEDABLE: readonly PaymentStatus[] = ['CREATING', 'REQUIRES_PAYMENT', 'FAILED', 'CANCELLED'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Step 3 of the booking saga (booking-saga.ts): what the gateway's verdict
 * does to the booking. Runs in the webhook's deduplication transaction, so an
 * event applies once; events may still come out of order, so every branch
 * starts from the consultation's current state (locked) and never moves it
 * backwards. An event this service cannot place is logged and acknowledged:
 * throwing would only make the gateway redeliver it forever.
 */
export function createPaymentEventHandler(deps: PaymentEventHandlerDependencies): PaymentEventHandler {
  const { logger } = deps;

  async function onSucceeded(trx: SagaTransaction, payment: PaymentRecord, event: PaymentWebhookEvent) {
    const now = deps.clock.now();
    const consultation = await lockConsultation(trx, payment.consultationId);
    if (consultation === undefined) return;
    const status = consultation.status;
    switch (status) {
      case 'PENDING_PAYMENT': {
        const scheduled = await updateConsultationScheduled(trx, { id: consultation.id, at: now });
        if (scheduled === undefined) return;
        if (!(await updateSlotBooked(trx, { id: scheduled.slotId, from: ['HELD'] }))) {
          logger.error(
            { consultationId: scheduled.id, slotId: scheduled.slotId },
            'a paid hold’s slot was not HELD',
          );
        }
        const paid = await markSucceeded(trx, payment, event, now);
        await emitEvent(
          trx,
          {
            type: ConsultationConfirmedV1.type,
            aggregateType: 'consultation',
            aggregateId: scheduled.id,
            occurredAt: now,
            payload: { ...consultationFacts(scheduled), paymentId: payment.id },
          },
          { definition: ConsultationConfirmedV1 },
        );
        if (paid !== undefined) await emitPaymentSucceeded(trx, scheduled, paid, now);
        return;
      }
      case 'EXPIRED':
      case 'CANCELLED':
        return refundLatePayment(trx, consultation, payment, event, now);
      case 'SCHEDULED':
      case 'IN_PROGRESS':
      case 'COMPLETED':
      case 'NO_SHOW':
        // Already paid: a second success event for the same intent.
        return;
      default:
        return assertNever(status);
    }
  }

  /**
   * Compensation: the money arrived after the booking ended without it (the
   * hold ran out, the payment had failed, the patient cancelled). The slot
   * may be someone else's by now, so the booking is not revived: the payment
   * is recorded and refunded in full.
   */
  async function refundLatePayment(
    trx: SagaTransaction,
    consultation: ConsultationRecord,
    payment: PaymentRecord,
    event: PaymentWebhookEvent,
    now: Date,
  ) {
    const paid = await markSucceeded(trx, payment, event, now);
    if (paid === undefined) return;
    await emitPaymentSucceeded(trx, consultation, paid, now);
    await queueRefund(trx, deps, {
      paymentId: paid.id,
      amountMinor: paid.amountMinor - paid.refundedMinor,
      reason: lateRefundReason(),
    });
    logger.info(
      { consultationId: consultation.id, paymentId: paid.id },
      'refunding a payment that arrived late',
    );
  }

  function markSucceeded(
    trx: SagaTransaction,
    payment: PaymentRecord,
    event: PaymentWebhookEvent,
    now: Date,
  ) {
    return updatePaymentStatus(trx, {
      id: payment.id,
      from: SUCCEEDABLE,
      to: 'SUCCEEDED',
      failureCode: null,
      intentId: event.intentId,
      at: now,
    });
  }

  async function onFailed(trx: SagaTransaction, payment: PaymentRecord, event: PaymentWebhookEvent) {
    // expireConsultation leaves anything but PENDING_PAYMENT alone: a failure
    // of an earlier attempt that arrives after the success changes nothing.
    await expireConsultation(trx, deps, {
      consultationId: payment.consultationId,
      reason: 'payment_failed',
      failureCode: event.failureCode,
    });
  }

  async function onRefundSettled(trx: SagaTransaction, payment: PaymentRecord, event: PaymentWebhookEvent) {
    if (event.refundId === null) {
      logger.warn({ eventId: event.id, type: event.type }, 'refund event without a refund id; ignored');
      return;
    }
    const refund = await findRefundOfPayment(trx, payment.id, {
      id: event.refundId,
      amountMinor: event.amountMinor,
    });
    if (refund === undefined) {
      logger.warn(
        { eventId: event.id, paymentId: payment.id },
        'refund event for an unknown refund; ignored',
      );
      return;
    }
    await settleRefund(trx, deps, {
      refund,
      to: event.type === 'refund.succeeded' ? 'SUCCEEDED' : 'FAILED',
      providerRefundId: event.refundId,
    });
  }

  /**
   * The payment by its intent id; or, when the event overtook the recording
   * of the intent (created, then the response was lost), by the payment id
   * the intent carries in its metadata.
   */
  async function findPaymentOf(trx: SagaTransaction, event: PaymentWebhookEvent) {
    const byIntent = await findPaymentByIntent(trx, deps.providerName, event.intentId);
    if (byIntent !== undefined) return byIntent;
    const paymentId = event.metadata.payment_id;
    if (paymentId === undefined || !UUID.test(paymentId)) return undefined;
    const byMetadata = await findPaymentById(trx, paymentId);
    if (byMetadata === undefined || byMetadata.providerIntentId !== null) return undefined;
    return byMetadata.consultationId === event.metadata.consultation_id ? byMetadata : undefined;
  }

  return async (db, event) => {
    // The payments feature hands us its transaction as a plain Kysely handle.
    const trx = db as unknown as SagaTransaction;
    const payment = await findPaymentOf(trx, event);
    if (payment === undefined) {
      logger.warn({ eventId: event.id, type: event.type }, 'payment event for an unknown intent; ignored');
      return;
    }
    const type = event.type;
    switch (type) {
      case 'payment_intent.succeeded':
        return onSucceeded(trx, payment, event);
      case 'payment_intent.payment_failed':
        return onFailed(trx, payment, event);
      case 'payment_intent.canceled':
        // Only we cancel intents, and only after the booking already let go of them.
        return;
      case 'refund.succeeded':
      case 'refund.failed':
        return onRefundSettled(trx, payment, event);
      default:
        return assertNever(type);
    }
  };
}
