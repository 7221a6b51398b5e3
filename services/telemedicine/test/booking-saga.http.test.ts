import { randomUUID } from 'node:crypto';
import {
  ConsultationBookedV1,
  ConsultationCancelledV1,
  ConsultationConfirmedV1,
  ConsultationExpiredV1,
  PaymentSucceededV1,
  RefundIssuedV1,
} from '@keel/contracts';
import type { JobContext } from '@keel/platform/jobs';
import type { Clock } from '@keel/platform/module';
import { useTestApp } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CANCEL_PAYMENT_INTENT_QUEUE,
  CREATE_PAYMENT_INTENT_QUEUE,
  EXPIRE_HOLD_QUEUE,
  ISSUE_REFUND_QUEUE,
  STUCK_PAYMENT_AFTER_SECONDS,
} from '../src/booking/booking.ts';
import type { SagaDependencies } from '../src/booking/booking-saga.ts';
import { createCreatePaymentIntentJob } from '../src/booking/create-payment-intent.job.ts';
import { createExpireHoldJob } from '../src/booking/expire-hold.job.ts';
import { createSweepExpiredHoldsJob } from '../src/booking/sweep-expired-holds.job.ts';
import type { TelemedicineSchema } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import { createPaymentGatewayClient } from '../src/payments/payment-gateway.client.ts';
import type { PaymentProvider } from '../src/payments/payment-provider.ts';
import type { GatewayPaymentMethod } from '../src/payments/simulated-gateway/gateway-ledger.ts';
import {
  bookingRequest,
  bookOk,
  cancelAs,
  consultationRow,
  countEvents,
  countRows,
  eventually,
  paymentOf,
  postBooking,
  refundsOf,
  slotRow,
} from './booking.fixtures.ts';
import {
  insertSlots,
  nextDayAtUtc,
  signInDoctor,
  signInPatient,
  signInTelemedicineAdmin,
} from './fixtures.ts';
import { createGatewayForTests } from './payments.fixtures.ts';

// The saga end to end: bookings through the API, the real simulated gateway
// over HTTP, its signed webhooks delivered into the app by hand (manual mode,
// so tests choose when, how often and in which order), and the saga's jobs on
// the test app's pg-boss workers. The clock moves only where the hold must run out.

const HOLD_MINUTES = 5;
let nowMs = Date.now();
const clock: Clock = { now: () => new Date(nowMs) };
const payments = await createGatewayForTests({ clock, webhookMode: 'manual' });
const harness = useTestApp({
  modules: [telemedicineModule],
  clock,
  env: { RATE_LIMIT_ENABLED: 'false', TELEMEDICINE_HOLD_MINUTES: String(HOLD_MINUTES), ...payments.env },
});
beforeAll(() => payments.start(harness.testApp.app));
afterAll(() => payments.stop());

const FEE = 5000;

function database() {
  return harness.testDb.database;
}

function sagaDependencies(): SagaDependencies {
  return {
    clock,
    ids: { uuid: randomUUID },
    jobs: harness.testApp.background.registry.jobs,
    logger: harness.testApp.logger,
  };
}

/** A client of the same gateway as the app's, for running a job handler by hand. */
function gatewayClient(): PaymentProvider {
  return createPaymentGatewayClient({
    baseUrl: payments.env.PAYMENTS_GATEWAY_URL,
    apiKey: payments.env.PAYMENTS_API_KEY,
    timeoutMs: 5000,
    fetch: globalThis.fetch,
    logger: harness.testApp.logger,
  });
}

function jobContext<Payload>(name: string, data: Payload): JobContext<Payload> {
  return { id: randomUUID(), name, data, retryCount: 0, signal: new AbortController().signal };
}

async function runExpireHold(consultationId: string): Promise<void> {
  const job = createExpireHoldJob({ ...sagaDependencies(), db: database().typed<TelemedicineSchema>() });
  await job.handler(jobContext(job.name, { consultationId }));
}

async function runSweeper(): Promise<void> {
  const job = createSweepExpiredHoldsJob({
    ...sagaDependencies(),
    db: database().typed<TelemedicineSchema>(),
  });
  await job.handler(jobContext(job.name, {}));
}

async function runCreateIntent(paymentId: string): Promise<void> {
  const job = createCreatePaymentIntentJob({
    ...sagaDependencies(),
    db: database().typed<TelemedicineSchema>(),
    provider: gatewayClient(),
  });
  await job.handler(jobContext(job.name, { paymentId }));
}

/** Intent jobs of this payment in pg-boss, in any state. */
function intentJobsFor(paymentId: string): Promise<number> {
  return countRows(
    database(),
    `select count(*) as value from pgboss.job where name = $1 and data->>'paymentId' = $2`,
    [CREATE_PAYMENT_INTENT_QUEUE, paymentId],
  );
}

/** Hold-expiry jobs queued for this consultation, in any state. */
function expiryJobsFor(consultationId: string): Promise<number> {
  return countRows(
    database(),
    'select count(*) as value from pgboss.job where name = $1 and singleton_key = $2',
    [EXPIRE_HOLD_QUEUE, consultationId],
  );
}

/** Clinical-access entries recording a write of this consultation. */
function clinicalWritesOf(consultationId: string): Promise<number> {
  return countRows(
    database(),
    `select count(*) as value from platform.audit_events
     where action = 'telemedicine.consultation_written' and changes->>'resource_id' = $1`,
    [consultationId],
  );
}

async function nextAvailableAt(doctorId: string): Promise<Date | null> {
  const result = await database().pool.query<{ next_available_at: Date | null }>(
    'select next_available_at from telemedicine.doctors where id = $1',
    [doctorId],
  );
  return result.rows[0]?.next_available_at ?? null;
}

/** The payer confirms at the gateway; the webhooks it raised are then delivered, once each. */
async function pay(intentId: string | null, method: GatewayPaymentMethod = 'pm_card_ok'): Promise<void> {
  if (intentId === null) throw new Error('the booking has no payment intent');
  await payments.gateway.confirmIntent(intentId, method);
  await deliverAll();
}

async function deliverAll(order: 'created' | 'reverse' = 'created'): Promise<void> {
  const results = await payments.gateway.deliverPending(order);
  for (const result of results) expect(result.statusCode, `webhook ${result.eventId}`).toBe(200);
}

/**
 * Waits until the saga's due jobs that call the gateway (intent cancels,
 * refunds) have run, so that a test injecting gateway faults is the only
 * caller (pg-boss's own table: the jobs API has no queue statistics).
 */
async function gatewayJobsIdle(): Promise<void> {
  await eventually(
    () =>
      countRows(
        database(),
        `select count(*) as value from pgboss.job
         where name = any($1) and state in ('created', 'retry', 'active') and start_after <= now()`,
        [[CANCEL_PAYMENT_INTENT_QUEUE, ISSUE_REFUND_QUEUE]],
      ),
    (count) => count === 0,
  );
}

function intentOfSecret(clientSecret: string | null): string | null {
  // The simulated gateway's secrets are `<intent id>_secret_<random>`.
  return clientSecret === null ? null : (clientSecret.split('_secret_')[0] ?? null);
}

function gatewayRefunds(intentId: string) {
  return payments.gateway
    .listEvents()
    .filter(
      (event) =>
        event.type === 'refund.succeeded' &&
        (event.data.object as { payment_intent?: string }).payment_intent === intentId,
    );
}

/** A verified doctor with `count` open slots starting `startsAt` (default: three days ahead). */
async function doctorWithSlots(count = 1, startsAt: Date = nextDayAtUtc(9, 3)) {
  const doctor = await signInDoctor(harness.testApp, database(), { feeMinor: FEE, currency: 'EUR' });
  const slots = await insertSlots(database(), doctor.account.id, { startsAt, count, minutes: 30 });
  return { doctor, slots };
}

function signInBookingPatient() {
  return signInPatient(harness.testApp, database(), harness.testApp.security.fieldCrypto.encryption);
}

function requireSlot(slots: string[], index = 0): string {
  const slot = slots[index];
  if (slot === undefined) throw new Error('fixture slot missing');
  return slot;
}

describe('booking', () => {
  it('holds the slot, records consent and answers with a payable intent when a patient books', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    const key = randomUUID();

    const response = await postBooking(harness.testApp, patient, bookingRequest(slotId), key);

    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(response.headers.location).toBe(`/telemedicine/consultations/${body.consultation.id}`);
    expect(body.consultation).toMatchObject({
      status: 'PENDING_PAYMENT',
      slot_id: slotId,
      fee_minor: FEE,
      currency: 'EUR',
      specialty: 'general practice',
    });
    // The stored (replayable) response carries no clinical content.
    expect(body.consultation).not.toHaveProperty('reason');
    expect(body.payment).toMatchObject({ status: 'REQUIRES_PAYMENT', amount_minor: FEE, currency: 'EUR' });
    expect(body.payment.client_secret).toEqual(expect.any(String));
    expect(body.hold_expires_at).toBe(new Date(nowMs + HOLD_MINUTES * 60_000).toISOString());

    expect(await slotRow(database(), slotId)).toMatchObject({ status: 'HELD' });
    const row = await consultationRow(database(), body.consultation.id);
    expect(row.reason).toMatch(/^kv1\./);
    expect(
      await countRows(
        database(),
        'select count(*) as value from telemedicine.consents where consultation_id = $1',
        [body.consultation.id],
      ),
    ).toBe(2);
    expect(await countEvents(database(), body.consultation.id, ConsultationBookedV1.type)).toBe(1);
    const intent = payments.gateway.findIntent(intentOfSecret(body.payment.client_secret) ?? '');
    expect(intent).toMatchObject({ amount: FEE, currency: 'eur', status: 'requires_payment' });
    expect(intent?.metadata).toEqual({ consultation_id: body.consultation.id, payment_id: body.payment.id });
    // The reason is clinical data: its write is in the patient's access log.
    expect(await clinicalWritesOf(body.consultation.id)).toBe(1);
    // The hold's expiry is queued, due when the hold runs out.
    expect(await expiryJobsFor(body.consultation.id)).toBe(1);

    // The key replays exactly what the booking answered, client secret included.
    const replay = await postBooking(harness.testApp, patient, bookingRequest(slotId), key);
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(body);
  });

  it('writes no access-log entry for a booking without a reason', async () => {
    const { slots } = await doctorWithSlots();
    const { reason: _, ...withoutReason } = bookingRequest(requireSlot(slots));

    const response = await postBooking(harness.testApp, await signInBookingPatient(), withoutReason);

    expect(response.statusCode, response.body).toBe(201);
    expect(await clinicalWritesOf(response.json().consultation.id)).toBe(0);
  });

  it("moves the doctor's next available time past the slot it holds, and back when the hold is released", async () => {
    const startsAt = nextDayAtUtc(9, 3);
    const { doctor, slots } = await doctorWithSlots(2, startsAt);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots));

    // The second slot starts 30 minutes after the first.
    expect(await nextAvailableAt(doctor.account.id)).toEqual(new Date(startsAt.getTime() + 30 * 60_000));

    nowMs += (HOLD_MINUTES + 1) * 60_000;
    await runExpireHold(booking.consultation.id);
    expect(await nextAvailableAt(doctor.account.id)).toEqual(startsAt);
  });

  it('answers with the booking as it is when the hold runs out while the gateway makes the intent', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    const key = randomUUID();
    await gatewayJobsIdle();
    payments.gateway.delayNextRequests(1, 1500);

    const booking = postBooking(harness.testApp, patient, bookingRequest(slotId), key);
    // Step 1 has committed and the request now waits for the gateway: the hold runs out.
    const consultationId = await eventually(
      async () =>
        (
          await database().pool.query<{ id: string }>(
            'select id from telemedicine.consultations where slot_id = $1',
            [slotId],
          )
        ).rows[0]?.id,
      (id) => id !== undefined,
    );
    nowMs += (HOLD_MINUTES + 1) * 60_000;
    await runExpireHold(consultationId ?? '');
    const response = await booking;

    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body.consultation).toMatchObject({ id: consultationId, status: 'EXPIRED' });
    expect(body.payment).toMatchObject({ status: 'CANCELLED' });
    expect(await slotRow(database(), slotId)).toEqual({ status: 'OPEN', hold_expires_at: null });
    // The intent made meanwhile must not take money: it is cancelled at the gateway.
    const intentId = (await paymentOf(database(), consultationId ?? '')).provider_intent_id ?? '';
    await eventually(
      async () => payments.gateway.findIntent(intentId)?.status,
      (status) => status === 'canceled',
    );
    const replay = await postBooking(harness.testApp, patient, bookingRequest(slotId), key);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(body);
  });

  it('schedules the consultation and books the slot when the payment succeeds', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), slotId);

    await pay(intentOfSecret(booking.payment.client_secret));

    const row = await consultationRow(database(), booking.consultation.id);
    expect(row).toMatchObject({ status: 'SCHEDULED', hold_expires_at: null, version: 2 });
    expect(await slotRow(database(), slotId)).toEqual({ status: 'BOOKED', hold_expires_at: null });
    expect(await paymentOf(database(), booking.consultation.id)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await countEvents(database(), booking.consultation.id, ConsultationConfirmedV1.type)).toBe(1);
    expect(await countEvents(database(), booking.consultation.id, PaymentSucceededV1.type)).toBe(1);
  });

  it('expires the booking and reopens the slot for others when the card is declined', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), slotId);

    await pay(intentOfSecret(booking.payment.client_secret), 'pm_card_declined');

    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({
      status: 'EXPIRED',
      expired_reason: 'payment_failed',
      hold_expires_at: null,
    });
    expect(await slotRow(database(), slotId)).toEqual({ status: 'OPEN', hold_expires_at: null });
    expect(await paymentOf(database(), booking.consultation.id)).toMatchObject({
      status: 'FAILED',
      failure_code: 'card_declined',
    });
    expect(await countEvents(database(), booking.consultation.id, ConsultationExpiredV1.type)).toBe(1);

    const second = await bookOk(harness.testApp, await signInBookingPatient(), slotId);
    expect(second.consultation.status).toBe('PENDING_PAYMENT');
  });

  it('expires the hold, reopens the slot and cancels the intent at the gateway when the hold runs out', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), slotId);
    const intentId = intentOfSecret(booking.payment.client_secret) ?? '';

    nowMs += (HOLD_MINUTES + 1) * 60_000;
    await runExpireHold(booking.consultation.id);

    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({
      status: 'EXPIRED',
      expired_reason: 'hold_expired',
    });
    expect(await slotRow(database(), slotId)).toEqual({ status: 'OPEN', hold_expires_at: null });
    expect(await paymentOf(database(), booking.consultation.id)).toMatchObject({ status: 'CANCELLED' });
    expect(await countEvents(database(), booking.consultation.id, ConsultationExpiredV1.type)).toBe(1);
    // The compensation reaches the gateway through the cancel-intent job.
    await eventually(
      async () => payments.gateway.findIntent(intentId)?.status,
      (status) => status === 'canceled',
    );

    // A second run (a retried job) changes nothing.
    await runExpireHold(booking.consultation.id);
    expect(await countEvents(database(), booking.consultation.id, ConsultationExpiredV1.type)).toBe(1);
  });

  it('leaves the hold alone when its expiry job runs before the hold is over', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), slotId);

    await runExpireHold(booking.consultation.id);

    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({
      status: 'PENDING_PAYMENT',
    });
    expect(await slotRow(database(), slotId)).toMatchObject({ status: 'HELD' });
  });

  it('expires every overdue hold when the sweeper runs', async () => {
    const { slots } = await doctorWithSlots(2);
    const first = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots, 0));
    const second = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots, 1));

    nowMs += (HOLD_MINUTES + 1) * 60_000;
    await runSweeper();

    for (const booking of [first, second]) {
      expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({
        status: 'EXPIRED',
        expired_reason: 'hold_expired',
      });
      expect(await slotRow(database(), booking.consultation.slot_id)).toMatchObject({ status: 'OPEN' });
    }
  });

  it('applies a payment webhook once when the gateway delivers it twice', async () => {
    const { slots } = await doctorWithSlots();
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots));
    const intentId = intentOfSecret(booking.payment.client_secret) ?? '';
    await pay(intentId);
    const succeeded = payments.gateway
      .listEvents()
      .find(
        (event) =>
          event.type === 'payment_intent.succeeded' && (event.data.object as { id: string }).id === intentId,
      );
    if (succeeded === undefined) throw new Error('no success event');

    const again = await payments.gateway.deliverEvent(succeeded.id);

    expect(again.statusCode).toBe(200);
    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({
      status: 'SCHEDULED',
      version: 2,
    });
    expect(await countEvents(database(), booking.consultation.id, ConsultationConfirmedV1.type)).toBe(1);
    expect(await countEvents(database(), booking.consultation.id, PaymentSucceededV1.type)).toBe(1);
  });

  it('stays SCHEDULED when the failure of an earlier attempt arrives after the success', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), slotId);
    const intentId = intentOfSecret(booking.payment.client_secret) ?? '';
    // A declined card, then a good one: two events, delivered newest first.
    await payments.gateway.confirmIntent(intentId, 'pm_card_declined');
    await payments.gateway.confirmIntent(intentId, 'pm_card_ok');

    await deliverAll('reverse');

    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({ status: 'SCHEDULED' });
    expect(await slotRow(database(), slotId)).toMatchObject({ status: 'BOOKED' });
    expect(await paymentOf(database(), booking.consultation.id)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await countEvents(database(), booking.consultation.id, ConsultationExpiredV1.type)).toBe(0);
  });

  it('refunds the payment in full when it succeeds after the hold expired', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), slotId);
    const intentId = intentOfSecret(booking.payment.client_secret) ?? '';
    // The payer pays in time, but the webhook is held up past the hold.
    await payments.gateway.confirmIntent(intentId, 'pm_card_ok');
    nowMs += (HOLD_MINUTES + 1) * 60_000;
    await runExpireHold(booking.consultation.id);

    await deliverAll();

    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({ status: 'EXPIRED' });
    expect(await slotRow(database(), slotId)).toMatchObject({ status: 'OPEN' });
    const payment = await eventually(
      () => paymentOf(database(), booking.consultation.id),
      (row) => row.status === 'REFUNDED',
    );
    expect(payment.refunded_minor).toBe(FEE);
    expect(await refundsOf(database(), payment.id)).toEqual([
      expect.objectContaining({ amount_minor: FEE, reason: 'late_payment', status: 'SUCCEEDED' }),
    ]);
    expect(gatewayRefunds(intentId)).toHaveLength(1);
    expect(payments.gateway.findIntent(intentId)?.amount_refunded).toBe(FEE);
    expect(await countEvents(database(), booking.consultation.id, RefundIssuedV1.type)).toBe(1);
  });

  it('creates the intent in the background when the gateway is down at booking time', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    // As many failures as the client's attempts: the inline attempt gives up.
    await gatewayJobsIdle();
    payments.gateway.failNextRequests(3, 503);

    const response = await postBooking(harness.testApp, patient, bookingRequest(slotId));

    expect(response.statusCode, response.body).toBe(201);
    const booking = response.json();
    expect(booking.payment).toMatchObject({ status: 'CREATING', client_secret: null });
    expect(await slotRow(database(), slotId)).toMatchObject({ status: 'HELD' });
    // The failed inline attempt queued the retry in the booking's last transaction.
    expect(await intentJobsFor(booking.payment.id)).toBe(1);

    await runCreateIntent(booking.payment.id);

    const payment = await paymentOf(database(), booking.consultation.id);
    expect(payment.status).toBe('REQUIRES_PAYMENT');
    await pay(payment.provider_intent_id);
    expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({ status: 'SCHEDULED' });
  });

  it('queues no intent job when the inline attempt made the intent', async () => {
    const { slots } = await doctorWithSlots();
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots));

    expect(booking.payment.status).toBe('REQUIRES_PAYMENT');
    expect(await intentJobsFor(booking.payment.id)).toBe(0);
  });

  it('hands a payment left without an intent and without a retry to the intent job from the sweeper', async () => {
    const { slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    await gatewayJobsIdle();
    payments.gateway.failNextRequests(3, 503);
    const booking = (await postBooking(harness.testApp, patient, bookingRequest(requireSlot(slots)))).json();
    // As if the process had died between the booking's commit and the gateway: no retry queued.
    await database().pool.query(`delete from pgboss.job where name = $1 and data->>'paymentId' = $2`, [
      CREATE_PAYMENT_INTENT_QUEUE,
      booking.payment.id,
    ]);

    await runSweeper();
    expect(await intentJobsFor(booking.payment.id)).toBe(0);

    nowMs += (STUCK_PAYMENT_AFTER_SECONDS + 1) * 1000;
    await runSweeper();
    await runSweeper();
    expect(await intentJobsFor(booking.payment.id)).toBe(1);

    await runCreateIntent(booking.payment.id);
    expect((await paymentOf(database(), booking.consultation.id)).status).toBe('REQUIRES_PAYMENT');
  });

  it('acknowledges and ignores a payment event for an intent it does not know', async () => {
    const response = await fetch(`${payments.env.PAYMENTS_GATEWAY_URL}/v1/payment_intents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${payments.env.PAYMENTS_API_KEY}`,
        'content-type': 'application/json',
        'idempotency-key': randomUUID(),
      },
      body: JSON.stringify({ amount: 1200, currency: 'eur', metadata: { order: 'elsewhere' } }),
    });
    const intent = (await response.json()) as { id: string };

    await pay(intent.id);

    expect(
      await countRows(
        database(),
        'select count(*) as value from telemedicine.payments where provider_intent_id = $1',
        [intent.id],
      ),
    ).toBe(0);
  });
});

describe('cancellation', () => {
  async function paidBooking(startsAt?: Date) {
    const { doctor, slots } = await doctorWithSlots(1, startsAt);
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, slotId);
    const intentId = intentOfSecret(booking.payment.client_secret) ?? '';
    await pay(intentId);
    return { doctor, patient, slotId, booking, intentId };
  }

  async function expectRefunded(consultationId: string, intentId: string, amount: number, reason: string) {
    const payment = await eventually(
      () => paymentOf(database(), consultationId),
      (row) => row.refunded_minor > 0,
    );
    expect(payment).toMatchObject({
      status: amount === FEE ? 'REFUNDED' : 'PARTIALLY_REFUNDED',
      refunded_minor: amount,
    });
    expect(await refundsOf(database(), payment.id)).toEqual([
      expect.objectContaining({ amount_minor: amount, reason, status: 'SUCCEEDED' }),
    ]);
    // The gateway refunded once, that amount.
    expect(gatewayRefunds(intentId)).toHaveLength(1);
    expect(payments.gateway.findIntent(intentId)?.amount_refunded).toBe(amount);
    expect(await countEvents(database(), consultationId, RefundIssuedV1.type)).toBe(1);
  }

  it('refunds in full and reopens the slot when the patient cancels at least 24 hours ahead', async () => {
    const { patient, slotId, booking, intentId } = await paidBooking();

    const response = await cancelAs(harness.testApp, patient, booking.consultation.id, {
      reason: 'Feeling better',
    });

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      consultation: { status: 'CANCELLED', cancelled_by: 'patient', cancel_reason: 'Feeling better' },
      refund_minor: FEE,
    });
    expect(await slotRow(database(), slotId)).toEqual({ status: 'OPEN', hold_expires_at: null });
    expect(await countEvents(database(), booking.consultation.id, ConsultationCancelledV1.type)).toBe(1);
    await expectRefunded(booking.consultation.id, intentId, FEE, 'patient_cancelled');
  });

  it('refunds the late percentage when the patient cancels within 24 hours of the start', async () => {
    const soon = new Date(Math.ceil((nowMs + 3 * 3_600_000) / 60_000) * 60_000);
    const { patient, booking, intentId } = await paidBooking(soon);

    const response = await cancelAs(harness.testApp, patient, booking.consultation.id);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().refund_minor).toBe(FEE / 2);
    await expectRefunded(booking.consultation.id, intentId, FEE / 2, 'patient_cancelled');
  });

  it('refunds in full when the doctor cancels within 24 hours of the start', async () => {
    const soon = new Date(Math.ceil((nowMs + 3 * 3_600_000) / 60_000) * 60_000);
    const { doctor, booking, intentId } = await paidBooking(soon);

    const response = await cancelAs(harness.testApp, doctor, booking.consultation.id);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ consultation: { cancelled_by: 'doctor' }, refund_minor: FEE });
    await expectRefunded(booking.consultation.id, intentId, FEE, 'doctor_cancelled');
  });

  it('refunds in full when an admin cancels', async () => {
    const { booking, intentId } = await paidBooking();
    const admin = await signInTelemedicineAdmin(harness.testApp);

    const response = await cancelAs(harness.testApp, admin, booking.consultation.id);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ consultation: { cancelled_by: 'admin' }, refund_minor: FEE });
    await expectRefunded(booking.consultation.id, intentId, FEE, 'admin');
  });

  it('cancels the intent instead of refunding when the booking was not paid yet', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, slotId);
    const intentId = intentOfSecret(booking.payment.client_secret) ?? '';

    const response = await cancelAs(harness.testApp, patient, booking.consultation.id);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ consultation: { status: 'CANCELLED' }, refund_minor: 0 });
    expect(await slotRow(database(), slotId)).toEqual({ status: 'OPEN', hold_expires_at: null });
    const payment = await paymentOf(database(), booking.consultation.id);
    expect(payment.status).toBe('CANCELLED');
    expect(await refundsOf(database(), payment.id)).toEqual([]);
    await eventually(
      async () => payments.gateway.findIntent(intentId)?.status,
      (status) => status === 'canceled',
    );
  });
});
