import { AppError } from '@keel/platform/errors';
import type { WebhookAttemptError } from './webhook.ts';

/** Every error code the webhooks feature can produce (and the attempt codes a delivery records). */
export type WebhookErrorCode =
  | 'orders.webhook_endpoint_not_found'
  | 'orders.webhook_url_invalid'
  | 'orders.webhook_delivery_not_found'
  | 'orders.webhook_delivery_rejected'
  | 'orders.webhook_delivery_failed'
  | WebhookAttemptError;

export function webhookEndpointNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'orders.webhook_endpoint_not_found' satisfies WebhookErrorCode,
    `No webhook endpoint with id ${id}`,
  );
}

export function webhookUrlInvalid(problem: string): AppError {
  return new AppError('invalid', 'orders.webhook_url_invalid' satisfies WebhookErrorCode, problem, {
    errors: [{ pointer: '/body/url', detail: problem }],
  });
}

/** For the job: a delivery row that is gone cannot be sent by retrying. */
export function webhookDeliveryNotFound(id: string): AppError {
  return new AppError(
    'invalid',
    'orders.webhook_delivery_not_found' satisfies WebhookErrorCode,
    `No webhook delivery with id ${id}`,
  );
}

/** The receiver refused for good (a 4xx other than 408/429): kind `invalid` dead-letters the job at once. */
export function webhookDeliveryRejected(statusCode: number | null): AppError {
  return new AppError(
    'invalid',
    'orders.webhook_delivery_rejected' satisfies WebhookErrorCode,
    `The receiver refused the webhook${statusCode === null ? '' : ` with status ${statusCode}`}`,
  );
}

/** A temporary failure (5xx, 408, 429, timeout, network, open circuit): kind `unavailable` is retried with backoff. */
export function webhookDeliveryFailed(reason: WebhookAttemptError, statusCode: number | null): AppError {
  return new AppError(
    'unavailable',
    'orders.webhook_delivery_failed' satisfies WebhookErrorCode,
    `Webhook attempt failed: ${reason}${statusCode === null ? '' : ` (status ${statusCode})`}`,
  );
}
