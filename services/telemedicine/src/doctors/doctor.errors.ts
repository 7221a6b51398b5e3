import { AppError } from '@keel/platform/errors';
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

export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_cursor' satisfies DoctorErrorCode,
    'The cursor is not one this API issued',
    { errors: [{ pointer: '/querystring/cursor', detail: 'is not a valid cursor' }] },
  );
}

export function invalidIfMatch(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_if_match' satisfies DoctorErrorCode,
    'If-Match must be one ETag of a profile version, e.g. "3", or *',
    { errors: [{ pointer: '/headers/if-match', detail: 'must be one ETag such as "3"' }] },
  );
}

/** `current` is null when the client sent If-Match for a profile that does not exist. */
export function versionMismatch(current: number | null): AppError {
  return new AppError(
    'precondition_failed',
    'telemedicine.version_mismatch' satisfies DoctorErrorCode,
    current === null
      ? 'If-Match names a profile version, but you have no profile yet'
      : `The profile changed (now version ${current}); fetch it again`,
    {
      extensions: { current_version: current },
      ...(current === null ? {} : { headers: { etag: `"${current}"` } }),
    },
  );
}
