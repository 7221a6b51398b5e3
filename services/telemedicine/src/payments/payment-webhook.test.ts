import { createHmac } from 'node:crypto';
import { isAppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import { signGatewayPayload } from './gateway-signature.ts';
import { verifyPaymentWebhook } from './payment-webhook.ts';

const secret = 'whsec_unit_test_secret_0123456789';
const now = new Date('2030-01-01T10:00:00Z');
const nowSeconds = Math.floor(now.getTime() / 1000);
const settings = { secret, toleranceSeconds: 300, now };

function eventBody(type: string, object: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return JSON.stringify({
    id: 'evt_1',
    object: 'event',
    type,
    created: nowSeconds - 5,
    data: { object },
    ...overrides,
  });
}

const intentObject = {
  id: 'pi_1',
  object: 'payment_intent',
  status: 'succeeded',
  amount: 5000,
  currency: 'eur',
  metadata: { payment_id: 'p-1', consultation_id: 'c-1' },
  last_payment_error: null,
};

function verify(body: string, header: string | undefined = signGatewayPayload(secret, nowSeconds, body)) {
  return verifyPaymentWebhook(Buffer.from(body), header, settings);
}

function codeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    if (isAppError(error)) return `${error.kind}:${error.code}`;
    throw error;
  }
  throw new Error('expected an error');
}

describe('verifyPaymentWebhook', () => {
  it('verifies a signed payment_intent.succeeded and parses it', () => {
    const verified = verify(eventBody('payment_intent.succeeded', intentObject));
    expect(verified).toEqual({
      isHandled: true,
      event: {
        id: 'evt_1',
        type: 'payment_intent.succeeded',
        createdAt: new Date((nowSeconds - 5) * 1000),
        intentId: 'pi_1',
        refundId: null,
        amountMinor: 5000,
        currency: 'EUR',
        failureCode: null,
        metadata: { payment_id: 'p-1', consultation_id: 'c-1' },
      },
    });
  });

  it('reads the failure code of payment_failed and the refund and intent ids of refund events', () => {
    const failed = verify(
      eventBody('payment_intent.payment_failed', {
        ...intentObject,
        status: 'requires_payment',
        last_payment_error: { code: 'card_declined', message: 'declined' },
      }),
    );
    expect(failed.isHandled && failed.event.failureCode).toBe('card_declined');
    const refunded = verify(
      eventBody('refund.succeeded', {
        id: 're_1',
        object: 'refund',
        payment_intent: 'pi_1',
        amount: 2500,
        currency: 'eur',
        status: 'succeeded',
        metadata: { payment_id: 'p-1' },
      }),
    );
    expect(refunded.isHandled && refunded.event).toMatchObject({
      type: 'refund.succeeded',
      intentId: 'pi_1',
      refundId: 're_1',
      amountMinor: 2500,
      failureCode: null,
    });
    const refundFailed = verify(
      eventBody('refund.failed', {
        id: 're_2',
        payment_intent: 'pi_1',
        amount: 100,
        currency: 'eur',
        failure_reason: 'expired_or_canceled_card',
      }),
    );
    expect(refundFailed.isHandled && refundFailed.event).toMatchObject({
      failureCode: 'expired_or_canceled_card',
      metadata: {},
    });
  });

  it('accepts any one matching v1 signature among several, and ignores other schemes', () => {
    const body = eventBody('payment_intent.succeeded', intentObject);
    const valid = signGatewayPayload(secret, nowSeconds, body).split(',')[1];
    const header = `t=${nowSeconds},v1=${'0'.repeat(64)},v0=abc,${valid}`;
    expect(verify(body, header).isHandled).toBe(true);
  });

  it('refuses with payments.invalid_signature a wrong secret, a changed body, a missing or malformed header', () => {
    const body = eventBody('payment_intent.succeeded', intentObject);
    const signed = signGatewayPayload(secret, nowSeconds, body);
    const expected = 'invalid:payments.invalid_signature';
    expect(
      codeOf(() => verify(body, signGatewayPayload('whsec_another_secret_000000', nowSeconds, body))),
    ).toBe(expected);
    expect(codeOf(() => verify(`${body} `, signed))).toBe(expected);
    expect(codeOf(() => verify(body, ''))).toBe(expected);
    expect(codeOf(() => verifyPaymentWebhook(Buffer.from(body), undefined, settings))).toBe(expected);
    expect(codeOf(() => verify(body, signed.replace(/^t=\d+,/, '')))).toBe(expected);
    expect(codeOf(() => verify(body, `t=${nowSeconds},${signed}`))).toBe(expected);
    expect(codeOf(() => verify(body, `t=${nowSeconds}`))).toBe(expected);
    // The signature covers the timestamp: moving it breaks the signature.
    expect(codeOf(() => verify(body, signed.replace(`t=${nowSeconds}`, `t=${nowSeconds + 1}`)))).toBe(
      expected,
    );
  });

  it('refuses with payments.stale_webhook a genuine signature outside the tolerance, either way', () => {
    const body = eventBody('payment_intent.succeeded', intentObject);
    const old = signGatewayPayload(secret, nowSeconds - 301, body);
    const future = signGatewayPayload(secret, nowSeconds + 301, body);
    expect(codeOf(() => verify(body, old))).toBe('invalid:payments.stale_webhook');
    expect(codeOf(() => verify(body, future))).toBe('invalid:payments.stale_webhook');
    expect(verify(body, signGatewayPayload(secret, nowSeconds - 300, body)).isHandled).toBe(true);
  });

  it('refuses with payments.invalid_webhook a signed body that is not JSON or not an event', () => {
    expect(codeOf(() => verify('not json {'))).toBe('invalid:payments.invalid_webhook');
    expect(codeOf(() => verify(JSON.stringify({ id: 'evt_1' })))).toBe('invalid:payments.invalid_webhook');
    expect(codeOf(() => verify(eventBody('payment_intent.succeeded', { id: 'pi_1', amount: '5000' })))).toBe(
      'invalid:payments.invalid_webhook',
    );
    expect(codeOf(() => verify(eventBody('refund.succeeded', intentObject)))).toBe(
      'invalid:payments.invalid_webhook',
    );
  });

  it('reports an event of a type it does not handle as not handled', () => {
    expect(verify(eventBody('charge.dispute.created', { id: 'dp_1' }))).toEqual({
      isHandled: false,
      eventId: 'evt_1',
      type: 'charge.dispute.created',
    });
  });

  it('signs like the documented scheme: hex HMAC-SHA256 of "<t>.<body>"', () => {
    const body = '{"id":"evt_1"}';
    const hex = createHmac('sha256', secret).update(`${nowSeconds}.${body}`).digest('hex');
    expect(signGatewayPayload(secret, nowSeconds, body)).toBe(`t=${nowSeconds},v1=${hex}`);
  });
});
