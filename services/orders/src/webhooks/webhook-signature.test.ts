import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatWebhookSecret, signWebhook, verifyWebhookSignature } from './webhook-signature.ts';

const secret = formatWebhookSecret(randomBytes(32));
const body = JSON.stringify({ id: 'evt', type: 'orders.order_placed.v1', payload: { totalMinor: 1248 } });
const now = new Date('2030-01-01T10:00:00Z');
const timestamp = Math.floor(now.getTime() / 1000);
const id = '0190a0a0-0000-7000-8000-000000000001';

describe('signWebhook and verifyWebhookSignature', () => {
  it('verifies what was signed, from a header record or a Headers object', () => {
    const headers = signWebhook(secret, { id, timestamp, body });
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifyWebhookSignature(secret, headers, body, { now })).toEqual({ isValid: true, id, timestamp });
    expect(verifyWebhookSignature(secret, new Headers(headers), Buffer.from(body), { now }).isValid).toBe(
      true,
    );
  });

  it('matches the Standard Webhooks reference vector', () => {
    // From the standardwebhooks.com libraries' test suite.
    const reference = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', {
      id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      timestamp: 1614265330,
      body: '{"test": 2432232314}',
    });
    expect(reference['webhook-signature']).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('refuses another secret, a changed body, id or timestamp', () => {
    const headers = signWebhook(secret, { id, timestamp, body });
    const otherSecret = formatWebhookSecret(randomBytes(32));
    expect(verifyWebhookSignature(otherSecret, headers, body, { now })).toEqual({
      isValid: false,
      reason: 'signature_mismatch',
    });
    expect(verifyWebhookSignature(secret, headers, `${body} `, { now }).isValid).toBe(false);
    expect(
      verifyWebhookSignature(secret, { ...headers, 'webhook-id': `${id}x` }, body, { now }).isValid,
    ).toBe(false);
    expect(
      verifyWebhookSignature(secret, { ...headers, 'webhook-timestamp': String(timestamp + 1) }, body, {
        now,
      }).isValid,
    ).toBe(false);
  });

  it('refuses a timestamp outside the tolerance, either way', () => {
    const old = signWebhook(secret, { id, timestamp: timestamp - 301, body });
    const future = signWebhook(secret, { id, timestamp: timestamp + 301, body });
    expect(verifyWebhookSignature(secret, old, body, { now })).toEqual({
      isValid: false,
      reason: 'timestamp_out_of_tolerance',
    });
    expect(verifyWebhookSignature(secret, future, body, { now }).isValid).toBe(false);
    expect(verifyWebhookSignature(secret, old, body, { now, toleranceSeconds: 600 }).isValid).toBe(true);
    const garbled = { ...old, 'webhook-timestamp': '17e8' };
    expect(verifyWebhookSignature(secret, garbled, body, { now }).isValid).toBe(false);
  });

  it('accepts any one valid signature among several (secret rotation)', () => {
    const headers = signWebhook(secret, { id, timestamp, body });
    const rotated = { ...headers, 'webhook-signature': `v1,AAAA v2,zzz ${headers['webhook-signature']}` };
    expect(verifyWebhookSignature(secret, rotated, body, { now }).isValid).toBe(true);
  });

  it('reports missing headers', () => {
    expect(verifyWebhookSignature(secret, {}, body, { now })).toEqual({
      isValid: false,
      reason: 'missing_headers',
    });
  });
});
