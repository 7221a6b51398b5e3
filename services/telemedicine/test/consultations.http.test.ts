import { randomUUID } from 'node:crypto';
import type { Clock } from '@keel/platform/module';
import { useTestApp } from '@keel/platform/testing';
import type { Response } from 'light-my-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATIENT_RECORD_RESOURCE_TYPE } from '../src/compliance/clinical-access.ts';
import { telemedicineModule } from '../src/index.ts';
import {
  type BookingBody,
  bookingRequest,
  bookOk,
  cancelAs,
  consultationRow,
  injectAs,
  postBooking,
  rescheduleAs,
  slotRow,
} from './booking.fixtures.ts';
import {
  insertDoctor,
  insertSlots,
  nextDayAtUtc,
  signInDoctor,
  signInPatient,
  signInSupport,
  signInTelemedicineAdmin,
  signInWithRoles,
  type TelemedicineCaller,
} from './fixtures.ts';
import { createGatewayForTests } from './payments.fixtures.ts';

// The consultation routes' contract: who may call what, what each caller
// sees, and how bad input is refused. The saga's paths are in
// booking-saga.http.test.ts, races in booking-concurrency.http.test.ts.

// The clock stands still, so "in the future" is exact.
const fixedNow = new Date(Math.floor(Date.now() / 1000) * 1000);
const clock: Clock = { now: () => fixedNow };
const payments = await createGatewayForTests({ clock });
const harness = useTestApp({
  modules: [telemedicineModule],
  clock,
  env: { RATE_LIMIT_ENABLED: 'false', ...payments.env },
});
beforeAll(() => payments.start(harness.testApp.app));
afterAll(() => payments.stop());

function database() {
  return harness.testDb.database;
}

function signInBookingPatient(): Promise<TelemedicineCaller> {
  return signInPatient(harness.testApp, database(), harness.testApp.security.fieldCrypto.encryption);
}

async function doctorWithSlots(count = 1, spec: { specialties?: string[] } = {}, daysAhead = 2) {
  const doctor = await signInDoctor(harness.testApp, database(), { feeMinor: 4000, ...spec });
  const slots = await insertSlots(database(), doctor.account.id, {
    startsAt: nextDayAtUtc(10, daysAhead),
    count,
    minutes: 20,
  });
  return { doctor, slots };
}

function requireSlot(slots: string[], index = 0): string {
  const slot = slots[index];
  if (slot === undefined) throw new Error('fixture slot missing');
  return slot;
}

async function scheduled(patient: TelemedicineCaller, slotId: string): Promise<BookingBody> {
  const booking = await bookOk(harness.testApp, patient, slotId);
  await payments.pay(booking.payment.client_secret?.split('_secret_')[0] ?? '');
  expect(await consultationRow(database(), booking.consultation.id)).toMatchObject({ status: 'SCHEDULED' });
  return booking;
}

function getConsultation(caller: TelemedicineCaller | undefined, id: string) {
  return injectAs(harness.testApp, caller, { method: 'GET', url: `/telemedicine/consultations/${id}` });
}

function listConsultations(caller: TelemedicineCaller | undefined, query = '') {
  return injectAs(harness.testApp, caller, { method: 'GET', url: `/telemedicine/consultations${query}` });
}

function expectProblem(response: Response, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toContain('application/problem+json');
  expect(response.json().code).toBe(code);
}

async function clinicalReads(patientId: string, consultationId: string) {
  const result = await database().pool.query<{ actor_id: string; purpose: string }>(
    `select actor_id, changes->>'purpose' as purpose from platform.audit_events
     where resource_type = $1 and resource_id = $2 and action = 'telemedicine.consultation_viewed'
       and changes->>'resource_id' = $3
     order by id`,
    [PATIENT_RECORD_RESOURCE_TYPE, patientId, consultationId],
  );
  return result.rows;
}

describe('POST /telemedicine/consultations', () => {
  it('refuses with telemedicine.consent_required when consent is missing or not given', async () => {
    const { slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    const slotId = requireSlot(slots);

    const missing = await postBooking(harness.testApp, patient, { slot_id: slotId });
    const refused = await postBooking(
      harness.testApp,
      patient,
      bookingRequest(slotId, { consent: { treatment: true, telehealth: false, version: 'v1' } }),
    );

    expectProblem(missing, 422, 'telemedicine.consent_required');
    expectProblem(refused, 422, 'telemedicine.consent_required');
    expect(refused.json().errors).toEqual([
      { pointer: '/body/consent/telehealth', detail: expect.any(String) },
    ]);
    expect(await slotRow(database(), slotId)).toMatchObject({ status: 'OPEN' });
  });

  it('refuses with telemedicine.patient_profile_required when the caller has no patient profile', async () => {
    const { slots } = await doctorWithSlots();
    const caller = await signInWithRoles(harness.testApp, ['telemedicine:patient']);

    const response = await postBooking(harness.testApp, caller, bookingRequest(requireSlot(slots)));

    expectProblem(response, 422, 'telemedicine.patient_profile_required');
  });

  it('answers telemedicine.slot_not_found for an unknown slot, a past slot and an unverified doctor’s slot', async () => {
    const patient = await signInBookingPatient();
    const pendingDoctor = await insertDoctor(database(), undefined, { status: 'PENDING' });
    const [pendingSlot] = await insertSlots(database(), pendingDoctor, { startsAt: nextDayAtUtc(10, 2) });
    const pastDoctor = await insertDoctor(database());
    const [pastSlot] = await insertSlots(database(), pastDoctor, {
      startsAt: new Date(fixedNow.getTime() - 3_600_000),
    });

    for (const slotId of [randomUUID(), pendingSlot ?? '', pastSlot ?? '']) {
      expectProblem(
        await postBooking(harness.testApp, patient, bookingRequest(slotId)),
        404,
        'telemedicine.slot_not_found',
      );
    }
  });

  it('answers telemedicine.slot_unavailable when another patient holds the slot', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    await bookOk(harness.testApp, await signInBookingPatient(), slotId);

    const response = await postBooking(harness.testApp, await signInBookingPatient(), bookingRequest(slotId));

    expectProblem(response, 409, 'telemedicine.slot_unavailable');
  });

  it('returns the patient’s own booking when they book a slot they already hold', async () => {
    const { slots } = await doctorWithSlots();
    const slotId = requireSlot(slots);
    const patient = await signInBookingPatient();
    const first = await bookOk(harness.testApp, patient, slotId);

    const again = await postBooking(harness.testApp, patient, bookingRequest(slotId));

    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toMatchObject({
      consultation: { id: first.consultation.id },
      payment: { id: first.payment.id, client_secret: first.payment.client_secret },
    });
  });

  it('books under a chosen specialty of the doctor and refuses one they do not practise', async () => {
    const { slots } = await doctorWithSlots(2, { specialties: ['cardiology', 'internal medicine'] });
    const patient = await signInBookingPatient();

    const chosen = await bookOk(harness.testApp, patient, requireSlot(slots, 0), {
      specialty: 'internal medicine',
    });
    const refused = await postBooking(
      harness.testApp,
      patient,
      bookingRequest(requireSlot(slots, 1), { specialty: 'dermatology' }),
    );

    expect(chosen.consultation).toMatchObject({ status: 'PENDING_PAYMENT' });
    expect((await consultationRow(database(), chosen.consultation.id)).status).toBe('PENDING_PAYMENT');
    expectProblem(refused, 422, 'telemedicine.specialty_not_offered');
  });

  it('refuses malformed bodies with 400 problems', async () => {
    const { slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    const slotId = requireSlot(slots);
    const bodies = [
      bookingRequest('not-a-uuid'),
      bookingRequest(slotId, { reason: 'x'.repeat(2001) }),
      bookingRequest(slotId, { fee_minor: 1 }),
      bookingRequest(slotId, { consent: { treatment: 'yes', telehealth: true, version: 'v1' } }),
      bookingRequest(slotId, { consent: { treatment: true, telehealth: true } }),
      bookingRequest(slotId, { reason: 'bell\u0007' }),
    ];
    for (const body of bodies) {
      const response = await postBooking(harness.testApp, patient, body);
      expect(response.statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(response.json().code).toEqual(expect.any(String));
    }
    expectProblem(
      await postBooking(harness.testApp, patient, bookingRequest(slotId), null),
      400,
      'idempotency.key_required',
    );
  });

  it('refuses callers who may not book: 401 anonymous, 403 support and doctors', async () => {
    const { slots } = await doctorWithSlots();
    const body = bookingRequest(requireSlot(slots));

    expect((await postBooking(harness.testApp, undefined, body)).statusCode).toBe(401);
    const support = await signInSupport(harness.testApp);
    expect((await postBooking(harness.testApp, support, body)).statusCode).toBe(403);
    const doctor = await signInDoctor(harness.testApp, database());
    expect((await postBooking(harness.testApp, doctor, body)).statusCode).toBe(403);
  });
});

describe('GET /telemedicine/consultations/{id}', () => {
  it('shows the participants the decrypted reason and records each read in the patient’s access log', async () => {
    const { doctor, slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, requireSlot(slots), {
      reason: 'Chest pain at night',
    });

    const asPatient = await getConsultation(patient, booking.consultation.id);
    const asDoctor = await getConsultation(doctor, booking.consultation.id);

    for (const response of [asPatient, asDoctor]) {
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ id: booking.consultation.id, reason: 'Chest pain at night' });
    }
    expect(await clinicalReads(patient.account.id, booking.consultation.id)).toEqual([
      { actor_id: patient.account.id, purpose: 'patient_access' },
      { actor_id: doctor.account.id, purpose: 'treatment' },
    ]);
  });

  it('shows support and admins the logistics without the reason, unaudited as clinical access', async () => {
    const { slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, requireSlot(slots));

    for (const operator of [
      await signInSupport(harness.testApp),
      await signInTelemedicineAdmin(harness.testApp),
    ]) {
      const response = await getConsultation(operator, booking.consultation.id);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ id: booking.consultation.id, status: 'PENDING_PAYMENT' });
      expect(response.json()).not.toHaveProperty('reason');
    }
    expect(await clinicalReads(patient.account.id, booking.consultation.id)).toEqual([]);
  });

  it('answers 404 to another patient and another doctor, 401 to anonymous callers', async () => {
    const { slots } = await doctorWithSlots();
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots));

    expectProblem(
      await getConsultation(await signInBookingPatient(), booking.consultation.id),
      404,
      'telemedicine.consultation_not_found',
    );
    expectProblem(
      await getConsultation(await signInDoctor(harness.testApp, database()), booking.consultation.id),
      404,
      'telemedicine.consultation_not_found',
    );
    expectProblem(
      await getConsultation(await signInBookingPatient(), randomUUID()),
      404,
      'telemedicine.consultation_not_found',
    );
    expect((await getConsultation(undefined, booking.consultation.id)).statusCode).toBe(401);
    expect((await getConsultation(await signInBookingPatient(), 'nope')).statusCode).toBe(400);
  });
});

describe('GET /telemedicine/consultations', () => {
  it('lists a participant’s own consultations, latest start first, page by page', async () => {
    const { doctor, slots } = await doctorWithSlots(3);
    const patient = await signInBookingPatient();
    const bookings = [];
    for (const slotId of slots) bookings.push(await bookOk(harness.testApp, patient, slotId));
    // Someone else's consultation with another doctor stays out of both lists.
    const other = await doctorWithSlots(1);
    await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(other.slots));

    const first = await listConsultations(patient, '?limit=2');
    expect(first.statusCode, first.body).toBe(200);
    const firstPage = first.json();
    const second = await listConsultations(patient, `?limit=2&cursor=${firstPage.next_cursor}`);
    const secondPage = second.json();

    const expected = bookings.map((booking) => booking.consultation.id).reverse();
    expect([...firstPage.items, ...secondPage.items].map((item: { id: string }) => item.id)).toEqual(
      expected,
    );
    expect(secondPage.next_cursor).toBeNull();
    expect(firstPage.items[0]).not.toHaveProperty('reason');

    const asDoctor = (await listConsultations(doctor)).json();
    expect(asDoctor.items.map((item: { id: string }) => item.id)).toEqual(expected);
  });

  it('filters by status and start window', async () => {
    const { slots } = await doctorWithSlots(2, {}, 5);
    const patient = await signInBookingPatient();
    const paid = await scheduled(patient, requireSlot(slots, 0));
    const pending = await bookOk(harness.testApp, patient, requireSlot(slots, 1));
    const from = nextDayAtUtc(0, 5).toISOString();
    const to = nextDayAtUtc(0, 6).toISOString();

    const onlyScheduled = (
      await listConsultations(patient, `?status=SCHEDULED&from=${from}&to=${to}`)
    ).json();
    const both = (
      await listConsultations(patient, `?status=SCHEDULED&status=PENDING_PAYMENT&from=${from}`)
    ).json();
    const before = (await listConsultations(patient, `?to=${from}`)).json();

    expect(onlyScheduled.items.map((item: { id: string }) => item.id)).toEqual([paid.consultation.id]);
    expect(both.items.map((item: { id: string }) => item.id).sort()).toEqual(
      [paid.consultation.id, pending.consultation.id].sort(),
    );
    expect(before.items).toEqual([]);
  });

  it('lists every consultation to support', async () => {
    const { slots } = await doctorWithSlots();
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots));

    const response = await listConsultations(await signInSupport(harness.testApp), '?limit=100');

    expect(response.statusCode).toBe(200);
    expect(response.json().items.map((item: { id: string }) => item.id)).toContain(booking.consultation.id);
  });

  it('refuses a forged cursor, bad filters and anonymous callers', async () => {
    const patient = await signInBookingPatient();
    expectProblem(
      await listConsultations(patient, '?cursor=bm90LWEtY3Vyc29y'),
      400,
      'telemedicine.invalid_cursor',
    );
    expect((await listConsultations(patient, '?status=LOST')).statusCode).toBe(400);
    expect((await listConsultations(patient, '?limit=0')).statusCode).toBe(400);
    expect((await listConsultations(patient, '?from=yesterday')).statusCode).toBe(400);
    expect((await listConsultations(undefined)).statusCode).toBe(401);
  });
});

describe('POST /telemedicine/consultations/{id}/cancel', () => {
  it('refuses other patients (404), support (403) and anonymous callers (401)', async () => {
    const { slots } = await doctorWithSlots();
    const booking = await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots));
    const id = booking.consultation.id;

    expectProblem(
      await cancelAs(harness.testApp, await signInBookingPatient(), id),
      404,
      'telemedicine.consultation_not_found',
    );
    expectProblem(
      await cancelAs(harness.testApp, await signInDoctor(harness.testApp, database()), id),
      404,
      'telemedicine.consultation_not_found',
    );
    expect((await cancelAs(harness.testApp, await signInSupport(harness.testApp), id)).statusCode).toBe(403);
    expect((await cancelAs(harness.testApp, undefined, id)).statusCode).toBe(401);
    expect((await consultationRow(database(), id)).status).toBe('PENDING_PAYMENT');
  });

  it('answers telemedicine.invalid_transition when the consultation is already cancelled', async () => {
    const { slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, requireSlot(slots));
    expect((await cancelAs(harness.testApp, patient, booking.consultation.id)).statusCode).toBe(200);

    expectProblem(
      await cancelAs(harness.testApp, patient, booking.consultation.id),
      409,
      'telemedicine.invalid_transition',
    );
  });

  it('refuses a malformed reason with 400', async () => {
    const { slots } = await doctorWithSlots();
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, requireSlot(slots));

    const tooLong = await cancelAs(harness.testApp, patient, booking.consultation.id, {
      reason: 'x'.repeat(501),
    });
    const extra = await cancelAs(harness.testApp, patient, booking.consultation.id, { refund: 100 });

    expect(tooLong.statusCode).toBe(400);
    expect(extra.statusCode).toBe(400);
  });
});

describe('POST /telemedicine/consultations/{id}/reschedule', () => {
  it('moves a scheduled consultation to another open slot of the same doctor and frees the old one', async () => {
    const { slots } = await doctorWithSlots(2);
    const patient = await signInBookingPatient();
    const booking = await scheduled(patient, requireSlot(slots, 0));

    const response = await rescheduleAs(
      harness.testApp,
      patient,
      booking.consultation.id,
      requireSlot(slots, 1),
    );

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'SCHEDULED',
      slot_id: requireSlot(slots, 1),
      rescheduled_from_slot_id: requireSlot(slots, 0),
      version: 3,
    });
    expect(await slotRow(database(), requireSlot(slots, 1))).toMatchObject({ status: 'BOOKED' });
    expect(await slotRow(database(), requireSlot(slots, 0))).toMatchObject({ status: 'OPEN' });
  });

  it('refuses a slot that is taken, of another doctor, or unknown', async () => {
    const { slots } = await doctorWithSlots(2);
    const patient = await signInBookingPatient();
    const booking = await scheduled(patient, requireSlot(slots, 0));
    await bookOk(harness.testApp, await signInBookingPatient(), requireSlot(slots, 1));
    const other = await doctorWithSlots(1);
    const id = booking.consultation.id;

    expectProblem(
      await rescheduleAs(harness.testApp, patient, id, requireSlot(slots, 1)),
      409,
      'telemedicine.slot_unavailable',
    );
    expectProblem(
      await rescheduleAs(harness.testApp, patient, id, requireSlot(slots, 0)),
      409,
      'telemedicine.slot_unavailable',
    );
    expectProblem(
      await rescheduleAs(harness.testApp, patient, id, requireSlot(other.slots)),
      422,
      'telemedicine.reschedule_other_doctor',
    );
    expectProblem(
      await rescheduleAs(harness.testApp, patient, id, randomUUID()),
      404,
      'telemedicine.slot_not_found',
    );
    expect(await consultationRow(database(), id)).toMatchObject({
      slot_id: requireSlot(slots, 0),
      version: 2,
    });
  });

  it('answers telemedicine.invalid_transition for a consultation not yet paid', async () => {
    const { slots } = await doctorWithSlots(2);
    const patient = await signInBookingPatient();
    const booking = await bookOk(harness.testApp, patient, requireSlot(slots, 0));

    expectProblem(
      await rescheduleAs(harness.testApp, patient, booking.consultation.id, requireSlot(slots, 1)),
      409,
      'telemedicine.invalid_transition',
    );
  });

  it('refuses doctors (403), other patients (404) and anonymous callers (401)', async () => {
    const { doctor, slots } = await doctorWithSlots(2);
    const booking = await scheduled(await signInBookingPatient(), requireSlot(slots, 0));
    const id = booking.consultation.id;
    const target = requireSlot(slots, 1);

    expect((await rescheduleAs(harness.testApp, doctor, id, target)).statusCode).toBe(403);
    expectProblem(
      await rescheduleAs(harness.testApp, await signInBookingPatient(), id, target),
      404,
      'telemedicine.consultation_not_found',
    );
    expect((await rescheduleAs(harness.testApp, undefined, id, target)).statusCode).toBe(401);
    expect(await slotRow(database(), target)).toMatchObject({ status: 'OPEN' });
  });
});
