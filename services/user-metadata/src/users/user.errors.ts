import { AppError } from '@keel/platform/errors';
import { userLocation } from './user.ts';

/** Every error code this feature can produce. */
export type UserErrorCode =
  | 'users.not_found'
  | 'users.email_taken'
  | 'users.name_invalid'
  | 'users.phone_invalid';

export function userNotFound(id: string): AppError {
  return new AppError('not_found', 'users.not_found' satisfies UserErrorCode, `No user with id ${id}`);
}

export function emailTaken(existingId: string): AppError {
  return new AppError(
    'conflict',
    'users.email_taken' satisfies UserErrorCode,
    'A user with this email already exists',
    {
      extensions: { location: userLocation(existingId) },
      headers: { location: userLocation(existingId) },
    },
  );
}
