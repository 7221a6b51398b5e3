import { type Static, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { verifyGatewaySignature } from './gateway-signature.ts';
import { invalidWebhook, invalidWebhookSignature, staleWebhook } from './payment.errors.ts';
import type { PaymentWebhookEvent, PaymentWebhookEventType } from './payment-provider.ts';

// Turns a received webhook (raw bytes and signature header) into a verified
// `PaymentWebhookEvent`, or the `payments.*` error that says why not.

export const PAYMENT_WEBHOOK_EVENT_TYPES: readonly PaymentWebhookEventType[] = [
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
  'refund.succeeded',
  'refund.failed',
];

const Id = Type.String({ minLength: 1, maxLength: 255 });
const Currency = Type.String({ pattern: '^[A-Za-z]{3}$' });
const Amount = Type.Integer({ minimum: 0, maximum: 99_999_999_999 });
const Metadata = Type.Record(Type.String(), Type.String());

// Gateways add fields as their API evolves: only what we read is required.
const EventEnvelope = Type.Object({
  id: Id,
  type: Type.String({ minLength: 1, maxLength: 100 }),
  created: Type.Integer({ minimum: 0 }),
  data: Type.Object({ object: Type.Object({}) }),
});
const IntentObject = Type.Object({
  id: Id,
  amount: Amount,
  currency: Currency,
  metadata: Type.Optional(Metadata),
  last_payment_error: Type.Optional(Type.Union([Type.Null(), Type.Object({ code: Type.String() })])),
});
const RefundObject = Type.Object({
  id: Id,
  payment_intent: Id,
  amount: Amount,
  currency: Currency,
  metadata: Type.Optional(Metadata),
  failure_reason: Type.Optional(Type.Union([Type.Null(), Type.String()])),
});
const checkEnvelope = Compile(EventEnvelope);
const checkIntent = Compile(IntentObject);
const checkRefund = Compile(RefundObject);

export type WebhookVerificationSettings = {
  secret: string;
  toleranceSeconds: number;
  now: Date;
};

/** A verified webhook: an event we apply, or one of a type this service does not act on. */
export type VerifiedWebhook =
  | { isHandled: true; event: PaymentWebhookEvent }
  | { isHandled: false; eventId: string; type: string };

function isHandledType(type: string): type is PaymentWebhookEventType {
  return (PAYMENT_WEBHOOK_EVENT_TYPES as readonly string[]).includes(type);
}

function parseEvent(
  envelope: Static<typeof EventEnvelope>,
  type: PaymentWebhookEventType,
): PaymentWebhookEvent {
  const object: unknown = envelope.data.object;
  const base = { id: envelope.id, type, createdAt: new Date(envelope.created * 1000) };
  if (type.startsWith('refund.')) {
    if (!checkRefund.Check(object)) throw invalidWebhook('data.object is not a refund');
    const refund = object;
    return {
      ...base,
      intentId: refund.payment_intent,
      refundId: refund.id,
      amountMinor: refund.amount,
      currency: refund.currency.toUpperCase(),
      failureCode: type === 'refund.failed' ? (refund.failure_reason ?? 'unknown') : null,
      metadata: refund.metadata ?? {},
    };
  }
  if (!checkIntent.Check(object)) throw invalidWebhook('data.object is not a payment intent');
  const intent = object;
  return {
    ...base,
    intentId: intent.id,
    refundId: null,
    amountMinor: intent.amount,
    currency: intent.currency.toUpperCase(),
    failureCode:
      type === 'payment_intent.payment_failed' ? (intent.last_payment_error?.code ?? 'unknown') : null,
    metadata: intent.metadata ?? {},
  };
}

/**
 * Verifies the signature over the raw body (timing-safe, any of several `v1`
 * entries), then the timestamp against `now` within `toleranceSeconds`, and
 * only then parses: nothing unsigned is ever interpreted.
 *
 * @example
 * const verified = verifyPaymentWebhook(rawBody, request.headers['gateway-signature'], { secret, toleranceSeconds: 300, now });
 */
export function verifyPaymentWebhook(
  rawBody: Uint8Array,
  signatureHeader: string | undefined,
  settings: WebhookVerificationSettings,
): VerifiedWebhook {
  const verdict = verifyGatewaySignature(settings.secret, signatureHeader, rawBody, settings);
  if (!verdict.isValid) {
    if (verdict.reason === 'timestamp_out_of_tolerance') throw staleWebhook(settings.toleranceSeconds);
    throw invalidWebhookSignature();
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(rawBody).toString('utf8'));
  } catch {
    throw invalidWebhook('the body is not JSON');
  }
  if (!checkEnvelope.Check(body)) throw invalidWebhook('the body is not an event envelope');
  if (!isHandledType(body.type)) return { isHandled: false, eventId: body.id, type: body.type };
  return { isHandled: true, event: parseEvent(body, body.type) };
}
