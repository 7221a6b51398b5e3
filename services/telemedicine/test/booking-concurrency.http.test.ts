import { randomUUID } from 'node:crypto';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { telemedicineModule } from '../src/index.ts';
import {
  bookingRequest,
  bookOk,
  cancelAs,
  countRows,
  eventually,
  paymentOf,
  postBooking,
  refundsOf,
  rescheduleAs,
  slotRow,
  tally,
} from './booking.fixtures.ts';
import {
  insertSlots,
  nextDayAtUtc,
  signInDoctor,
  signInPatient,
  type TelemedicineCaller,
} from './fixtures.ts';
import { createGatewayForTests } from './payments.fixtures.ts';

// Real parallel requests against one app, one database and the simulated
// gateway over HTTP; the invariants are checked in the database (and at the
// gateway) afterwards. The database handle is built here rather than by
// useTestApp: a request may wait for a pooled connection longer than the test
// default of 1 s while hundreds queue (pg-pool counts that wait against the
// connect timeout), and that wait is not an outage.

const payments = await createGatewayForTests({ webhookMode: 'auto' });
// Every intent the gateway handed out, by the id it answered with.
const intentsCreated = new Set<string>();
payments.gateway.app.addHook('onSend', async (request, _reply, payload) => {
  if (request.method === 'POST' && request.url === '/v1/payment_intents' && typeof payload === 'string') {
    const id = (JSON.parse(payload) as { id?: unknown }).id;
    if (typeof id === 'string') intentsCreated.add(id);
  }
  return payload;
});

let testDb: TestDatabase;
let testApp: TestApp;
beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'), { poolMax: 20, connectTimeoutMs: 30_000 });
  testApp = await buildTestApp({
    database: testDb.database,
    databaseUrl: testDb.url,
    modules: [telemedicineModule],
    env: { RATE_LIMIT_ENABLED: 'false', DATABASE_POOL_MAX: '20', ...payments.env },
  });
  await payments.start(testApp.app);
});
afterAll(async () => {
  await payments.stop();
  await testApp?.close();
  await testDb?.drop();
});

const LIVE = `('PENDING_PAYMENT', 'SCHEDULED', 'IN_PROGRESS', 'COMPLETED', 'NO_SHOW')`;

function signInBookingPatient(): Promise<TelemedicineCaller> {
  return signInPatient(testApp, testDb.database, testApp.security.fieldCrypto.encryption);
}

async function doctorWithSlots(count: number, daysAhead: number) {
  const doctor = await signInDoctor(testApp, testDb.database, { feeMinor: 5000 });
  const slots = await insertSlots(testDb.database, doctor.account.id, {
    startsAt: nextDayAtUtc(9, daysAhead),
    count,
    minutes: 30,
  });
  return { doctor, slots };
}

function requireSlot(slots: string[], index = 0): string {
  const slot = slots[index];
  if (slot === undefined) throw new Error('fixture slot missing');
  return slot;
}

async function paidBooking(patient: TelemedicineCaller, slotId: string) {
  const booking = await bookOk(testApp, patient, slotId);
  const intentId = booking.payment.client_secret?.split('_secret_')[0] ?? '';
  await payments.pay(intentId);
  return { booking, intentId };
}

describe('booking under concurrency', () => {
  // Sign-ins first (each hashes a password twice: slow, and not what is under test), then the race.
  const patients: TelemedicineCaller[] = [];
  beforeAll(async () => {
    while (patients.length < 200) {
      patients.push(...(await Promise.all(Array.from({ length: 20 }, () => signInBookingPatient()))));
    }
  }, 300_000);

  it('books one slot once when 200 patients race for it', { timeout: 120_000 }, async () => {
    const { slots } = await doctorWithSlots(1, 3);
    const slotId = requireSlot(slots);

    const responses = await Promise.all(
      patients.map((patient) => postBooking(testApp, patient, bookingRequest(slotId))),
    );

    expect(tally(responses)).toEqual({ '201': 1, '409 telemedicine.slot_unavailable': 199 });
    expect(
      await countRows(
        testDb.database,
        `select count(*) as value from telemedicine.consultations where slot_id = $1 and status in ${LIVE}`,
        [slotId],
      ),
    ).toBe(1);
    expect(
      await countRows(
        testDb.database,
        'select count(*) as value from telemedicine.consultations where slot_id = $1',
        [slotId],
      ),
    ).toBe(1);
    expect(await slotRow(testDb.database, slotId)).toMatchObject({ status: 'HELD' });
  });

  it('creates one consultation, one payment and one intent when one request is sent 50 times at once', async () => {
    const { slots } = await doctorWithSlots(1, 4);
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    const key = randomUUID();
    const before = intentsCreated.size;

    const responses = await Promise.all(
      Array.from({ length: 50 }, () => postBooking(testApp, patient, bookingRequest(slotId), key)),
    );

    // The claimant books; the others get its replay or are told the key is busy.
    const counts = tally(responses);
    expect(counts['201']).toBeGreaterThanOrEqual(1);
    expect((counts['201'] ?? 0) + (counts['409 idempotency.in_progress'] ?? 0)).toBe(50);
    const created = responses.filter((response) => response.statusCode === 201);
    const consultationIds = new Set(created.map((response) => response.json().consultation.id));
    expect(consultationIds.size).toBe(1);
    expect(
      await countRows(
        testDb.database,
        'select count(*) as value from telemedicine.consultations where slot_id = $1',
        [slotId],
      ),
    ).toBe(1);
    expect(
      await countRows(
        testDb.database,
        'select count(*) as value from telemedicine.payments p join telemedicine.consultations c on c.id = p.consultation_id where c.slot_id = $1',
        [slotId],
      ),
    ).toBe(1);
    expect(intentsCreated.size - before).toBe(1);

    // Once it has finished, the key replays the booking with its client secret.
    const replay = await postBooking(testApp, patient, bookingRequest(slotId), key);
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().payment.client_secret).toEqual(expect.any(String));
  });

  it('files one refund and refunds once at the gateway when a consultation is cancelled 20 times at once', async () => {
    const { slots } = await doctorWithSlots(1, 5);
    const patient = await signInBookingPatient();
    const { booking, intentId } = await paidBooking(patient, requireSlot(slots));

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => cancelAs(testApp, patient, booking.consultation.id)),
    );

    expect(tally(responses)).toEqual({ '200': 1, '409 telemedicine.invalid_transition': 19 });
    const payment = await eventually(
      () => paymentOf(testDb.database, booking.consultation.id),
      (row) => row.status === 'REFUNDED',
    );
    expect(await refundsOf(testDb.database, payment.id)).toHaveLength(1);
    const gatewayRefunds = payments.gateway
      .listEvents()
      .filter(
        (event) =>
          event.type === 'refund.succeeded' &&
          (event.data.object as { payment_intent?: string }).payment_intent === intentId,
      );
    expect(gatewayRefunds).toHaveLength(1);
    expect(payments.gateway.findIntent(intentId)?.amount_refunded).toBe(5000);
  });

  it('moves one consultation into a slot when two reschedules race for it', async () => {
    const { slots } = await doctorWithSlots(3, 6);
    const [first, second] = [await signInBookingPatient(), await signInBookingPatient()];
    const firstBooking = await paidBooking(first, requireSlot(slots, 0));
    const secondBooking = await paidBooking(second, requireSlot(slots, 1));
    const target = requireSlot(slots, 2);

    const responses = await Promise.all([
      rescheduleAs(testApp, first, firstBooking.booking.consultation.id, target),
      rescheduleAs(testApp, second, secondBooking.booking.consultation.id, target),
    ]);

    expect(tally(responses)).toEqual({ '200': 1, '409 telemedicine.slot_unavailable': 1 });
    expect(await slotRow(testDb.database, target)).toMatchObject({ status: 'BOOKED' });
    expect(
      await countRows(
        testDb.database,
        `select count(*) as value from telemedicine.consultations where slot_id = $1 and status in ${LIVE}`,
        [target],
      ),
    ).toBe(1);
    // The winner's old slot is open again; the loser kept its own.
    const winnerIndex = responses[0]?.statusCode === 200 ? 0 : 1;
    expect(await slotRow(testDb.database, requireSlot(slots, winnerIndex))).toMatchObject({ status: 'OPEN' });
    expect(await slotRow(testDb.database, requireSlot(slots, 1 - winnerIndex))).toMatchObject({
      status: 'BOOKED',
    });
  });
});
