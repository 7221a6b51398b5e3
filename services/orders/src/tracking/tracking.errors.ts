import { AppError } from '@keel/platform/errors';

/** Every error code the tracking feature can produce. */
export type TrackingErrorCode =
  | 'orders.order_not_found'
  | 'orders.outlet_not_found'
  | 'orders.last_event_id_invalid'
  | 'orders.tracking_streams_full'
  | 'orders.tracking_closing'
  | 'orders.tracking_unknown_event';

/** Also what another customer's order, or another outlet's to staff, looks like. */
export function orderNotFound(orderId: string): AppError {
  return new AppError(
    'not_found',
    'orders.order_not_found' satisfies TrackingErrorCode,
    `No order with id ${orderId}`,
  );
}

export function outletNotFound(outletId: string): AppError {
  return new AppError(
    'not_found',
    'orders.outlet_not_found' satisfies TrackingErrorCode,
    `No outlet with id ${outletId}`,
  );
}

export function lastEventIdInvalid(pointer: string): AppError {
  const detail = 'Last-Event-ID must be the id of an event this stream sent: a non-negative integer';
  return new AppError('invalid', 'orders.last_event_id_invalid' satisfies TrackingErrorCode, detail, {
    errors: [{ pointer, detail }],
  });
}

export function trackingStreamsFull(retryAfterSeconds: number): AppError {
  return new AppError(
    'unavailable',
    'orders.tracking_streams_full' satisfies TrackingErrorCode,
    'This server follows as many event streams as it can; retry shortly',
    { retryAfterSeconds },
  );
}

export function trackingClosing(): AppError {
  return new AppError(
    'unavailable',
    'orders.tracking_closing' satisfies TrackingErrorCode,
    'This server is shutting down; reconnect to continue the stream',
    { retryAfterSeconds: 1 },
  );
}

/** A subscribed type the projection does not know: a bug, dead-lettered (kind `invalid`). */
export function unknownTrackedEvent(type: string): AppError {
  return new AppError(
    'invalid',
    'orders.tracking_unknown_event' satisfies TrackingErrorCode,
    `The tracking feed does not project ${type}`,
  );
}
