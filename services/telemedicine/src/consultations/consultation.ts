import type { ConsultationStatus } from '@keel/contracts';
import type { CancelledBy } from '../database.ts';

export type { ConsultationStatus } from '@keel/contracts';

/**
 * A consultation as the services see it, decrypted. `reason` and
 * `clinicalNotes` are clinical content: only the two participants get them.
 */
export type Consultation = {
  id: string;
  patientId: string;
  doctorId: string;
  slotId: string;
  status: ConsultationStatus;
  startsAt: Date;
  endsAt: Date;
  holdExpiresAt: Date | null;
  feeMinor: number;
  currency: string;
  specialty: string;
  reason: string | null;
  consentVersion: string;
  consentedAt: Date;
  rescheduledFromSlotId: string | null;
  startedAt: Date | null;
  completedAt: Date | null;
  cancelledAt: Date | null;
  cancelledBy: CancelledBy | null;
  cancelReason: string | null;
  expiredReason: 'payment_failed' | 'hold_expired' | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
};

/**
 * The lifecycle. PENDING_PAYMENT → SCHEDULED (paid) or EXPIRED (payment failed,
 * hold ran out); SCHEDULED → IN_PROGRESS → COMPLETED; SCHEDULED → NO_SHOW;
 * CANCELLED from PENDING_PAYMENT or SCHEDULED. Terminal states have no moves.
 */
export const CONSULTATION_TRANSITIONS: Readonly<Record<ConsultationStatus, readonly ConsultationStatus[]>> = {
  PENDING_PAYMENT: ['SCHEDULED', 'EXPIRED', 'CANCELLED'],
  SCHEDULED: ['IN_PROGRESS', 'NO_SHOW', 'CANCELLED'],
  IN_PROGRESS: ['COMPLETED'],
  COMPLETED: [],
  CANCELLED: [],
  NO_SHOW: [],
  EXPIRED: [],
};

export function canTransition(from: ConsultationStatus, to: ConsultationStatus): boolean {
  return CONSULTATION_TRANSITIONS[from].includes(to);
}

/** States in which the consultation holds its slot (the partial unique index's list). */
export const SLOT_HOLDING_STATUSES: readonly ConsultationStatus[] = [
  'PENDING_PAYMENT',
  'SCHEDULED',
  'IN_PROGRESS',
  'COMPLETED',
  'NO_SHOW',
];
