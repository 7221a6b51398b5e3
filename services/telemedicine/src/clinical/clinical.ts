import { assertNever } from '@keel/platform/errors';
import type { ConsultationStatus } from '../consultations/consultation.ts';

/** The doctor's moves on a consultation; booking, expiry and cancellation belong to the booking saga. */
export type LifecycleAction = 'start' | 'complete' | 'no_show';

/** The consultation as the lifecycle sees it: logistics only, no reason or notes. */
export type ConsultationRecord = {
  id: string;
  patientId: string;
  doctorId: string;
  slotId: string;
  status: ConsultationStatus;
  startsAt: Date;
  endsAt: Date;
  feeMinor: number;
  currency: string;
  specialty: string;
  startedAt: Date | null;
  completedAt: Date | null;
  version: number;
  updatedAt: Date;
};

/** The clinical notes of a consultation, decrypted, with what decides who may read them. */
export type ClinicalNotes = {
  consultationId: string;
  patientId: string;
  doctorId: string;
  status: ConsultationStatus;
  notes: string | null;
  version: number;
  updatedAt: Date;
};

/** A doctor may open the call this long before the booked start (patients join early too). */
export const START_WINDOW_MINUTES = 15;
/** A patient is a no-show only once they are this late: a doctor cannot mark them absent at the start. */
export const NO_SHOW_GRACE_MINUTES = 10;

const MINUTE_MS = 60_000;

/** The status an action moves a consultation to. */
export function targetStatusOf(action: LifecycleAction): ConsultationStatus {
  switch (action) {
    case 'start':
      return 'IN_PROGRESS';
    case 'complete':
      return 'COMPLETED';
    case 'no_show':
      return 'NO_SHOW';
    default:
      return assertNever(action);
  }
}

/** The earliest moment the action is allowed for a consultation starting at `startsAt`, if the action has one. */
export function earliestMomentFor(action: LifecycleAction, startsAt: Date): Date | undefined {
  switch (action) {
    case 'start':
      return new Date(startsAt.getTime() - START_WINDOW_MINUTES * MINUTE_MS);
    case 'no_show':
      return new Date(startsAt.getTime() + NO_SHOW_GRACE_MINUTES * MINUTE_MS);
    case 'complete':
      return undefined;
    default:
      return assertNever(action);
  }
}

/**
 * Notes are written during the call and after it (a doctor finishes the write-up
 * once the patient has left); never before it starts, nor on a consultation
 * that did not take place.
 */
export const NOTES_WRITABLE_STATUSES: readonly ConsultationStatus[] = ['IN_PROGRESS', 'COMPLETED'];

export function isNotesWritable(status: ConsultationStatus): boolean {
  return NOTES_WRITABLE_STATUSES.includes(status);
}
