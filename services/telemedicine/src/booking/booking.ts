import type { DoctorStatus, PaymentStatus, RefundReason, SlotStatus } from '../database.ts';

// The booking saga's records and the names of its background steps.

/** A slot as booking sees it, with what it needs of its doctor. */
export type BookableSlot = {
  id: string;
  doctorId: string;
  startsAt: Date;
  endsAt: Date;
  status: SlotStatus;
  doctorStatus: DoctorStatus;
  specialties: string[];
  feeMinor: number;
  currency: string;
};

export type LockedSlot = {
  id: string;
  doctorId: string;
  startsAt: Date;
  endsAt: Date;
  status: SlotStatus;
};

export type PaymentRecord = {
  id: string;
  consultationId: string;
  patientId: string;
  provider: string;
  providerIntentId: string | null;
  clientSecret: string | null;
  amountMinor: number;
  currency: string;
  status: PaymentStatus;
  refundedMinor: number;
  failureCode: string | null;
};

export type RefundStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';

export type RefundRecord = {
  id: string;
  paymentId: string;
  amountMinor: number;
  reason: RefundReason;
  status: RefundStatus;
  providerRefundId: string | null;
};

/** Payment states in which money may still arrive: an intent to cancel, a hold to expire. */
export const UNPAID_PAYMENT_STATUSES: readonly PaymentStatus[] = ['CREATING', 'REQUIRES_PAYMENT'];

// Background steps of the saga (pg-boss queues). Every one is idempotent:
// a job runs at least once, and a step that already happened is a no-op.
export const EXPIRE_HOLD_QUEUE = 'telemedicine.expire-hold';
export const SWEEP_EXPIRED_HOLDS_QUEUE = 'telemedicine.sweep-expired-holds';
export const CREATE_PAYMENT_INTENT_QUEUE = 'telemedicine.create-payment-intent';
export const CANCEL_PAYMENT_INTENT_QUEUE = 'telemedicine.cancel-payment-intent';
export const ISSUE_REFUND_QUEUE = 'telemedicine.issue-refund';

export type ExpireHoldJob = { consultationId: string };
export type CreatePaymentIntentJob = { paymentId: string };
export type CancelPaymentIntentJob = { paymentId: string; intentId: string };
export type IssueRefundJob = { refundId: string };

/** After a failed inline attempt, the job tries again this much later (then with its own backoff). */
export const CREATE_INTENT_RETRY_DELAY_SECONDS = 5;
/**
 * A payment still CREATING this long after its booking lost its inline
 * attempt and its retry job (the process died between commit and gateway):
 * the minute sweeper hands it to the intent job.
 */
export const STUCK_PAYMENT_AFTER_SECONDS = 30;
