import type { Transaction } from '@keel/platform/db';
import type { TelemedicineSchema } from '../database.ts';

// The seam between the booking saga and a payment gateway. The production
// adapter (`payment-gateway.client.ts`) speaks the gateway's HTTP API; the
// simulated gateway (`simulated-gateway/`) speaks the same API locally, for
// tests and `npm start`. Amounts are integer minor units.

export type PaymentIntentStatus = 'requires_payment' | 'processing' | 'succeeded' | 'failed' | 'cancelled';

export type PaymentIntent = {
  id: string;
  status: PaymentIntentStatus;
  amountMinor: number;
  currency: string;
  /** Handed to the payer's client to confirm the payment with the gateway directly. */
  clientSecret: string;
};

export type GatewayRefund = {
  id: string;
  intentId: string;
  status: 'pending' | 'succeeded' | 'failed';
  amountMinor: number;
};

export type CreateIntentInput = {
  amountMinor: number;
  currency: string;
  /** Sent as the gateway's Idempotency-Key: a retried create returns the first intent. */
  idempotencyKey: string;
  /** Opaque references echoed back in webhooks (`consultation_id`, `payment_id`); never personal data. */
  metadata: Record<string, string>;
};

export type RefundInput = {
  intentId: string;
  amountMinor: number;
  idempotencyKey: string;
  reason: string;
};

/**
 * What the booking saga needs from a gateway. Every call is idempotent on its
 * key, bounded by a timeout and retried on transient failures by the adapter;
 * a failure after retries is an `AppError` of kind `unavailable`
 * (`payments.gateway_unavailable`), a refusal one of kind `unprocessable`.
 */
export type PaymentProvider = {
  readonly name: string;
  createIntent(input: CreateIntentInput): Promise<PaymentIntent>;
  cancelIntent(intentId: string, options: { idempotencyKey: string }): Promise<PaymentIntent>;
  refund(input: RefundInput): Promise<GatewayRefund>;
};

export type PaymentWebhookEventType =
  | 'payment_intent.succeeded'
  | 'payment_intent.payment_failed'
  | 'payment_intent.canceled'
  | 'refund.succeeded'
  | 'refund.failed';

/** A webhook event whose signature and timestamp were verified. */
export type PaymentWebhookEvent = {
  /** The gateway's event id: the deduplication key. */
  id: string;
  type: PaymentWebhookEventType;
  createdAt: Date;
  intentId: string;
  refundId: string | null;
  amountMinor: number;
  currency: string;
  failureCode: string | null;
  metadata: Record<string, string>;
};

/**
 * The booking saga's side of a webhook: applies one verified, not yet seen
 * event inside the transaction that records its id, so the event's effect
 * and its deduplication commit together. Events may arrive twice (deduplicated
 * before this runs) and out of order (the handler must ignore an event that
 * would move a payment backwards).
 */
export type PaymentEventHandler = (
  trx: Transaction<TelemedicineSchema>,
  event: PaymentWebhookEvent,
) => Promise<void>;
