import { AppError } from '@keel/platform/errors';
import { invalidCursor as sharedInvalidCursor } from '../access/access.errors.ts';

/** Every error code the compliance feature (access log, data exports, consents) produces. */
export type ComplianceErrorCode =
  | 'telemedicine.export_not_found'
  | 'telemedicine.export_not_ready'
  | 'telemedicine.export_failed'
  | 'telemedicine.export_expired'
  | 'telemedicine.invalid_cursor';

/** Missing, or another patient's: the two must look the same. */
export function exportNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.export_not_found' satisfies ComplianceErrorCode,
    `No data export with id ${id}`,
  );
}

export function exportNotReady(id: string): AppError {
  return new AppError(
    'conflict',
    'telemedicine.export_not_ready' satisfies ComplianceErrorCode,
    `Data export ${id} is still being prepared; poll its status and try again when it is READY`,
  );
}

export function exportFailed(id: string): AppError {
  return new AppError(
    'conflict',
    'telemedicine.export_failed' satisfies ComplianceErrorCode,
    `Data export ${id} could not be prepared; request a new export`,
  );
}

/** 404 (the platform has no 410): the archive has been erased and cannot come back. */
export function exportExpired(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.export_expired' satisfies ComplianceErrorCode,
    `Data export ${id} has expired; request a new export`,
  );
}

export const invalidCursor = sharedInvalidCursor;
