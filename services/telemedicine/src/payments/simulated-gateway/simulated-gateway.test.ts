import { systemClock } from '@keel/platform/module';
import type { InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { GATEWAY_SIGNATURE_HEADER, verifyGatewaySignature } from '../gateway-signature.ts';
import type { GatewayEvent } from './gateway-ledger.ts';
import { createSimulatedGateway, type SimulatedGatewayOptions } from './simulated-gateway.ts';

const apiKey = 'sk_test_simulated_key';
const webhookSecret = 'whsec_simulated_secret_0123456789';
const authorization = `Bearer ${apiKey}`;

type Delivered = { body: string; headers: Record<string, string> };

const gateways: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
});

/** A gateway whose receiver answers the scripted statuses in turn, then 200. */
function buildGateway(overrides: Partial<SimulatedGatewayOptions> = {}, script: number[] = []) {
  const delivered: Delivered[] = [];
  const gateway = createSimulatedGateway({
    apiKey,
    webhookSecret,
    clock: systemClock,
    webhookMode: 'manual',
    deliveryBackoffMs: 1,
    deliver: async (body, headers) => {
      delivered.push({ body, headers });
      return { statusCode: script.shift() ?? 200 };
    },
    ...overrides,
  });
  gateways.push(gateway);
  let keyNumber = 0;
  const post = (url: string, payload: object, headers: Record<string, string> = {}) => {
    keyNumber += 1;
    return gateway.app.inject({
      method: 'POST',
      url,
      payload,
      headers: { authorization, 'idempotency-key': `key-${keyNumber}`, ...headers },
    } satisfies InjectOptions);
  };
  const createIntent = async (amount = 5000) => {
    const response = await post('/v1/payment_intents', {
      amount,
      currency: 'EUR',
      metadata: { payment_id: 'p-1' },
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as { id: string; client_secret: string; status: string; currency: string };
  };
  return { gateway, delivered, post, createIntent };
}

describe('simulated gateway API', () => {
  it('refuses a request without the API key with 401', async () => {
    const { gateway } = buildGateway();
    const missing = await gateway.app.inject({ method: 'GET', url: '/v1/payment_intents/pi_x' });
    const wrong = await gateway.app.inject({
      method: 'POST',
      url: '/v1/payment_intents',
      headers: { authorization: 'Bearer sk_wrong', 'idempotency-key': 'k' },
      payload: { amount: 100, currency: 'eur' },
    });
    for (const response of [missing, wrong]) {
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('invalid_api_key');
    }
  });

  it('creates an intent in lower-case currency, and finds it by id', async () => {
    const { gateway, createIntent } = buildGateway();
    const intent = await createIntent();
    expect(intent).toMatchObject({ status: 'requires_payment', currency: 'eur' });
    expect(intent.id).toMatch(/^pi_/);
    expect(intent.client_secret).toMatch(new RegExp(`^${intent.id}_secret_`));
    const found = await gateway.app.inject({
      method: 'GET',
      url: `/v1/payment_intents/${intent.id}`,
      headers: { authorization },
    });
    expect(found.json()).toMatchObject({ id: intent.id, amount: 5000, metadata: { payment_id: 'p-1' } });
  });

  it('answers 400 when a POST has no Idempotency-Key or an invalid body', async () => {
    const { gateway, post } = buildGateway();
    const withoutKey = await gateway.app.inject({
      method: 'POST',
      url: '/v1/payment_intents',
      headers: { authorization },
      payload: { amount: 100, currency: 'eur' },
    });
    expect(withoutKey.statusCode).toBe(400);
    expect(withoutKey.json().error.code).toBe('idempotency_key_missing');
    const badAmount = await post('/v1/payment_intents', { amount: 0, currency: 'eur' });
    expect(badAmount.statusCode).toBe(400);
    expect(badAmount.json().error).toMatchObject({ code: 'parameter_invalid', param: 'amount' });
  });

  it('replays the stored response for the same key and body, and answers 409 for another body', async () => {
    const { post } = buildGateway();
    const headers = { 'idempotency-key': 'create-once' };
    const first = await post('/v1/payment_intents', { amount: 100, currency: 'eur', metadata: {} }, headers);
    // Same body, keys in another order.
    const again = await post('/v1/payment_intents', { metadata: {}, currency: 'eur', amount: 100 }, headers);
    const other = await post('/v1/payment_intents', { amount: 200, currency: 'eur', metadata: {} }, headers);
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('idempotency_key_in_use');
  });

  it('confirms with pm_card_ok: succeeded, one payment_intent.succeeded event without the client secret', async () => {
    const { gateway, post, createIntent } = buildGateway();
    const intent = await createIntent();
    const confirmed = await post(`/v1/payment_intents/${intent.id}/confirm`, {
      payment_method: 'pm_card_ok',
    });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json().status).toBe('succeeded');
    const events = gateway.listEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'payment_intent.succeeded',
      isDelivered: false,
      data: { object: { id: intent.id, status: 'succeeded', amount: 5000, metadata: { payment_id: 'p-1' } } },
    });
    expect(events[0]?.id).toMatch(/^evt_/);
    expect(JSON.stringify(events)).not.toContain(intent.client_secret);
  });

  it('keeps a declined intent payable with its last error and raises payment_failed', async () => {
    const { gateway, post, createIntent } = buildGateway();
    const intent = await createIntent();
    const declined = await post(`/v1/payment_intents/${intent.id}/confirm`, {
      payment_method: 'pm_card_declined',
    });
    expect(declined.statusCode).toBe(402);
    expect(declined.json().error).toMatchObject({
      type: 'card_error',
      code: 'card_declined',
      payment_intent: { status: 'requires_payment' },
    });
    const short = await gateway.confirmIntent(intent.id, 'pm_card_insufficient_funds');
    expect(short.last_payment_error?.code).toBe('insufficient_funds');
    const paid = await gateway.confirmIntent(intent.id, 'pm_card_ok');
    expect(paid.status).toBe('succeeded');
    expect(gateway.listEvents().map((event) => event.type)).toEqual([
      'payment_intent.payment_failed',
      'payment_intent.payment_failed',
      'payment_intent.succeeded',
    ]);
    const failed = gateway.listEvents()[0]?.data.object as { last_payment_error: { code: string } };
    expect(failed.last_payment_error.code).toBe('card_declined');
  });

  it("lets the payer confirm with the intent's client secret instead of the API key", async () => {
    const { gateway, createIntent } = buildGateway();
    const intent = await createIntent();
    const confirm = (clientSecret: string) =>
      gateway.app.inject({
        method: 'POST',
        url: `/v1/payment_intents/${intent.id}/confirm`,
        headers: { 'idempotency-key': `confirm-${clientSecret}` },
        payload: { payment_method: 'pm_card_ok', client_secret: clientSecret },
      });
    expect((await confirm(`${intent.client_secret}x`)).statusCode).toBe(401);
    const confirmed = await confirm(intent.client_secret);
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json().status).toBe('succeeded');
  });

  it('cancels once: a second cancel answers the same intent and raises no second event', async () => {
    const { gateway, post, createIntent } = buildGateway();
    const intent = await createIntent();
    const first = await post(`/v1/payment_intents/${intent.id}/cancel`, {});
    const second = await post(`/v1/payment_intents/${intent.id}/cancel`, {});
    expect(first.json()).toMatchObject({ status: 'canceled' });
    expect(second.json()).toEqual(first.json());
    expect(gateway.listEvents().map((event) => event.type)).toEqual(['payment_intent.canceled']);
  });

  it('refuses to cancel a succeeded intent or confirm a cancelled one', async () => {
    const { gateway, post, createIntent } = buildGateway();
    const paid = await createIntent();
    await gateway.confirmIntent(paid.id, 'pm_card_ok');
    const cancel = await post(`/v1/payment_intents/${paid.id}/cancel`, {});
    expect(cancel.statusCode).toBe(400);
    expect(cancel.json().error.code).toBe('payment_intent_unexpected_state');
    const cancelled = await createIntent();
    await post(`/v1/payment_intents/${cancelled.id}/cancel`, {});
    await expect(gateway.confirmIntent(cancelled.id, 'pm_card_ok')).rejects.toThrow(
      /payment_intent_unexpected_state/,
    );
  });

  it('refunds partially up to the amount paid, and refuses more with amount_too_large', async () => {
    const { gateway, post, createIntent } = buildGateway();
    const intent = await createIntent(5000);
    const unpaid = await post('/v1/refunds', { payment_intent: intent.id, amount: 100 });
    expect(unpaid.statusCode).toBe(400);
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    const first = await post('/v1/refunds', { payment_intent: intent.id, amount: 3000, reason: 'admin' });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ payment_intent: intent.id, amount: 3000, status: 'succeeded' });
    expect(first.json().id).toMatch(/^re_/);
    const tooMuch = await post('/v1/refunds', { payment_intent: intent.id, amount: 2001 });
    expect(tooMuch.statusCode).toBe(400);
    expect(tooMuch.json().error.code).toBe('amount_too_large');
    const rest = await post('/v1/refunds', { payment_intent: intent.id, amount: 2000 });
    expect(rest.statusCode).toBe(200);
    const refundEvents = gateway.listEvents().filter((event) => event.type === 'refund.succeeded');
    expect(refundEvents.map((event) => (event.data.object as { amount: number }).amount)).toEqual([
      3000, 2000,
    ]);
    expect(refundEvents[0]?.data.object).toMatchObject({ metadata: { payment_id: 'p-1' } });
  });

  it('answers injected failures without acting, then serves normally', async () => {
    const { gateway, post } = buildGateway();
    gateway.failNextRequests(2, 503);
    const failed = await post('/v1/payment_intents', { amount: 100, currency: 'eur' });
    const failedAgain = await post('/v1/payment_intents', { amount: 100, currency: 'eur' });
    const served = await post('/v1/payment_intents', { amount: 100, currency: 'eur' });
    expect([failed.statusCode, failedAgain.statusCode, served.statusCode]).toEqual([503, 503, 200]);
  });
});

describe('simulated gateway webhooks', () => {
  it('signs each delivery so that the receiver can verify it', async () => {
    const { gateway, delivered, createIntent } = buildGateway();
    const intent = await createIntent();
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    const [result] = await gateway.deliverPending();
    expect(result).toMatchObject({ statusCode: 200, attempts: 1 });
    const [delivery] = delivered;
    if (delivery === undefined) throw new Error('nothing delivered');
    expect(delivery.headers['content-type']).toBe('application/json');
    const verdict = verifyGatewaySignature(
      webhookSecret,
      delivery.headers[GATEWAY_SIGNATURE_HEADER],
      delivery.body,
      {
        now: new Date(),
        toleranceSeconds: 300,
      },
    );
    expect(verdict.isValid).toBe(true);
    expect((JSON.parse(delivery.body) as GatewayEvent).type).toBe('payment_intent.succeeded');
    expect(gateway.listEvents()[0]).toMatchObject({ isDelivered: true, attempts: 1, lastStatusCode: 200 });
  });

  it('retries a delivery on non-2xx answers and thrown errors until one succeeds', async () => {
    let calls = 0;
    const { gateway, createIntent } = buildGateway({
      deliver: async () => {
        calls += 1;
        if (calls === 1) throw new Error('connection reset');
        return { statusCode: calls === 2 ? 503 : 200 };
      },
    });
    const intent = await createIntent();
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    const [result] = await gateway.deliverPending();
    expect(result).toMatchObject({ statusCode: 200, attempts: 3 });
  });

  it('gives up after deliveryAttempts and leaves the event pending for a later deliverPending', async () => {
    const { gateway, createIntent } = buildGateway({ deliveryAttempts: 2 }, [500, 500]);
    const intent = await createIntent();
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    expect(await gateway.deliverPending()).toMatchObject([{ statusCode: 500, attempts: 2 }]);
    expect(gateway.listEvents()[0]?.isDelivered).toBe(false);
    expect(await gateway.deliverPending()).toMatchObject([{ statusCode: 200, attempts: 1 }]);
    expect(await gateway.deliverPending()).toEqual([]);
  });

  it('delivers pending events in reverse order when asked, and redelivers one on demand', async () => {
    const { gateway, delivered, createIntent } = buildGateway();
    const intent = await createIntent();
    await gateway.confirmIntent(intent.id, 'pm_card_declined');
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    await gateway.deliverPending('reverse');
    const types = delivered.map((delivery) => (JSON.parse(delivery.body) as GatewayEvent).type);
    expect(types).toEqual(['payment_intent.succeeded', 'payment_intent.payment_failed']);
    const succeeded = gateway.listEvents()[1];
    if (succeeded === undefined) throw new Error('no event');
    await gateway.deliverEvent(succeeded.id);
    expect(delivered).toHaveLength(3);
    expect(delivered[2]?.body).toBe(delivered[0]?.body);
  });

  it('delivers by itself in auto mode, and idle() waits for it', async () => {
    const { gateway, delivered, createIntent } = buildGateway({ webhookMode: 'auto' }, [500]);
    const intent = await createIntent();
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    await gateway.idle();
    expect(delivered).toHaveLength(2);
    expect(gateway.listEvents()[0]).toMatchObject({ isDelivered: true, attempts: 2 });
  });

  it('serves over HTTP once listening, on the same URL however often asked', async () => {
    const { gateway } = buildGateway();
    const baseUrl = await gateway.listen();
    expect(await gateway.listen()).toBe(baseUrl);
    const response = await fetch(`${baseUrl}/v1/payment_intents/pi_missing`, { headers: { authorization } });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('resource_missing');
  });
});
