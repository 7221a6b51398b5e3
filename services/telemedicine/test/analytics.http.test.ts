import { randomUUID } from 'node:crypto';
import {
  ConsultationBookedV1,
  ConsultationCancelledV1,
  ConsultationConfirmedV1,
  ConsultationExpiredV1,
  ConsultationRescheduledV1,
  type ConsultationStatus,
  ConsultationStatusChangedV1,
  type EventDefinition,
  type EventEnvelope,
  PaymentSucceededV1,
  RefundIssuedV1,
  SlotsChangedV1,
} from '@keel/contracts';
import { type Kysely, sql } from '@keel/platform/db';
import { emitEvent, handleEventOnce } from '@keel/platform/outbox';
import { createTestAccount, signIn, useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import type { TSchema } from 'typebox';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAnalyticsSubscription } from '../src/analytics/on-telemedicine-event.handler.ts';
import { telemedicineModule } from '../src/index.ts';
import {
  insertDoctor,
  signInDoctor,
  signInPatient,
  signInSupport,
  signInTelemedicineAdmin,
  type TelemedicineCaller,
} from './fixtures.ts';

// The rollup is fed with events emitted straight into the outbox, as the
// booking, payments and availability features emit them: these tests depend
// on the contracts only. The clock is fixed on 2031-05-03 so that the default
// range (the last 30 days) is known.

const NOW = new Date('2031-05-03T12:00:00.000Z');
const harness = useTestApp({
  modules: [telemedicineModule],
  clock: { now: () => NOW },
  env: { RATE_LIMIT_ENABLED: 'false' },
});
const inject = (options: InjectOptions) => harness.testApp.app.inject(options);

/** Every event the world below emitted, in emit order. */
const emitted: EventEnvelope[] = [];

// Payloads are checked against the contract by emitEvent at run time.
async function emit(
  definition: EventDefinition<string, TSchema>,
  aggregateId: string,
  payload: Record<string, unknown>,
  occurredAt: string,
): Promise<EventEnvelope> {
  const event = await harness.testDb.database.typed<unknown>().transaction((trx) =>
    emitEvent(
      trx,
      {
        type: definition.type,
        aggregateType: 'consultation',
        aggregateId,
        payload,
        occurredAt: new Date(occurredAt),
      },
      { definition },
    ),
  );
  emitted.push(event);
  return event;
}

type Doctor = { id: string; specialty: string; currency: string };
type TestConsultation = {
  consultationId: string;
  patientId: string;
  doctorId: string;
  slotId: string;
  specialty: string;
  startsAt: string;
  endsAt: string;
  feeMinor: number;
  currency: string;
};

function consultationOf(doctor: Doctor, startsAt: string, feeMinor: number): TestConsultation {
  return {
    consultationId: randomUUID(),
    patientId: randomUUID(),
    doctorId: doctor.id,
    slotId: randomUUID(),
    specialty: doctor.specialty,
    startsAt,
    endsAt: new Date(Date.parse(startsAt) + 30 * 60_000).toISOString(),
    feeMinor,
    currency: doctor.currency,
  };
}

function offerSlots(doctor: Doctor, offeredByDay: { day: string; count: number }[], at: string) {
  return emit(SlotsChangedV1, doctor.id, { doctorId: doctor.id, offeredByDay }, at);
}

function book(consultation: TestConsultation, at: string) {
  return emit(
    ConsultationBookedV1,
    consultation.consultationId,
    {
      ...consultation,
      paymentId: randomUUID(),
      holdExpiresAt: new Date(Date.parse(at) + 600_000).toISOString(),
    },
    at,
  );
}

function confirm(consultation: TestConsultation, at: string) {
  return emit(
    ConsultationConfirmedV1,
    consultation.consultationId,
    { ...consultation, paymentId: randomUUID() },
    at,
  );
}

function pay(consultation: TestConsultation, at: string) {
  return emit(
    PaymentSucceededV1,
    consultation.consultationId,
    {
      paymentId: randomUUID(),
      consultationId: consultation.consultationId,
      doctorId: consultation.doctorId,
      specialty: consultation.specialty,
      amountMinor: consultation.feeMinor,
      currency: consultation.currency,
      succeededAt: at,
    },
    at,
  );
}

function refund(consultation: TestConsultation, amountMinor: number, at: string) {
  return emit(
    RefundIssuedV1,
    consultation.consultationId,
    {
      refundId: randomUUID(),
      paymentId: randomUUID(),
      consultationId: consultation.consultationId,
      doctorId: consultation.doctorId,
      specialty: consultation.specialty,
      amountMinor,
      currency: consultation.currency,
      reason: 'patient_cancelled',
      issuedAt: at,
    },
    at,
  );
}

function changeStatus(
  consultation: TestConsultation,
  from: ConsultationStatus,
  to: ConsultationStatus,
  at: string,
) {
  return emit(ConsultationStatusChangedV1, consultation.consultationId, { ...consultation, from, to }, at);
}

async function complete(consultation: TestConsultation) {
  await changeStatus(consultation, 'SCHEDULED', 'IN_PROGRESS', consultation.startsAt);
  return changeStatus(consultation, 'IN_PROGRESS', 'COMPLETED', consultation.endsAt);
}

function expire(consultation: TestConsultation, at: string) {
  return emit(
    ConsultationExpiredV1,
    consultation.consultationId,
    { ...consultation, reason: 'hold_expired' },
    at,
  );
}

function cancel(consultation: TestConsultation, refundMinor: number, at: string) {
  return emit(
    ConsultationCancelledV1,
    consultation.consultationId,
    { ...consultation, cancelledBy: 'patient', refundMinor },
    at,
  );
}

function reschedule(consultation: TestConsultation, startsAt: string, at: string) {
  const previous = { slotId: consultation.slotId, startsAt: consultation.startsAt };
  consultation.slotId = randomUUID();
  consultation.startsAt = startsAt;
  consultation.endsAt = new Date(Date.parse(startsAt) + 30 * 60_000).toISOString();
  return emit(
    ConsultationRescheduledV1,
    consultation.consultationId,
    { ...consultation, previousSlotId: previous.slotId, previousStartsAt: previous.startsAt },
    at,
  );
}

function getAnalytics(caller: TelemedicineCaller | undefined, query: Record<string, string> = {}) {
  const search = new URLSearchParams(query).toString();
  return inject({
    method: 'GET',
    url: `/telemedicine/admin/analytics${search === '' ? '' : `?${search}`}`,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

const RANGE = { from: '2031-04-30', to: '2031-05-03' };

let alice: Doctor;
let bob: Doctor;
let carol: Doctor;
let admin: TelemedicineCaller;
let redeliverable: EventEnvelope;

// Dr Alice (cardiology, EUR), Dr Bob (dermatology, EUR), Dr Carol (general practice, USD):
//   slots offered: Alice 4 on 05-01 and 2 on 05-02; Bob 2 on 05-01; Carol 3 on 05-02
//   c1 Alice 05-01 09:00 5000: booked, confirmed, paid on 04-30, completed
//   c2 Alice 05-01 10:00 5000: booked, confirmed, paid on 05-01, no-show
//   c3 Alice 05-02 09:00 5000: booked, hold expired
//   c4 Bob   05-01 11:00 7000: booked, confirmed, paid, cancelled and refunded in full on 05-01
//   c5 Carol 05-02 08:00 3000: booked, confirmed, paid on 05-02, rescheduled to 05-03 08:00, completed
//   c6 Bob   05-01 12:00 7000: booked, confirmed, paid on 05-01, rescheduled within the day, completed
beforeAll(async () => {
  const database = harness.testDb.database;
  alice = { id: randomUUID(), specialty: 'cardiology', currency: 'EUR' };
  bob = { id: randomUUID(), specialty: 'dermatology', currency: 'EUR' };
  carol = { id: randomUUID(), specialty: 'general practice', currency: 'USD' };
  await insertDoctor(database, alice.id, {
    fullName: 'Dr Alice',
    specialties: ['cardiology', 'internal medicine'],
  });
  await insertDoctor(database, bob.id, { fullName: 'Dr Bob', specialties: ['dermatology'] });
  await insertDoctor(database, carol.id, {
    fullName: 'Dr Carol',
    specialties: ['general practice'],
    currency: 'USD',
  });
  admin = await signInTelemedicineAdmin(harness.testApp);

  await offerSlots(
    alice,
    [
      { day: '2031-05-01', count: 3 },
      { day: '2031-05-02', count: 2 },
      { day: '2031-05-01', count: 1 },
    ],
    '2031-04-20T00:00:00.000Z',
  );
  await offerSlots(bob, [{ day: '2031-05-01', count: 2 }], '2031-04-20T00:00:00.000Z');
  await offerSlots(carol, [{ day: '2031-05-02', count: 3 }], '2031-04-20T00:00:00.000Z');

  const c1 = consultationOf(alice, '2031-05-01T09:00:00.000Z', 5000);
  await book(c1, '2031-04-30T10:00:00.000Z');
  redeliverable = await pay(c1, '2031-04-30T10:01:00.000Z');
  await confirm(c1, '2031-04-30T10:01:00.000Z');
  await complete(c1);

  const c2 = consultationOf(alice, '2031-05-01T10:00:00.000Z', 5000);
  await book(c2, '2031-05-01T06:00:00.000Z');
  await pay(c2, '2031-05-01T06:01:00.000Z');
  await confirm(c2, '2031-05-01T06:01:00.000Z');
  await changeStatus(c2, 'SCHEDULED', 'NO_SHOW', '2031-05-01T10:20:00.000Z');

  const c3 = consultationOf(alice, '2031-05-02T09:00:00.000Z', 5000);
  await book(c3, '2031-05-01T07:00:00.000Z');
  await expire(c3, '2031-05-01T07:10:00.000Z');

  const c4 = consultationOf(bob, '2031-05-01T11:00:00.000Z', 7000);
  await book(c4, '2031-04-29T10:00:00.000Z');
  await pay(c4, '2031-05-01T08:00:00.000Z');
  await confirm(c4, '2031-05-01T08:00:00.000Z');
  await cancel(c4, 7000, '2031-05-01T09:00:00.000Z');
  await refund(c4, 7000, '2031-05-01T09:00:01.000Z');

  const c5 = consultationOf(carol, '2031-05-02T08:00:00.000Z', 3000);
  await book(c5, '2031-05-02T01:00:00.000Z');
  await pay(c5, '2031-05-02T01:01:00.000Z');
  await confirm(c5, '2031-05-02T01:01:00.000Z');
  await reschedule(c5, '2031-05-03T08:00:00.000Z', '2031-05-02T02:00:00.000Z');
  await complete(c5);

  const c6 = consultationOf(bob, '2031-05-01T12:00:00.000Z', 7000);
  await book(c6, '2031-04-28T10:00:00.000Z');
  await pay(c6, '2031-05-01T09:30:00.000Z');
  await confirm(c6, '2031-05-01T09:30:00.000Z');
  await reschedule(c6, '2031-05-01T15:00:00.000Z', '2031-05-01T09:40:00.000Z');
  await complete(c6);

  await harness.testApp.background.drainEvents();
});

const ZERO = {
  booked: 0,
  confirmed: 0,
  completed: 0,
  cancelled: 0,
  no_shows: 0,
  expired: 0,
  slots_offered: 0,
  slots_booked: 0,
};

const TOTALS = {
  booked: 6,
  confirmed: 5,
  completed: 3,
  cancelled: 1,
  no_shows: 1,
  expired: 1,
  slots_offered: 11,
  slots_booked: 4,
  revenue_minor: { EUR: 24000, USD: 3000 },
  refunds_minor: { EUR: 7000, USD: 0 },
  cancellation_rate: 0.1667,
  no_show_rate: 0.25,
  slot_utilisation: 0.3636,
};

const ALICE = {
  booked: 3,
  confirmed: 2,
  completed: 1,
  cancelled: 0,
  no_shows: 1,
  expired: 1,
  slots_offered: 6,
  slots_booked: 2,
  revenue_minor: { EUR: 10000 },
  refunds_minor: { EUR: 0 },
  cancellation_rate: 0,
  no_show_rate: 0.5,
  slot_utilisation: 0.3333,
};
const BOB = {
  booked: 2,
  confirmed: 2,
  completed: 1,
  cancelled: 1,
  no_shows: 0,
  expired: 0,
  slots_offered: 2,
  slots_booked: 1,
  revenue_minor: { EUR: 14000 },
  refunds_minor: { EUR: 7000 },
  cancellation_rate: 0.5,
  no_show_rate: 0,
  slot_utilisation: 0.5,
};
const CAROL = {
  booked: 1,
  confirmed: 1,
  completed: 1,
  cancelled: 0,
  no_shows: 0,
  expired: 0,
  slots_offered: 3,
  slots_booked: 1,
  revenue_minor: { USD: 3000 },
  refunds_minor: { USD: 0 },
  cancellation_rate: 0,
  no_show_rate: 0,
  slot_utilisation: 0.3333,
};

/** Carries a result out of a transaction that must not commit. */
class RolledBack extends Error {
  readonly result: { rows: Record<string, unknown>[] };
  constructor(result: { rows: Record<string, unknown>[] }) {
    super('rolled back on purpose');
    this.result = result;
  }
}

describe('getTelemedicineAnalytics', () => {
  it('reports exact totals, days, specialties and doctors from the rollup', async () => {
    const response = await getAnalytics(admin, RANGE);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.from).toBe(RANGE.from);
    expect(body.to).toBe(RANGE.to);
    expect(body.totals).toEqual(TOTALS);
    expect(body.per_day).toEqual([
      {
        day: '2031-04-30',
        ...ZERO,
        revenue_minor: { EUR: 5000 },
        refunds_minor: { EUR: 0 },
        cancellation_rate: null,
        no_show_rate: null,
        slot_utilisation: null,
      },
      {
        day: '2031-05-01',
        booked: 4,
        confirmed: 4,
        completed: 2,
        cancelled: 1,
        no_shows: 1,
        expired: 0,
        slots_offered: 6,
        slots_booked: 3,
        revenue_minor: { EUR: 19000 },
        refunds_minor: { EUR: 7000 },
        cancellation_rate: 0.25,
        no_show_rate: 0.3333,
        slot_utilisation: 0.5,
      },
      {
        day: '2031-05-02',
        booked: 2,
        confirmed: 1,
        completed: 0,
        cancelled: 0,
        no_shows: 0,
        expired: 1,
        slots_offered: 5,
        slots_booked: 0,
        revenue_minor: { EUR: 0, USD: 3000 },
        refunds_minor: { EUR: 0, USD: 0 },
        cancellation_rate: 0,
        no_show_rate: null,
        slot_utilisation: 0,
      },
      {
        day: '2031-05-03',
        ...ZERO,
        completed: 1,
        slots_booked: 1,
        revenue_minor: { USD: 0 },
        refunds_minor: { USD: 0 },
        cancellation_rate: null,
        no_show_rate: 0,
        slot_utilisation: null,
      },
    ]);
    expect(body.by_specialty).toEqual([
      { specialty: 'cardiology', ...ALICE },
      { specialty: 'dermatology', ...BOB },
      { specialty: 'general practice', ...CAROL },
    ]);
    expect(body.by_doctor).toEqual([
      { doctor_id: alice.id, full_name: 'Dr Alice', ...ALICE },
      { doctor_id: bob.id, full_name: 'Dr Bob', ...BOB },
      { doctor_id: carol.id, full_name: 'Dr Carol', ...CAROL },
    ]);
    // One completed consultation each: ranked by revenue.
    expect(body.top_doctors.map((doctor: { full_name: string }) => doctor.full_name)).toEqual([
      'Dr Bob',
      'Dr Alice',
      'Dr Carol',
    ]);
  });

  it('counts only the days within [from, to], both included', async () => {
    const response = await getAnalytics(admin, { from: '2031-05-03', to: '2031-05-03' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.totals).toMatchObject({
      completed: 1,
      booked: 0,
      slots_booked: 1,
      revenue_minor: { USD: 0 },
    });
    expect(body.by_doctor.map((doctor: { doctor_id: string }) => doctor.doctor_id)).toEqual([carol.id]);
  });

  it('covers the last 30 days, today included, when no range is given', async () => {
    const response = await getAnalytics(admin);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ from: '2031-04-04', to: '2031-05-03' });
    expect(body.totals).toEqual(TOTALS);
  });

  it('does not count an event twice when it is delivered again', async () => {
    const subscription = createAnalyticsSubscription();
    expect(await handleEventOnce(harness.testDb.database, subscription, redeliverable)).toBe(false);
    await harness.testApp.background.drainEvents();
    const response = await getAnalytics(admin, RANGE);
    expect(response.json().totals).toEqual(TOTALS);
  });

  it('projects the dispatcher’s batches exactly as it projects the events one at a time', async () => {
    const doctorIds = [alice.id, bob.id, carol.id];
    const readRollup = (db: Kysely<unknown>) =>
      sql<Record<string, unknown>>`
        select * from telemedicine.analytics_daily where doctor_id = any(${doctorIds}::uuid[])
        order by day, doctor_id, specialty, currency`.execute(db);
    // What the bus's batches (handleBatch) built in beforeAll.
    const batched = await harness.testDb.database.typed<unknown>().run(readRollup);
    expect(batched.rows.length).toBeGreaterThan(0);

    // The same events through `handler`, one at a time, on an empty rollup, rolled back after.
    const subscription = createAnalyticsSubscription();
    const oneByOne = await harness.testDb.database
      .typed<unknown>()
      .transaction(async (trx) => {
        await sql`delete from telemedicine.analytics_daily where doctor_id = any(${doctorIds}::uuid[])`.execute(
          trx,
        );
        for (const event of emitted) await subscription.handler(event, trx);
        throw new RolledBack(await readRollup(trx));
      })
      .catch((error: unknown) => {
        if (error instanceof RolledBack) return error.result;
        throw error;
      });

    expect(oneByOne.rows).toEqual(batched.rows);
  });

  it('answers 400 telemedicine.analytics_invalid_range for from after to or more than 366 days', async () => {
    for (const range of [
      { from: '2031-05-03', to: '2031-05-02' },
      { from: '2030-05-01', to: '2031-05-02' },
    ]) {
      const response = await getAnalytics(admin, range);
      expect(response.statusCode, JSON.stringify(range)).toBe(400);
      expect(response.json()).toMatchObject({ code: 'telemedicine.analytics_invalid_range' });
    }
    const fullLeapYear = await getAnalytics(admin, { from: '2032-01-01', to: '2032-12-31' });
    expect(fullLeapYear.statusCode).toBe(200);
  });

  it('answers 400 for malformed dates and unknown parameters', async () => {
    const queries: Record<string, string>[] = [
      { from: 'yesterday' },
      { to: '2031-02-30' },
      { from: '2031-05-01T00:00:00Z' },
      { doctor: 'x' },
    ];
    for (const query of queries) {
      const response = await getAnalytics(admin, query);
      expect(response.statusCode, JSON.stringify(query)).toBe(400);
    }
  });

  it('refuses patients, doctors and support with 403 and an anonymous caller with 401', async () => {
    const database = harness.testDb.database;
    const encryption = harness.testApp.security.fieldCrypto.encryption;
    for (const caller of [
      await signInPatient(harness.testApp, database, encryption),
      await signInDoctor(harness.testApp, database),
      await signInSupport(harness.testApp),
    ]) {
      const response = await getAnalytics(caller, RANGE);
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ code: 'auth.forbidden' });
    }
    expect((await getAnalytics(undefined, RANGE)).statusCode).toBe(401);
  });

  it('refuses an admin whose session has not passed MFA', async () => {
    // Signed in without a second factor, then made an admin: the admin role's
    // permissions need an MFA session, so this session does not get them.
    const account = await createTestAccount(harness.testApp, { roles: ['telemedicine:patient'] });
    const session = await signIn(harness.testApp, account);
    await harness.testApp.security.identity.accounts.grantRole(
      { id: (await createTestAccount(harness.testApp)).id },
      account.id,
      'telemedicine:admin',
      { requestId: null, ip: null, userAgent: null },
    );
    const response = await getAnalytics({ account, session, authorization: session.authorization }, RANGE);
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'auth.forbidden' });
  });
});
