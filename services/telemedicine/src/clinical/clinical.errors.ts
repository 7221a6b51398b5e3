import { AppError } from '@keel/platform/errors';
import {
  invalidIfMatch as sharedInvalidIfMatch,
  versionMismatch as sharedVersionMismatch,
} from '../access/access.errors.ts';
import type { ConsultationStatus } from '../consultations/consultation.ts';

/** Every error code the clinical feature (lifecycle, notes, reminders) produces. */
export type ClinicalErrorCode =
  | 'telemedicine.invalid_transition'
  | 'telemedicine.too_early_to_start'
  | 'telemedicine.too_early_for_no_show'
  | 'telemedicine.precondition_required'
  | 'telemedicine.invalid_if_match'
  | 'telemedicine.version_mismatch'
  | 'telemedicine.notes_not_writable';

export function invalidTransition(from: ConsultationStatus, to: ConsultationStatus): AppError {
  return new AppError(
    'conflict',
    'telemedicine.invalid_transition' satisfies ClinicalErrorCode,
    `A consultation cannot go from ${from} to ${to}`,
    { extensions: { from, to } },
  );
}

export function tooEarlyToStart(startableAt: Date): AppError {
  return new AppError(
    'conflict',
    'telemedicine.too_early_to_start' satisfies ClinicalErrorCode,
    `The consultation can be started from ${startableAt.toISOString()}`,
    { extensions: { startable_at: startableAt.toISOString() } },
  );
}

export function tooEarlyForNoShow(markableAt: Date): AppError {
  return new AppError(
    'conflict',
    'telemedicine.too_early_for_no_show' satisfies ClinicalErrorCode,
    `The patient can be marked absent from ${markableAt.toISOString()}`,
    { extensions: { markable_at: markableAt.toISOString() } },
  );
}

// 428 Precondition Required is what RFC 6585 names for this; the platform's
// error kinds have no 428, so it is a 400 whose code says the same thing.
export function preconditionRequired(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.precondition_required' satisfies ClinicalErrorCode,
    'Send If-Match with the ETag of the consultation version you are changing',
    { errors: [{ pointer: '/headers/if-match', detail: 'is required' }] },
  );
}

export const invalidIfMatch = (): AppError => sharedInvalidIfMatch('consultation');

export const versionMismatch = (_expected: number | '*', current: number | null): AppError =>
  sharedVersionMismatch('consultation', current);

export function notesNotWritable(status: ConsultationStatus): AppError {
  return new AppError(
    'conflict',
    'telemedicine.notes_not_writable' satisfies ClinicalErrorCode,
    `Clinical notes are written once the consultation has started; it is ${status}`,
    { extensions: { status } },
  );
}
