import { AppError } from '@keel/platform/errors';

/** Error codes every telemedicine feature shares: lookups, cursors and versions. */
export type AccessErrorCode =
  | 'telemedicine.invalid_cursor'
  | 'telemedicine.invalid_if_match'
  | 'telemedicine.version_mismatch'
  | 'telemedicine.consultation_not_found'
  | 'telemedicine.patient_profile_required'
  | 'telemedicine.doctor_not_found';

/** Missing, or not the caller's to see: the two must look the same. */
export function consultationNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.consultation_not_found' satisfies AccessErrorCode,
    `No consultation with id ${id}`,
  );
}

/** Booking, reviews and exports need the caller's patient profile first. */
export function patientProfileRequired(): AppError {
  return new AppError(
    'unprocessable',
    'telemedicine.patient_profile_required' satisfies AccessErrorCode,
    'Create your patient profile first (PUT /telemedicine/patients/me)',
  );
}

/** Unknown, or not verified (only verified doctors are public). */
export function doctorNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.doctor_not_found' satisfies AccessErrorCode,
    `No doctor with id ${id}`,
  );
}

/** A cursor this API did not issue (or one of another list). */
export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_cursor' satisfies AccessErrorCode,
    'The cursor is not one this API issued; start again without a cursor',
    { errors: [{ pointer: '/querystring/cursor', detail: 'is not a valid cursor' }] },
  );
}

/** `subject` names what is versioned: "profile", "schedule", "consultation". */
export function invalidIfMatch(subject: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_if_match' satisfies AccessErrorCode,
    `If-Match must be one ETag of a ${subject} version, e.g. "3"`,
    { errors: [{ pointer: '/headers/if-match', detail: 'must be one ETag such as "3"' }] },
  );
}

/**
 * 412 with the current version as ETag; `current` is null when the client sent
 * If-Match for something that does not exist yet.
 */
export function versionMismatch(subject: string, current: number | null): AppError {
  return new AppError(
    'precondition_failed',
    'telemedicine.version_mismatch' satisfies AccessErrorCode,
    current === null
      ? `If-Match names a ${subject} version, but there is no ${subject} yet`
      : `The ${subject} changed (now version ${current}); fetch it again`,
    {
      extensions: { current_version: current },
      ...(current === null ? {} : { headers: { etag: `"${current}"` } }),
    },
  );
}
