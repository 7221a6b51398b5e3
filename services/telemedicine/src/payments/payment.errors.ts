import { AppError } from '@keel/platform/errors';

/**
 * Every error code the payments feature produces. The gateway and webhook
 * codes are `payments.*` (they describe the payment rail, whichever service
 * uses it); what a caller of our API looks up is `telemedicine.*`.
 */
export type PaymentErrorCode =
  | 'payments.gateway_refused'
  | 'payments.gateway_unavailable'
  | 'payments.invalid_signature'
  | 'payments.stale_webhook'
  | 'payments.invalid_webhook'
  | 'payments.events_not_handled'
  | 'payments.event_not_applied'
  | 'telemedicine.payment_not_found';

/** The gateway said no (a 4xx): asking again would get the same answer. */
export function gatewayRefused(operation: string, statusCode: number, gatewayCode: string | null): AppError {
  return new AppError(
    'unprocessable',
    'payments.gateway_refused' satisfies PaymentErrorCode,
    `The payment gateway refused to ${operation} (status ${statusCode}${gatewayCode === null ? '' : `, ${gatewayCode}`})`,
    { extensions: { gateway_code: gatewayCode } },
  );
}

/** Transient failures outlasted the retries, or the breaker is open: the caller may try again later. */
export function gatewayUnavailable(operation: string, reason: string, retryAfterSeconds?: number): AppError {
  return new AppError(
    'unavailable',
    'payments.gateway_unavailable' satisfies PaymentErrorCode,
    `The payment gateway is unavailable (${operation}: ${reason})`,
    retryAfterSeconds === undefined ? {} : { retryAfterSeconds },
  );
}

export function invalidWebhookSignature(): AppError {
  return new AppError(
    'invalid',
    'payments.invalid_signature' satisfies PaymentErrorCode,
    'The webhook signature is missing or does not match',
  );
}

/** Signed, but outside the tolerance: a replay, or a clock too far off. */
export function staleWebhook(toleranceSeconds: number): AppError {
  return new AppError(
    'invalid',
    'payments.stale_webhook' satisfies PaymentErrorCode,
    `The webhook timestamp is more than ${toleranceSeconds} s away from now`,
  );
}

export function invalidWebhook(problem: string): AppError {
  return new AppError(
    'invalid',
    'payments.invalid_webhook' satisfies PaymentErrorCode,
    `The webhook body is not a valid event: ${problem}`,
  );
}

/**
 * No saga registered to apply events: answered 503 so the gateway keeps the
 * event and retries, rather than it being recorded as seen and lost.
 */
export function eventsNotHandled(): AppError {
  return new AppError(
    'unavailable',
    'payments.events_not_handled' satisfies PaymentErrorCode,
    'Payment events cannot be processed right now',
    { retryAfterSeconds: 30 },
  );
}

/** The saga failed on an event for a reason of its own: generic, as the gateway is a third party. */
export function eventNotApplied(cause: unknown): AppError {
  return new AppError(
    'internal',
    'payments.event_not_applied' satisfies PaymentErrorCode,
    'The event could not be applied; it has been logged',
    { cause },
  );
}

/** Missing, or not the caller's to see: the two must look the same. */
export function paymentNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.payment_not_found' satisfies PaymentErrorCode,
    `No payment with id ${id}`,
  );
}

/** A consultation without a payment the caller may see. */
export function consultationPaymentNotFound(consultationId: string): AppError {
  return new AppError(
    'not_found',
    'telemedicine.payment_not_found' satisfies PaymentErrorCode,
    `No payment for consultation ${consultationId}`,
  );
}
