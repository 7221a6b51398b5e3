import { AppError } from '@keel/platform/errors';

/** Every error code the analytics feature can produce. */
export type AnalyticsErrorCode =
  | 'orders.outlet_not_found'
  | 'orders.analytics_invalid_range'
  | 'orders.analytics_outlet_required';

/** Also what staff see for an outlet they do not work at: it looks exactly like a missing one. */
export function outletNotFound(outletId: string): AppError {
  return new AppError(
    'not_found',
    'orders.outlet_not_found' satisfies AnalyticsErrorCode,
    `No outlet with id ${outletId}`,
  );
}

export function invalidAnalyticsRange(problem: string): AppError {
  return new AppError('invalid', 'orders.analytics_invalid_range' satisfies AnalyticsErrorCode, problem, {
    errors: [{ pointer: '/querystring/to', detail: problem }],
  });
}

export function analyticsOutletRequired(): AppError {
  return new AppError(
    'invalid',
    'orders.analytics_outlet_required' satisfies AnalyticsErrorCode,
    'outlet_id is required unless you may read every outlet',
    { errors: [{ pointer: '/querystring/outlet_id', detail: 'required for staff' }] },
  );
}
