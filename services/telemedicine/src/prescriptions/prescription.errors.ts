import type { ConsultationStatus } from '@keel/contracts';
import { AppError } from '@keel/platform/errors';

/** Every error code the prescriptions feature produces. */
export type PrescriptionErrorCode =
  | 'telemedicine.prescription_not_found'
  | 'telemedicine.prescription_not_allowed'
  | 'telemedicine.prescription_already_issued'
  | 'telemedicine.prescription_superseded';

/** Missing, or not the caller's to see: the two must look the same. */
export function prescriptionNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.prescription_not_found' satisfies PrescriptionErrorCode,
    `No prescription with id ${id}`,
  );
}

export function prescriptionNotAllowed(status: ConsultationStatus): AppError {
  return new AppError(
    'conflict',
    'telemedicine.prescription_not_allowed' satisfies PrescriptionErrorCode,
    `A prescription is issued once the consultation has started; it is ${status}`,
    { extensions: { status } },
  );
}

/** One prescription per consultation; changing it is a correction, which keeps the original on record. */
export function prescriptionAlreadyIssued(consultationId: string): AppError {
  return new AppError(
    'conflict',
    'telemedicine.prescription_already_issued' satisfies PrescriptionErrorCode,
    `Consultation ${consultationId} already has a prescription; correct it instead ` +
      '(POST /telemedicine/prescriptions/{id}/corrections)',
  );
}

/** Only the current version can be corrected, and only once: a second correction lost the race or came late. */
export function prescriptionSuperseded(id: string): AppError {
  return new AppError(
    'conflict',
    'telemedicine.prescription_superseded' satisfies PrescriptionErrorCode,
    `Prescription ${id} has already been superseded; correct the current version`,
  );
}
