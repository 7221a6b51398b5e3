import { AppError } from '@keel/platform/errors';

/** Error codes shared by every feature that looks up a consultation, patient or doctor. */
export type AccessErrorCode =
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
