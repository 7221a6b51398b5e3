import type { ConsultationStatus } from '@keel/contracts';
import { AppError } from '@keel/platform/errors';

/**
 * Every error code the reviews feature produces (plus `consultation_not_found`
 * and `doctor_not_found` from access.errors.ts, and `invalid_cursor` from the
 * doctors' cursor codec).
 */
export type ReviewErrorCode = 'telemedicine.consultation_not_completed' | 'telemedicine.already_reviewed';

export function consultationNotCompleted(status: ConsultationStatus): AppError {
  return new AppError(
    'conflict',
    'telemedicine.consultation_not_completed' satisfies ReviewErrorCode,
    `Only a completed consultation can be reviewed (this one is ${status})`,
    { extensions: { status } },
  );
}

export function alreadyReviewed(): AppError {
  return new AppError(
    'conflict',
    'telemedicine.already_reviewed' satisfies ReviewErrorCode,
    'You have already reviewed this consultation',
  );
}
