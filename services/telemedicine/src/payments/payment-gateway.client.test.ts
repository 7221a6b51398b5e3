import { randomUUID } from 'node:crypto';
import { isAppError } from '@keel/platform/errors';
import { systemClock } from '@keel/platform/module';
import { createLogger } from '@keel/platform/observability';
import { captureLogs, findFreePort } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPaymentGatewayClient, type PaymentGatewayClientOptions } from './payment-gateway.client.ts';
import { createSimulatedGateway } from './simulated-gateway/simulated-gateway.ts';

const apiKey = `sk_test_${randomUUID()}`;
const gateway = createSimulatedGateway({
  apiKey,
  webhookSecret: 'whsec_client_tests_0123456789',
  clock: systemClock,
  webhookMode: 'manual',
  deliver: async () => ({ statusCode: 200 }),
});
const { stream, logs } = captureLogs();
const logger = createLogger({ level: 'debug', destination: stream });
let baseUrl: string;

beforeAll(async () => {
  baseUrl = await gateway.listen();
});
afterAll(() => gateway.close());

type Call = { url: string; status: number | null; isReplayed: boolean; idempotencyKey: string | null };

/** A client over a fetch that records each request it makes and how it ended. */
function buildClient(overrides: Partial<PaymentGatewayClientOptions> = {}) {
  const calls: Call[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    const call: Call = {
      url: String(input),
      status: null,
      isReplayed: false,
      idempotencyKey: headers.get('idempotency-key'),
    };
    calls.push(call);
    const response = await fetch(input, init);
    call.status = response.status;
    call.isReplayed = response.headers.get('idempotent-replayed') === 'true';
    return response;
  };
  const client = createPaymentGatewayClient({
    baseUrl,
    apiKey,
    timeoutMs: 2000,
    fetch: recordingFetch,
    logger,
    resilience: { initialDelayMs: 1, maxDelayMs: 5, breakerThreshold: 50, halfOpenAfterMs: 60_000 },
    ...overrides,
  });
  return { client, calls };
}

function intentInput(overrides: { idempotencyKey?: string; amountMinor?: number } = {}) {
  return {
    amountMinor: overrides.amountMinor ?? 5000,
    currency: 'EUR',
    idempotencyKey: overrides.idempotencyKey ?? randomUUID(),
    metadata: { payment_id: randomUUID() },
  };
}

async function failureOf(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isAppError(error)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

describe('createPaymentGatewayClient', () => {
  it('creates an intent, and a retried create with the same key returns the same intent', async () => {
    const { client, calls } = buildClient();
    const input = intentInput();
    const intent = await client.createIntent(input);
    expect(client.name).toBe('gateway');
    expect(intent).toMatchObject({ status: 'requires_payment', amountMinor: 5000, currency: 'EUR' });
    expect(intent.clientSecret).toMatch(new RegExp(`^${intent.id}_secret_`));
    const again = await client.createIntent(input);
    expect(again).toEqual(intent);
    expect(calls.map((call) => [call.idempotencyKey, call.isReplayed])).toEqual([
      [input.idempotencyKey, false],
      [input.idempotencyKey, true],
    ]);
  });

  it('cancels an intent, and cancelling again answers the same cancelled intent', async () => {
    const { client } = buildClient();
    const intent = await client.createIntent(intentInput());
    const cancelled = await client.cancelIntent(intent.id, { idempotencyKey: randomUUID() });
    expect(cancelled).toMatchObject({ id: intent.id, status: 'cancelled' });
    expect(await client.cancelIntent(intent.id, { idempotencyKey: randomUUID() })).toEqual(cancelled);
  });

  it('refunds part of a paid intent', async () => {
    const { client } = buildClient();
    const intent = await client.createIntent(intentInput());
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    const refund = await client.refund({
      intentId: intent.id,
      amountMinor: 2500,
      idempotencyKey: randomUUID(),
      reason: 'patient_cancelled',
    });
    expect(refund).toMatchObject({ intentId: intent.id, amountMinor: 2500, status: 'succeeded' });
    expect(refund.id).toMatch(/^re_/);
  });

  it('refuses with payments.gateway_refused, without retrying, when the gateway answers 4xx', async () => {
    const { client, calls } = buildClient();
    const intent = await client.createIntent(intentInput({ amountMinor: 1000 }));
    await gateway.confirmIntent(intent.id, 'pm_card_ok');
    calls.length = 0;
    const tooMuch = await failureOf(
      client.refund({
        intentId: intent.id,
        amountMinor: 1001,
        idempotencyKey: randomUUID(),
        reason: 'admin',
      }),
    );
    expect(tooMuch).toMatchObject({ kind: 'unprocessable', code: 'payments.gateway_refused' });
    expect(tooMuch.extensions).toEqual({ gateway_code: 'amount_too_large' });
    const cancelPaid = await failureOf(client.cancelIntent(intent.id, { idempotencyKey: randomUUID() }));
    expect(cancelPaid.code).toBe('payments.gateway_refused');
    gateway.failNextRequests(1, 400);
    const refused = await failureOf(client.createIntent(intentInput()));
    expect(refused.code).toBe('payments.gateway_refused');
    expect(calls.map((call) => call.status)).toEqual([400, 400, 400]);
  });

  it('refuses with payments.gateway_refused when its API key is wrong', async () => {
    const { client } = buildClient({ apiKey: 'sk_test_not_the_key' });
    const error = await failureOf(client.createIntent(intentInput()));
    expect(error.code).toBe('payments.gateway_refused');
  });

  it('retries injected 500s, 503s and 429s with the same key, then succeeds', async () => {
    const { client, calls } = buildClient({
      resilience: { maxAttempts: 4, initialDelayMs: 1, maxDelayMs: 5 },
    });
    gateway.failNextRequests(2, 500);
    const input = intentInput();
    const intent = await client.createIntent(input);
    expect(intent.status).toBe('requires_payment');
    expect(calls.map((call) => call.status)).toEqual([500, 500, 200]);
    expect(new Set(calls.map((call) => call.idempotencyKey))).toEqual(new Set([input.idempotencyKey]));
    calls.length = 0;
    gateway.failNextRequests(1, 429);
    await client.cancelIntent(intent.id, { idempotencyKey: randomUUID() });
    expect(calls.map((call) => call.status)).toEqual([429, 200]);
  });

  it('retries after a timeout, and the retry gets the intent the slow attempt created', async () => {
    const { client, calls } = buildClient({ timeoutMs: 150 });
    gateway.delayNextRequests(1, 2000);
    const intent = await client.createIntent(intentInput());
    expect(intent.status).toBe('requires_payment');
    // The first attempt was carried out but its answer came too late; the
    // retry, with the same key, is answered from the gateway's stored response.
    expect(calls.map((call) => [call.status, call.isReplayed])).toEqual([
      [null, false],
      [200, true],
    ]);
  });

  it('fails with payments.gateway_unavailable once its attempts are spent', async () => {
    const { client, calls } = buildClient({
      resilience: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
    });
    gateway.failNextRequests(3, 503);
    const error = await failureOf(client.createIntent(intentInput()));
    expect(error).toMatchObject({ kind: 'unavailable', code: 'payments.gateway_unavailable' });
    expect(calls.map((call) => call.status)).toEqual([503, 503, 503]);
  });

  it('fails with payments.gateway_unavailable when nothing listens', async () => {
    const port = await findFreePort();
    const { client, calls } = buildClient({ baseUrl: `http://127.0.0.1:${port}` });
    const error = await failureOf(client.createIntent(intentInput()));
    expect(error.code).toBe('payments.gateway_unavailable');
    expect(calls).toHaveLength(3);
  });

  it('opens its breaker after consecutive outages and then fails fast without calling the gateway', async () => {
    const { client, calls } = buildClient({
      resilience: {
        maxAttempts: 2,
        breakerThreshold: 3,
        halfOpenAfterMs: 60_000,
        initialDelayMs: 1,
        maxDelayMs: 5,
      },
    });
    gateway.failNextRequests(100, 503);
    try {
      await failureOf(client.createIntent(intentInput()));
      await failureOf(client.createIntent(intentInput()));
      expect(calls).toHaveLength(3);
      const error = await failureOf(client.createIntent(intentInput()));
      expect(error).toMatchObject({ kind: 'unavailable', code: 'payments.gateway_unavailable' });
      expect(error.retryAfterSeconds).toBeGreaterThan(0);
      expect(calls).toHaveLength(3);
    } finally {
      gateway.failNextRequests(0, 500);
    }
  });

  it('never logs the API key or a client secret', async () => {
    const { client } = buildClient();
    gateway.failNextRequests(1, 500);
    const intent = await client.createIntent(intentInput());
    await failureOf(client.cancelIntent('pi_missing', { idempotencyKey: randomUUID() }));
    expect(logs.text()).toContain('payment gateway call failed; retrying');
    expect(logs.text()).not.toContain(apiKey);
    expect(logs.text()).not.toContain(intent.clientSecret);
  });
});
