import type { ConsultationStatus } from '@keel/contracts';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '@keel/platform/http';
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

/** A consultation as stored: `reason` still encrypted. Only a participant's read decrypts it. */
export type ConsultationRecord = Omit<Consultation, 'reason'> & { encryptedReason: string | null };

/** Where a consultation can be cancelled from; the conditional update's status list. */
export const CANCELLABLE_STATUSES: readonly ConsultationStatus[] = ['PENDING_PAYMENT', 'SCHEDULED'];

export function isCancellable(status: ConsultationStatus): boolean {
  return CANCELLABLE_STATUSES.includes(status);
}

/** Its own URL, for `Location`. */
export function consultationLocation(id: string): string {
  return `/telemedicine/consultations/${id}`;
}

/** Keyset position in a list ordered by (starts_at desc, id desc). */
export type ConsultationCursor = { startsAt: string; id: string };

export function encodeCursor(cursor: ConsultationCursor): string {
  return encodeTimeIdCursor({ at: cursor.startsAt, id: cursor.id });
}

/** Undefined for anything `encodeCursor` did not produce. */
export function decodeCursor(value: string): ConsultationCursor | undefined {
  const cursor = decodeTimeIdCursor(value);
  return cursor === undefined ? undefined : { startsAt: cursor.at, id: cursor.id };
}
