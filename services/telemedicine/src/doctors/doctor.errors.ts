import { AppError } from '@keel/platform/errors';
import {
  invalidCursor as sharedInvalidCursor,
  invalidIfMatch as sharedInvalidIfMatch,
  versionMismatch as sharedVersionMismatch,
} from '../access/access.errors.ts';
import type { DoctorStatus } from '../database.ts';

/** Every error code the doctors feature produces (plus `telemedicine.doctor_not_found` from access.errors.ts). */
export type DoctorErrorCode =
  | 'telemedicine.doctor_profile_not_found'
  | 'telemedicine.registration_number_taken'
  | 'telemedicine.doctor_already_verified'
  | 'telemedicine.doctor_already_suspended'
  | 'telemedicine.invalid_time_zone'
  | 'telemedicine.invalid_language'
  | 'telemedicine.invalid_currency'
  | 'telemedicine.invalid_cursor'
  | 'telemedicine.invalid_if_match'
  | 'telemedicine.version_mismatch';

/** The caller has not created their doctor profile yet. */
export function doctorProfileNotFound(): AppError {
  return new AppError(
    'not_found',
    'telemedicine.doctor_profile_not_found' satisfies DoctorErrorCode,
    'You have no doctor profile yet (PUT /telemedicine/doctors/me)',
  );
}

export function registrationNumberTaken(): AppError {
  return new AppError(
    'conflict',
    'telemedicine.registration_number_taken' satisfies DoctorErrorCode,
    'Another doctor profile has this registration number',
    { errors: [{ pointer: '/body/registration_number', detail: 'is already registered' }] },
  );
}

export function doctorAlreadyVerified(id: string): AppError {
  return new AppError(
    'conflict',
    'telemedicine.doctor_already_verified' satisfies DoctorErrorCode,
    `Doctor ${id} is already verified`,
    { extensions: { status: 'VERIFIED' satisfies DoctorStatus } },
  );
}

export function doctorAlreadySuspended(id: string): AppError {
  return new AppError(
    'conflict',
    'telemedicine.doctor_already_suspended' satisfies DoctorErrorCode,
    `Doctor ${id} is already suspended`,
    { extensions: { status: 'SUSPENDED' satisfies DoctorStatus } },
  );
}

export function invalidTimeZone(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_time_zone' satisfies DoctorErrorCode,
    'time_zone must be an IANA time zone such as Europe/Berlin',
    { errors: [{ pointer: '/body/time_zone', detail: 'is not a known IANA time zone' }] },
  );
}

export function invalidLanguages(indexes: number[]): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_language' satisfies DoctorErrorCode,
    'languages must be ISO 639-1 codes such as en or de',
    {
      errors: indexes.map((index) => ({
        pointer: `/body/languages/${index}`,
        detail: 'is not an ISO 639-1 language code',
      })),
    },
  );
}

export function invalidCurrency(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_currency' satisfies DoctorErrorCode,
    'currency must be an ISO 4217 code such as EUR',
    { errors: [{ pointer: '/body/currency', detail: 'is not an ISO 4217 currency code' }] },
  );
}

export const invalidCursor = sharedInvalidCursor;

export const invalidIfMatch = (): AppError => sharedInvalidIfMatch('profile');

export const versionMismatch = (current: number | null): AppError =>
  sharedVersionMismatch('profile', current);
