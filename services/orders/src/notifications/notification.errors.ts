import { AppError } from '@keel/platform/errors';

/** Every error code the notifications feature can produce. */
export type NotificationErrorCode = 'orders.notification_not_found';

/** A job whose record is gone cannot be sent by retrying: kind `invalid` dead-letters it at once. */
export function notificationNotFound(eventId: string): AppError {
  return new AppError(
    'invalid',
    'orders.notification_not_found' satisfies NotificationErrorCode,
    `No customer notification recorded for event ${eventId}`,
  );
}
