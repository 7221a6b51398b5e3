import { AppError } from '@keel/platform/errors';
import { invalidCursor as sharedInvalidCursor } from '../access/access.errors.ts';
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

export const invalidCursor = sharedInvalidCursor;
