import { AppError } from '@keel/platform/errors';
import type { ConsultationStatus } from './consultation.ts';

/** Error codes of the consultation reads and lifecycle moves (booking has its own in booking.errors.ts). */
export type ConsultationErrorCode = 'telemedicine.invalid_transition' | 'telemedicine.invalid_cursor';

/** The consultation's status does not allow the move (cancelling a COMPLETED one, rescheduling an unpaid one). */
export function invalidTransition(status: ConsultationStatus, action: 'cancelled' | 'rescheduled'): AppError {
  return new AppError(
    'conflict',
    'telemedicine.invalid_transition' satisfies ConsultationErrorCode,
    `A ${status} consultation cannot be ${action}`,
    { extensions: { status } },
  );
}

export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_cursor' satisfies ConsultationErrorCode,
    'The cursor is not one this API issued',
    { errors: [{ pointer: '/querystring/cursor', detail: 'is not a valid cursor' }] },
  );
}
