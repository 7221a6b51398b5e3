import { AppError } from '@keel/platform/errors';
import {
  invalidIfMatch as sharedInvalidIfMatch,
  versionMismatch as sharedVersionMismatch,
} from '../access/access.errors.ts';

/** Every error code the patients feature produces. */
export type PatientErrorCode =
  | 'telemedicine.patient_profile_not_found'
  | 'telemedicine.invalid_date_of_birth'
  | 'telemedicine.invalid_if_match'
  | 'telemedicine.version_mismatch';

/** Missing, or not the caller's to see: the two must look the same. */
export function patientProfileNotFound(id?: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.patient_profile_not_found' satisfies PatientErrorCode,
    id === undefined ? 'You have no patient profile yet' : `No patient profile with id ${id}`,
  );
}

export function invalidDateOfBirth(reason: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_date_of_birth' satisfies PatientErrorCode,
    `date_of_birth ${reason}`,
    { errors: [{ pointer: '/body/date_of_birth', detail: reason }] },
  );
}

export const invalidIfMatch = (): AppError => sharedInvalidIfMatch('profile');

export const versionMismatch = (current: number | null): AppError =>
  sharedVersionMismatch('profile', current);
