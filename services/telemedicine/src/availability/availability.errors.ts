import { AppError, type FieldError } from '@keel/platform/errors';
import {
  invalidIfMatch as sharedInvalidIfMatch,
  versionMismatch as sharedVersionMismatch,
} from '../access/access.errors.ts';

/** Every error code the availability feature produces (plus `telemedicine.doctor_not_found` from access). */
export type AvailabilityErrorCode =
  | 'telemedicine.doctor_profile_required'
  | 'telemedicine.schedule_not_found'
  | 'telemedicine.schedule_required'
  | 'telemedicine.invalid_time_zone'
  | 'telemedicine.invalid_window'
  | 'telemedicine.overlapping_windows'
  | 'telemedicine.invalid_override'
  | 'telemedicine.invalid_date'
  | 'telemedicine.invalid_range'
  | 'telemedicine.invalid_time_off'
  | 'telemedicine.time_off_not_found'
  | 'telemedicine.invalid_if_match'
  | 'telemedicine.version_mismatch';

/** A doctor account without a doctor profile has no schedule to manage yet. */
export function doctorProfileRequired(): AppError {
  return new AppError(
    'unprocessable',
    'telemedicine.doctor_profile_required' satisfies AvailabilityErrorCode,
    'Create your doctor profile first (PUT /telemedicine/doctors/me)',
  );
}

export function scheduleNotFound(doctorId: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.schedule_not_found' satisfies AvailabilityErrorCode,
    `Doctor ${doctorId} has no weekly schedule yet`,
  );
}

/** Overrides refine a weekly schedule, so one must exist first. */
export function scheduleRequired(): AppError {
  return new AppError(
    'unprocessable',
    'telemedicine.schedule_required' satisfies AvailabilityErrorCode,
    'Set your weekly schedule first (PUT /telemedicine/doctors/me/schedule)',
  );
}

export function invalidTimeZone(pointer: string, value: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_time_zone' satisfies AvailabilityErrorCode,
    `${JSON.stringify(value.slice(0, 64))} is not an IANA time zone such as "Europe/Berlin"`,
    { errors: [{ pointer, detail: 'is not an IANA time zone' }] },
  );
}

export function invalidWindows(errors: FieldError[]): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_window' satisfies AvailabilityErrorCode,
    'Every window must start before it ends and hold at least one slot',
    { errors },
  );
}

export function overlappingWindows(errors: FieldError[]): AppError {
  return new AppError(
    'invalid',
    'telemedicine.overlapping_windows' satisfies AvailabilityErrorCode,
    'Windows of one day must not overlap',
    { errors },
  );
}

export function invalidOverride(pointer: string, detail: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_override' satisfies AvailabilityErrorCode,
    'An available date needs windows; a day off has none',
    { errors: [{ pointer, detail }] },
  );
}

export function invalidDate(pointer: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_date' satisfies AvailabilityErrorCode,
    'Dates are calendar dates in the form YYYY-MM-DD',
    { errors: [{ pointer, detail: 'is not a calendar date (YYYY-MM-DD)' }] },
  );
}

export function invalidRange(pointer: string, detail: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_range' satisfies AvailabilityErrorCode,
    `The range is invalid: ${detail}`,
    { errors: [{ pointer, detail }] },
  );
}

export function invalidTimeOff(pointer: string, detail: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_time_off' satisfies AvailabilityErrorCode,
    `The time off is invalid: ${detail}`,
    { errors: [{ pointer, detail }] },
  );
}

/** Missing, or another doctor's: the two look the same. */
export function timeOffNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.time_off_not_found' satisfies AvailabilityErrorCode,
    `No time off with id ${id}`,
  );
}

export const invalidIfMatch = (): AppError => sharedInvalidIfMatch('schedule');

export const versionMismatch = (_expected: number | '*', current: number | null): AppError =>
  sharedVersionMismatch('schedule', current);
