import type { Principal } from '@keel/platform/http';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import type { PaymentStatus, RefundReason } from '../database.ts';

// The payment of a consultation as our API shows it, and who may see what.

export type PaymentRefund = {
  id: string;
  amountMinor: number;
  reason: RefundReason;
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
};

export type Payment = {
  id: string;
  consultationId: string;
  patientId: string;
  status: PaymentStatus;
  amountMinor: number;
  currency: string;
  refundedMinor: number;
  clientSecret: string | null;
  createdAt: Date;
  updatedAt: Date;
  refunds: PaymentRefund[];
};

/** The patient who pays, or operations staff (support, admins) who read every payment. */
export type PaymentViewer = 'patient' | 'operations';

/**
 * How the caller may see the payment, or null: the doctor and other patients
 * may not (a consultation's fee is between the patient and the platform).
 */
export function viewerOf(principal: Principal, payment: Pick<Payment, 'patientId'>): PaymentViewer | null {
  if (principal.kind === 'user' && principal.id === payment.patientId) return 'patient';
  if (principal.permissions.has(TELEMEDICINE_PERMISSIONS.readPayments)) return 'operations';
  return null;
}

/**
 * The client secret lets its holder pay: only the paying patient gets it,
 * and only while there is something to pay.
 */
export function isClientSecretVisible(viewer: PaymentViewer, payment: Pick<Payment, 'status'>): boolean {
  return viewer === 'patient' && payment.status === 'REQUIRES_PAYMENT';
}
