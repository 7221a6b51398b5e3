import { AppError } from '@keel/platform/errors';

/** Every error code the booking saga produces (consultation.errors.ts has the lifecycle ones). */
export type BookingErrorCode =
  | 'telemedicine.slot_not_found'
  | 'telemedicine.slot_unavailable'
  | 'telemedicine.consent_required'
  | 'telemedicine.specialty_not_offered'
  | 'telemedicine.reschedule_other_doctor';

/** Unknown, in the past, or of a doctor who is not verified: not a slot anyone can book. */
export function slotNotFound(id: string, pointer = '/body/slot_id'): AppError {
  return new AppError(
    'not_found',
    'telemedicine.slot_not_found' satisfies BookingErrorCode,
    `No slot with id ${id}`,
    {
      errors: [{ pointer, detail: 'is not a bookable slot' }],
    },
  );
}

/** Held or booked by someone else (or withdrawn): another slot must be chosen. */
export function slotUnavailable(id: string, pointer = '/body/slot_id'): AppError {
  return new AppError(
    'conflict',
    'telemedicine.slot_unavailable' satisfies BookingErrorCode,
    `Slot ${id} is no longer available`,
    { errors: [{ pointer, detail: 'is held or booked' }] },
  );
}

export function consentRequired(missing: readonly ('treatment' | 'telehealth')[]): AppError {
  const pointers = missing.length === 0 ? ['/body/consent'] : missing.map((kind) => `/body/consent/${kind}`);
  return new AppError(
    'unprocessable',
    'telemedicine.consent_required' satisfies BookingErrorCode,
    'Booking needs the patient’s consent to treatment and to telehealth',
    { errors: pointers.map((pointer) => ({ pointer, detail: 'must be given (true)' })) },
  );
}

export function specialtyNotOffered(specialty: string): AppError {
  return new AppError(
    'unprocessable',
    'telemedicine.specialty_not_offered' satisfies BookingErrorCode,
    `The doctor does not practise ${specialty}`,
    { errors: [{ pointer: '/body/specialty', detail: 'is not one of the doctor’s specialties' }] },
  );
}

export function rescheduleOtherDoctor(slotId: string): AppError {
  return new AppError(
    'unprocessable',
    'telemedicine.reschedule_other_doctor' satisfies BookingErrorCode,
    `Slot ${slotId} belongs to another doctor; cancel and book instead`,
    { errors: [{ pointer: '/body/slot_id', detail: 'is another doctor’s slot' }] },
  );
}
