import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Database, sql } from '@keel/platform/db';
import { AppError } from '@keel/platform/errors';
import type { ServiceModule } from '@keel/platform/module';
import { type TestAppHarness, useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTelemedicineDependencies } from '../src/composition-root.ts';
import type { PaymentStatus, RefundReason, TelemedicineSchema } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import { signGatewayPayload } from '../src/payments/gateway-signature.ts';
import type { PaymentEventHandler, PaymentWebhookEvent } from '../src/payments/payment-provider.ts';
import { type PaymentsFeature, wirePayments } from '../src/payments/payments.wiring.ts';
import {
  insertSlots,
  signInDoctor,
  signInPatient,
  signInSupport,
  signInWithRoles,
  type TelemedicineCaller,
} from './fixtures.ts';
import { createGatewayForTests, PAYMENTS_WEBHOOK_URL } from './payments.fixtures.ts';

/**
 * The telemedicine module with only the payments feature wired, and a test
 * handler in the booking saga's place (`handle` is swapped per test).
 */
function buildPaymentsModule(options: { isHandlerRegistered: boolean }) {
  const state = {
    feature: undefined as PaymentsFeature | undefined,
    applied: [] as PaymentWebhookEvent[],
    handle: undefined as PaymentEventHandler | undefined,
  };
  const recordingHandler: PaymentEventHandler = async (trx, event) => {
    if (state.handle !== undefined) await state.handle(trx, event);
    state.applied.push(event);
  };
  const module: ServiceModule = {
    ...telemedicineModule,
    register: (app, context) => {
      state.feature = wirePayments(app, createTelemedicineDependencies(context));
      if (options.isHandlerRegistered) state.feature.handleEventsWith(recordingHandler);
    },
  };
  return { module, state, recordingHandler };
}

function featureOf(state: { feature: PaymentsFeature | undefined }): PaymentsFeature {
  if (state.feature === undefined) throw new Error('the payments feature was not wired');
  return state.feature;
}

function webhookEventsTable(harness: TestAppHarness) {
  return harness.testDb.database.typed<TelemedicineSchema>();
}

async function recordedEvents(harness: TestAppHarness, eventId: string) {
  return webhookEventsTable(harness).run((db) =>
    db
      .selectFrom('telemedicine.payment_webhook_events')
      .select(['provider', 'event_id', 'event_type'])
      .where('event_id', '=', eventId)
      .execute(),
  );
}

function buildEvent(overrides: { id?: string; type?: string; object?: Record<string, unknown> } = {}) {
  return {
    id: overrides.id ?? `evt_${randomUUID().replaceAll('-', '')}`,
    object: 'event',
    type: overrides.type ?? 'payment_intent.succeeded',
    created: Math.floor(Date.now() / 1000),
    data: {
      object: overrides.object ?? {
        id: `pi_${randomUUID().replaceAll('-', '')}`,
        object: 'payment_intent',
        status: 'succeeded',
        amount: 5000,
        currency: 'eur',
        metadata: { payment_id: randomUUID() },
        last_payment_error: null,
      },
    },
  };
}

function signedRequest(
  secret: string,
  body: string,
  options: { at?: Date; signature?: string } = {},
): InjectOptions {
  const timestamp = Math.floor((options.at ?? new Date()).getTime() / 1000);
  return {
    method: 'POST',
    url: PAYMENTS_WEBHOOK_URL,
    headers: {
      'content-type': 'application/json',
      'gateway-signature': options.signature ?? signGatewayPayload(secret, timestamp, body),
    },
    payload: body,
  };
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt += 1) await sleep(25);
  expect(condition()).toBe(true);
}

// A gateway at a URL known before the app is built, delivering only when told.
const payments = await createGatewayForTests({ webhookMode: 'manual', deliveryAttempts: 1 });
const { module, state } = buildPaymentsModule({ isHandlerRegistered: true });
const harness = useTestApp({ modules: [module], env: { ...payments.env, RATE_LIMIT_ENABLED: 'false' } });
const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const secret = payments.env.PAYMENTS_WEBHOOK_SECRET;

beforeAll(() => payments.start(harness.testApp.app));
afterAll(() => payments.stop());
afterEach(() => {
  state.handle = undefined;
});

describe('payments with a gateway at PAYMENTS_GATEWAY_URL', () => {
  describe('POST /telemedicine/payments/webhooks', () => {
    it('applies a gateway event once: the handler sees it parsed, and its id is recorded', async () => {
      const provider = featureOf(state).provider;
      expect(provider.name).toBe('gateway');
      const paymentId = randomUUID();
      const intent = await provider.createIntent({
        amountMinor: 4200,
        currency: 'EUR',
        idempotencyKey: randomUUID(),
        metadata: { payment_id: paymentId },
      });
      await payments.gateway.confirmIntent(intent.id, 'pm_card_ok');
      const [delivery] = await payments.gateway.deliverPending();
      expect(delivery).toMatchObject({ statusCode: 200, attempts: 1 });
      const applied = state.applied.filter((event) => event.intentId === intent.id);
      expect(applied).toEqual([
        expect.objectContaining({
          id: delivery?.eventId,
          type: 'payment_intent.succeeded',
          amountMinor: 4200,
          currency: 'EUR',
          metadata: { payment_id: paymentId },
        }),
      ]);
      expect(await recordedEvents(harness, delivery?.eventId ?? '')).toEqual([
        { provider: 'gateway', event_id: delivery?.eventId, event_type: 'payment_intent.succeeded' },
      ]);
    });

    it('answers duplicate: true to a redelivered event and does not call the handler again', async () => {
      const body = JSON.stringify(buildEvent());
      const first = await inject(signedRequest(secret, body));
      expect(first.statusCode, first.body).toBe(200);
      expect(first.json()).toEqual({ received: true, duplicate: false });
      const applied = state.applied.length;
      const second = await inject(signedRequest(secret, body));
      expect(second.statusCode).toBe(200);
      expect(second.json()).toEqual({ received: true, duplicate: true });
      expect(state.applied).toHaveLength(applied);
    });

    it('applies an event exactly once when the gateway delivers it many times at once', async () => {
      const event = buildEvent();
      const body = JSON.stringify(event);
      state.handle = async () => {
        await sleep(20);
      };
      const responses = await Promise.all(
        Array.from({ length: 8 }, () => inject(signedRequest(secret, body))),
      );
      expect(responses.map((response) => response.statusCode)).toEqual(Array(8).fill(200));
      expect(responses.filter((response) => response.json().duplicate === false)).toHaveLength(1);
      expect(state.applied.filter((applied) => applied.id === event.id)).toHaveLength(1);
      expect(await recordedEvents(harness, event.id)).toHaveLength(1);
    });

    it('refuses a bad signature, a missing one and a stale one with 400 and its code', async () => {
      const body = JSON.stringify(buildEvent());
      const cases: [InjectOptions, string][] = [
        [signedRequest('whsec_not_the_secret_0000000', body), 'payments.invalid_signature'],
        [
          { ...signedRequest(secret, body), headers: { 'content-type': 'application/json' } },
          'payments.invalid_signature',
        ],
        [signedRequest(secret, body, { signature: 't=1,v1=zz' }), 'payments.invalid_signature'],
        [signedRequest(secret, body, { at: new Date(Date.now() - 301_000) }), 'payments.stale_webhook'],
      ];
      for (const [request, code] of cases) {
        const response = await inject(request);
        expect(response.statusCode).toBe(400);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.json().code).toBe(code);
      }
      expect(state.applied.some((event) => body.includes(event.id))).toBe(false);
    });

    it('refuses a signed body that is not an event with 400 payments.invalid_webhook', async () => {
      for (const body of ['garbage', '{"id":"evt_x"}', '[]']) {
        const response = await inject(signedRequest(secret, body));
        expect(response.statusCode).toBe(400);
        expect(response.json().code).toBe('payments.invalid_webhook');
      }
    });

    it('refuses another content type with 415 and a body over 64 KiB with 413', async () => {
      const plain = await inject({
        ...signedRequest(secret, 'x'),
        headers: { 'content-type': 'text/plain' },
      });
      expect(plain.statusCode).toBe(415);
      const huge = JSON.stringify(buildEvent({ object: { padding: 'x'.repeat(70 * 1024) } }));
      const tooLarge = await inject(signedRequest(secret, huge));
      expect(tooLarge.statusCode).toBe(413);
      expect(tooLarge.json().code).toBe('request.body_too_large');
    });

    it('acknowledges an event type it does not handle without calling the handler or recording it', async () => {
      const event = buildEvent({ type: 'charge.dispute.created', object: { id: 'dp_1' } });
      const response = await inject(signedRequest(secret, JSON.stringify(event)));
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ received: true, duplicate: false });
      expect(await recordedEvents(harness, event.id)).toEqual([]);
    });

    it('answers a generic 500 and records nothing when the handler fails, so that a redelivery applies the event', async () => {
      const event = buildEvent();
      const body = JSON.stringify(event);
      state.handle = async (trx) => {
        // A write of the handler's own: it must roll back with the dedupe row.
        await trx
          .insertInto('telemedicine.payment_webhook_events')
          .values({ provider: 'handler-side', event_id: event.id, event_type: 'test' })
          .execute();
        throw new Error('connection to the ledger lost at 10.0.0.7');
      };
      const failed = await inject(signedRequest(secret, body));
      expect(failed.statusCode).toBe(500);
      expect(failed.json().code).toBe('payments.event_not_applied');
      expect(failed.body).not.toContain('10.0.0.7');
      expect(await recordedEvents(harness, event.id)).toEqual([]);

      state.handle = undefined;
      const retried = await inject(signedRequest(secret, body));
      expect(retried.json()).toEqual({ received: true, duplicate: false });
      expect(await recordedEvents(harness, event.id)).toHaveLength(1);
      expect(state.applied.filter((applied) => applied.id === event.id)).toHaveLength(1);
    });

    it('answers 503 when the handler says a dependency is unavailable, and the gateway retry applies the event', async () => {
      const provider = featureOf(state).provider;
      const intent = await provider.createIntent({
        amountMinor: 1000,
        currency: 'EUR',
        idempotencyKey: randomUUID(),
        metadata: {},
      });
      await payments.gateway.confirmIntent(intent.id, 'pm_card_ok');
      let failures = 1;
      state.handle = async () => {
        if (failures > 0) {
          failures -= 1;
          throw new AppError('unavailable', 'telemedicine.test_unavailable', 'try later');
        }
      };
      const [failed] = await payments.gateway.deliverPending();
      expect(failed).toMatchObject({ statusCode: 503, attempts: 1 });
      expect(await recordedEvents(harness, failed?.eventId ?? '')).toEqual([]);
      const [retried] = await payments.gateway.deliverPending();
      expect(retried).toMatchObject({ eventId: failed?.eventId, statusCode: 200 });
      expect(state.applied.filter((event) => event.intentId === intent.id)).toHaveLength(1);
    });

    it('applies events that arrive out of order, each once', async () => {
      const provider = featureOf(state).provider;
      const intent = await provider.createIntent({
        amountMinor: 3000,
        currency: 'EUR',
        idempotencyKey: randomUUID(),
        metadata: {},
      });
      await payments.gateway.confirmIntent(intent.id, 'pm_card_declined');
      await payments.gateway.confirmIntent(intent.id, 'pm_card_ok');
      await payments.gateway.deliverPending('reverse');
      const seen = state.applied.filter((event) => event.intentId === intent.id);
      expect(seen.map((event) => [event.type, event.failureCode])).toEqual([
        ['payment_intent.succeeded', null],
        ['payment_intent.payment_failed', 'card_declined'],
      ]);
      const succeeded = payments.gateway
        .listEvents()
        .find(
          (event) =>
            event.type === 'payment_intent.succeeded' &&
            (event.data.object as { id: string }).id === intent.id,
        );
      await payments.gateway.deliverEvent(succeeded?.id ?? '');
      expect(state.applied.filter((event) => event.intentId === intent.id)).toHaveLength(2);
    });
  });

  describe('GET /telemedicine/payments/{id} and /telemedicine/consultations/{id}/payment', () => {
    let patient: TelemedicineCaller;
    let otherPatient: TelemedicineCaller;
    let doctor: TelemedicineCaller;
    let support: TelemedicineCaller;
    let slotNumber = 0;

    beforeAll(async () => {
      const { database, security } = {
        database: harness.testDb.database,
        security: harness.testApp.security,
      };
      patient = await signInPatient(harness.testApp, database, security.fieldCrypto.encryption);
      otherPatient = await signInPatient(harness.testApp, database, security.fieldCrypto.encryption);
      doctor = await signInDoctor(harness.testApp, database);
      support = await signInSupport(harness.testApp);
    });

    async function insertPayment(
      database: Database,
      status: PaymentStatus,
      refunds: { amountMinor: number; reason: RefundReason }[] = [],
    ) {
      slotNumber += 1;
      const [slotId] = await insertSlots(database, doctor.account.id, {
        startsAt: new Date(Date.UTC(2031, 0, 1) + slotNumber * 3_600_000),
      });
      const consultationId = randomUUID();
      const paymentId = randomUUID();
      const db = database.typed<TelemedicineSchema>();
      await db.transaction(async (trx) => {
        await trx
          .insertInto('telemedicine.consultations')
          .values({
            id: consultationId,
            patient_id: patient.account.id,
            doctor_id: doctor.account.id,
            slot_id: slotId ?? '',
            status: 'SCHEDULED',
            starts_at: new Date('2031-01-01T09:00:00Z'),
            ends_at: new Date('2031-01-01T09:15:00Z'),
            fee_minor: 5000,
            currency: 'EUR',
            specialty: 'general practice',
            consent_version: 'v1',
            consented_at: new Date(),
          })
          .execute();
        await trx
          .insertInto('telemedicine.payments')
          .values({
            id: paymentId,
            consultation_id: consultationId,
            patient_id: patient.account.id,
            provider: 'gateway',
            provider_intent_id: `pi_${paymentId}`,
            client_secret: `pi_${paymentId}_secret_abc`,
            amount_minor: 5000,
            currency: 'EUR',
            status,
          })
          .execute();
        // A defaulted bigint column: set with SQL, as its insert type is the column default's.
        const refundedMinor = refunds.reduce((sum, refund) => sum + refund.amountMinor, 0);
        await sql`update telemedicine.payments set refunded_minor = ${refundedMinor} where id = ${paymentId}`.execute(
          trx,
        );
        for (const refund of refunds)
          await trx
            .insertInto('telemedicine.refunds')
            .values({
              id: randomUUID(),
              payment_id: paymentId,
              amount_minor: refund.amountMinor,
              reason: refund.reason,
              status: 'SUCCEEDED',
            })
            .execute();
      });
      return { consultationId, paymentId, clientSecret: `pi_${paymentId}_secret_abc` };
    }

    const get = (caller: TelemedicineCaller | undefined, url: string) =>
      inject({
        method: 'GET',
        url,
        headers: caller === undefined ? {} : { authorization: caller.authorization },
      });

    it('shows the patient their payment with the client secret while it awaits payment, not cacheable', async () => {
      const { paymentId, consultationId, clientSecret } = await insertPayment(
        harness.testDb.database,
        'REQUIRES_PAYMENT',
      );
      for (const url of [
        `/telemedicine/payments/${paymentId}`,
        `/telemedicine/consultations/${consultationId}/payment`,
      ]) {
        const response = await get(patient, url);
        expect(response.statusCode, response.body).toBe(200);
        expect(response.headers['cache-control']).toBe('no-store');
        expect(response.json()).toMatchObject({
          id: paymentId,
          consultation_id: consultationId,
          status: 'REQUIRES_PAYMENT',
          amount_minor: 5000,
          currency: 'EUR',
          refunded_minor: 0,
          client_secret: clientSecret,
          refunds: [],
        });
      }
    });

    it('withholds the client secret once paid, and lists refunds', async () => {
      const { paymentId } = await insertPayment(harness.testDb.database, 'PARTIALLY_REFUNDED', [
        { amountMinor: 2500, reason: 'patient_cancelled' },
      ]);
      const response = await get(patient, `/telemedicine/payments/${paymentId}`);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refunded_minor: 2500, client_secret: null });
      expect(body.refunds).toEqual([
        { id: expect.any(String), amount_minor: 2500, reason: 'patient_cancelled', status: 'SUCCEEDED' },
      ]);
      expect(Object.keys(body).sort()).toEqual(
        [
          'amount_minor',
          'client_secret',
          'consultation_id',
          'created_at',
          'currency',
          'id',
          'refunded_minor',
          'refunds',
          'status',
          'updated_at',
        ].sort(),
      );
    });

    it('shows support the payment without the client secret', async () => {
      const { paymentId, consultationId } = await insertPayment(harness.testDb.database, 'REQUIRES_PAYMENT');
      for (const url of [
        `/telemedicine/payments/${paymentId}`,
        `/telemedicine/consultations/${consultationId}/payment`,
      ]) {
        const response = await get(support, url);
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ id: paymentId, client_secret: null });
      }
    });

    it('answers 404 telemedicine.payment_not_found to the doctor, another patient, and for unknown ids', async () => {
      const { paymentId, consultationId } = await insertPayment(harness.testDb.database, 'SUCCEEDED');
      const cases: [TelemedicineCaller, string][] = [
        [doctor, `/telemedicine/payments/${paymentId}`],
        [doctor, `/telemedicine/consultations/${consultationId}/payment`],
        [otherPatient, `/telemedicine/payments/${paymentId}`],
        [otherPatient, `/telemedicine/consultations/${consultationId}/payment`],
        [patient, `/telemedicine/payments/${randomUUID()}`],
        [patient, `/telemedicine/consultations/${randomUUID()}/payment`],
      ];
      for (const [caller, url] of cases) {
        const response = await get(caller, url);
        expect(response.statusCode, url).toBe(404);
        expect(response.json().code).toBe('telemedicine.payment_not_found');
      }
    });

    it('refuses anonymous callers with 401, callers without read_consultations with 403, bad ids with 400', async () => {
      const { paymentId } = await insertPayment(harness.testDb.database, 'SUCCEEDED');
      const anonymous = await get(undefined, `/telemedicine/payments/${paymentId}`);
      expect(anonymous.statusCode).toBe(401);
      const outsider = await signInWithRoles(harness.testApp, []);
      const forbidden = await get(outsider, `/telemedicine/payments/${paymentId}`);
      expect(forbidden.statusCode).toBe(403);
      expect(forbidden.json().code).toBe('auth.forbidden');
      const malformed = await get(patient, '/telemedicine/payments/not-a-uuid');
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().code).toBe('request.invalid');
    });
  });
});

describe('payments without PAYMENTS_GATEWAY_URL (in-process simulated gateway)', () => {
  const webhookSecret = `whsec_in_process_${randomUUID()}`;
  const inProcess = buildPaymentsModule({ isHandlerRegistered: false });
  const inProcessHarness = useTestApp({
    modules: [inProcess.module],
    env: { PAYMENTS_WEBHOOK_SECRET: webhookSecret, RATE_LIMIT_ENABLED: 'false' },
  });

  it('answers 503 payments.events_not_handled, recording nothing, while no handler is registered', async () => {
    const event = buildEvent();
    const response = await inProcessHarness.testApp.app.inject(
      signedRequest(webhookSecret, JSON.stringify(event)),
    );
    expect(response.statusCode).toBe(503);
    expect(response.json().code).toBe('payments.events_not_handled');
    expect(await recordedEvents(inProcessHarness, event.id)).toEqual([]);
  });

  it('starts the gateway on first use and delivers its signed events to the route', async () => {
    const feature = featureOf(inProcess.state);
    feature.handleEventsWith(inProcess.recordingHandler);
    expect(() => feature.handleEventsWith(inProcess.recordingHandler)).toThrow(/already registered/);
    const intent = await feature.provider.createIntent({
      amountMinor: 2000,
      currency: 'EUR',
      idempotencyKey: randomUUID(),
      metadata: { payment_id: randomUUID() },
    });
    const started = inProcessHarness.testApp.logs
      .lines()
      .find((line) => line.msg === 'simulated payment gateway listening (not for production)');
    const baseUrl = String(started?.baseUrl);
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    // The payer's client confirms with the client secret, as a browser would.
    const confirmed = await fetch(`${baseUrl}/v1/payment_intents/${intent.id}/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify({ payment_method: 'pm_card_ok', client_secret: intent.clientSecret }),
    });
    expect(confirmed.status).toBe(200);
    await waitFor(() => inProcess.state.applied.some((event) => event.intentId === intent.id));
    const [applied] = inProcess.state.applied;
    expect(applied).toMatchObject({ type: 'payment_intent.succeeded', amountMinor: 2000 });
    expect(await recordedEvents(inProcessHarness, applied?.id ?? '')).toHaveLength(1);
  });
});
