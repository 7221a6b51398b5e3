import { AppError } from '@keel/platform/errors';

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

export function invalidIfMatch(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_if_match' satisfies PatientErrorCode,
    'If-Match must be one ETag of a profile version, e.g. "3", or *',
    { errors: [{ pointer: '/headers/if-match', detail: 'must be one ETag such as "3"' }] },
  );
}

/** `current` is null when the client sent If-Match for a profile that does not exist. */
export function versionMismatch(current: number | null): AppError {
  return new AppError(
    'precondition_failed',
    'telemedicine.version_mismatch' satisfies PatientErrorCode,
    current === null
      ? 'If-Match names a profile version, but you have no profile yet'
      : `The profile changed (now version ${current}); fetch it again`,
    {
      extensions: { current_version: current },
      ...(current === null ? {} : { headers: { etag: `"${current}"` } }),
    },
  );
}
