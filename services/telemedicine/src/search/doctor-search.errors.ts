import { AppError } from '@keel/platform/errors';

/** Every error code doctor search produces (schema violations are the platform's `request.invalid`). */
export type DoctorSearchErrorCode =
  | 'telemedicine.invalid_cursor'
  | 'telemedicine.invalid_fee_range'
  | 'telemedicine.invalid_time_zone'
  | 'telemedicine.sort_requires_query'
  | 'telemedicine.search_cache_unavailable';

export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_cursor' satisfies DoctorSearchErrorCode,
    'The cursor is not one this search issued; send the same filters and sort as the first page',
    { errors: [{ pointer: '/querystring/cursor', detail: 'is not a cursor of this search' }] },
  );
}

export function invalidFeeRange(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_fee_range' satisfies DoctorSearchErrorCode,
    'fee_min must not be greater than fee_max',
    { errors: [{ pointer: '/querystring/fee_min', detail: 'is greater than fee_max' }] },
  );
}

export function invalidTimeZone(timeZone: string): AppError {
  return new AppError(
    'invalid',
    'telemedicine.invalid_time_zone' satisfies DoctorSearchErrorCode,
    `${JSON.stringify(timeZone.slice(0, 64))} is not an IANA time zone such as Europe/Berlin`,
    { errors: [{ pointer: '/querystring/time_zone', detail: 'is not an IANA time zone' }] },
  );
}

export function sortRequiresQuery(): AppError {
  return new AppError(
    'invalid',
    'telemedicine.sort_requires_query' satisfies DoctorSearchErrorCode,
    'sort=relevance ranks matches of q; send q, or sort by fee, rating or next_available',
    { errors: [{ pointer: '/querystring/sort', detail: 'needs q' }] },
  );
}

/** The invalidation subscriber could not bump the generation; retried by the event bus. */
export function searchCacheUnavailable(): AppError {
  return new AppError(
    'unavailable',
    'telemedicine.search_cache_unavailable' satisfies DoctorSearchErrorCode,
    'The search cache could not be invalidated; Redis did not answer',
  );
}
