import { AppError } from '@keel/platform/errors';

/** Every error code the analytics feature produces. */
export type AnalyticsErrorCode = 'telemedicine.analytics_invalid_range';

export function invalidAnalyticsRange(
  problem: string,
  pointer: '/querystring/from' | '/querystring/to',
): AppError {
  return new AppError(
    'invalid',
    'telemedicine.analytics_invalid_range' satisfies AnalyticsErrorCode,
    problem,
    {
      errors: [{ pointer, detail: problem }],
    },
  );
}
