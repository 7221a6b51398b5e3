import { randomUUID } from 'node:crypto';
import type { Clock } from '@keel/platform/module';
import {
  createTestAccount,
  createTestApiKey,
  describeMismatches,
  findMatrixGaps,
  type MatrixCaller,
  type MatrixObject,
  type MatrixRoute,
  runAccessMatrix,
  signIn,
  useTestApp,
} from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { TELEMEDICINE_PERMISSIONS } from '../src/access/telemedicine-permissions.ts';
import { telemedicineModule } from '../src/index.ts';
import { buildPrescriptionItem } from '../src/prescriptions/prescription.factories.ts';
import {
  createSlotTimes,
  insertConsultationAt,
  insertOpenSlot,
  insertReadyExport,
  insertTimeOff,
} from './access-matrix.fixtures.ts';
import { insertPayment, insertPendingExport } from './compliance.fixtures.ts';
import {
  insertDoctor,
  signInDoctor,
  signInPatient,
  signInSupport,
  signInTelemedicineAdmin,
  type TelemedicineCaller,
} from './fixtures.ts';

// Every route of the telemedicine service, called as every kind of caller.
// The route's permission decides who gets in; then the object rules decide
// what they may touch: a patient their own consultations, payments, notes,
// prescriptions and exports (patient A's here, never patient B's); a doctor
// the consultations they conduct (doctor A's, never doctor B's); support and
// admins every consultation's logistics and payments but no clinical
// content; an API key no one's consultation (it is neither patient nor
// doctor). Callers who get in send a valid request and expect an exact
// answer, so a route that lets them in but then fails shows up too.

// Fixed, so that "in the future" and the lifecycle windows (start from 15
// minutes before, no-show from 10 minutes after) are exact.
const NOW_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000;
const clock: Clock = { now: () => new Date(NOW_MS) };
const DAY = 86_400_000;

const harness = useTestApp({ modules: [telemedicineModule], clock, env: { RATE_LIMIT_ENABLED: 'false' } });

const P = TELEMEDICINE_PERMISSIONS;
// Written out rather than read from the role definitions: a permission added
// to a role changes who gets in, and must fail here until the matrix agrees.
const PATIENT_PERMISSIONS = [
  P.managePatientProfile,
  P.book,
  P.review,
  P.readOwnAccessLog,
  P.exportOwnData,
  P.readConsultations,
  P.cancelConsultations,
  P.rescheduleConsultations,
  P.readPrescriptions,
];
const DOCTOR_PERMISSIONS = [
  P.manageDoctorProfile,
  P.manageAvailability,
  P.readConsultations,
  P.cancelConsultations,
  P.conductConsultations,
  P.writeClinicalNotes,
  P.prescribe,
  P.readPrescriptions,
];
// Read-only operations, no clinical content.
const SUPPORT_PERMISSIONS = [P.readConsultations, P.readAllConsultations, P.readPayments];
const ADMIN_PERMISSIONS = [
  ...SUPPORT_PERMISSIONS,
  P.verifyDoctors,
  P.readAnalytics,
  P.manageAllAvailability,
  P.cancelConsultations,
  P.cancelAnyConsultation,
];
const KEY_PERMISSIONS = [P.readConsultations];
const ORIGIN = { requestId: null, ip: null, userAgent: null };

const consultationNotFound = { status: 404, code: 'telemedicine.consultation_not_found' };
const paymentNotFound = { status: 404, code: 'telemedicine.payment_not_found' };
const prescriptionNotFound = { status: 404, code: 'telemedicine.prescription_not_found' };
const patientNotFound = { status: 404, code: 'telemedicine.patient_profile_not_found' };
const exportNotFound = { status: 404, code: 'telemedicine.export_not_found' };
const timeOffNotFound = { status: 404, code: 'telemedicine.time_off_not_found' };
/** For callers who see a consultation's logistics but never its clinical content. */
const notForOperations = { support: consultationNotFound, admin: consultationNotFound };

const slotTimes = createSlotTimes(NOW_MS);

// Set in beforeAll.
const callers: MatrixCaller[] = [];
/** Patient A and doctor A are callers; patient B and doctor B own the "other" objects. */
let patientA: TelemedicineCaller;
let patientB: TelemedicineCaller;
let doctorA: TelemedicineCaller;
let doctorB: TelemedicineCaller;
let admin: TelemedicineCaller;
/** Has no schedule: its slots are the ones booked and rescheduled to, which no materialiser touches. */
let bookingDoctorId: string;
/** The doctor whose schedule the admin routes read and replace. */
let scheduledDoctorId: string;
/** COMPLETED consultations (A with A, B with B), each with a payment and a prescription. */
const completed = { own: '', other: '' };
const paymentIds = { own: '', other: '' };
const prescriptions = { own: { id: '', signature: '' }, other: { id: '', signature: '' } };
const pendingExportIds = { own: '', other: '' };
const readyExportIds = { own: '', other: '' };

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const database = () => harness.testDb.database;
const encryption = () => harness.testApp.security.fieldCrypto.encryption;

const PRESCRIPTION = {
  diagnosis: 'Acute pharyngitis',
  advice: 'Rest and fluids.',
  items: [buildPrescriptionItem()],
};

const EMPTY_SCHEDULE = { time_zone: 'Europe/Berlin', slot_minutes: 30, rules: [] };
// 100 days ahead: clear of every slot the matrix books or moves.
const OVERRIDE_DATE = new Date(NOW_MS + 100 * DAY).toISOString().slice(0, 10);

beforeAll(async () => {
  const { testApp } = harness;
  patientA = await signInPatient(testApp, database(), encryption(), { fullName: 'Matrix Patient A' });
  patientB = await signInPatient(testApp, database(), encryption(), { fullName: 'Matrix Patient B' });
  doctorA = await signInDoctor(testApp, database(), { fullName: 'Dr Matrix A' });
  doctorB = await signInDoctor(testApp, database(), { fullName: 'Dr Matrix B' });
  const support = await signInSupport(testApp);
  admin = await signInTelemedicineAdmin(testApp);
  bookingDoctorId = await insertDoctor(database());
  scheduledDoctorId = await insertDoctor(database());
  const noRoles = await createTestAccount(testApp);

  // An admin whose session never passed a second factor: it began before the
  // role was granted, so the role's permissions are withheld until MFA.
  const unverified = await createTestAccount(testApp);
  const unverifiedSession = await signIn(testApp, unverified);
  await testApp.security.identity.accounts.grantRole(
    { id: admin.account.id },
    unverified.id,
    'telemedicine:admin',
    ORIGIN,
  );

  callers.push(
    { name: 'anonymous' },
    {
      name: 'no-roles',
      authorization: (await signIn(testApp, noRoles)).authorization,
      kind: 'user',
      permissions: [],
      id: noRoles.id,
    },
    {
      name: 'patient',
      authorization: patientA.authorization,
      kind: 'user',
      permissions: PATIENT_PERMISSIONS,
      id: patientA.account.id,
    },
    {
      name: 'doctor',
      authorization: doctorA.authorization,
      kind: 'user',
      permissions: DOCTOR_PERMISSIONS,
      id: doctorA.account.id,
    },
    {
      name: 'support',
      authorization: support.authorization,
      kind: 'user',
      permissions: SUPPORT_PERMISSIONS,
      id: support.account.id,
    },
    {
      name: 'admin',
      authorization: admin.authorization,
      kind: 'user',
      permissions: ADMIN_PERMISSIONS,
      id: admin.account.id,
    },
    {
      name: 'admin-without-mfa',
      authorization: unverifiedSession.authorization,
      kind: 'user',
      permissions: [],
      id: unverified.id,
    },
    {
      name: 'key',
      authorization: await createTestApiKey(testApp, KEY_PERMISSIONS),
      kind: 'api_key',
      permissions: KEY_PERMISSIONS,
    },
  );

  for (const object of ['own', 'other'] as const) {
    const { patient, doctor } = partiesFor(object);
    completed[object] = await insertConsultationAt(
      database(),
      { patientId: patient.account.id, doctorId: doctor.account.id },
      'COMPLETED',
      slotTimes.past(),
    );
    paymentIds[object] = await insertPayment(database(), {
      consultationId: completed[object],
      patientId: patient.account.id,
      amountMinor: 5000,
    });
    prescriptions[object] = await issuePrescription(doctor, completed[object]);
    pendingExportIds[object] = await insertPendingExport(database(), patient.account.id);
    readyExportIds[object] = await insertReadyExport(database(), encryption(), patient.account.id, NOW_MS);
  }

  await putSchedule(doctorA.authorization, '/telemedicine/doctors/me/schedule');
  await putSchedule(admin.authorization, `/telemedicine/doctors/${scheduledDoctorId}/schedule`);
});

/** Own objects are patient A's with doctor A; the other ones patient B's with doctor B. */
function partiesFor(object: MatrixObject): { patient: TelemedicineCaller; doctor: TelemedicineCaller } {
  return object === 'other' ? { patient: patientB, doctor: doctorB } : { patient: patientA, doctor: doctorA };
}

const pick = <T>(pair: { own: T; other: T }, object: MatrixObject): T =>
  object === 'other' ? pair.other : pair.own;

/** A fresh consultation between the object's patient and doctor. */
function freshConsultation(
  object: MatrixObject,
  status: 'SCHEDULED' | 'IN_PROGRESS' | 'COMPLETED',
  startsAt: Date,
): Promise<string> {
  const { patient, doctor } = partiesFor(object);
  return insertConsultationAt(
    database(),
    { patientId: patient.account.id, doctorId: doctor.account.id },
    status,
    startsAt,
  );
}

async function issuePrescription(
  doctor: TelemedicineCaller,
  consultationId: string,
): Promise<{ id: string; signature: string }> {
  const response = await inject({
    method: 'POST',
    url: `/telemedicine/consultations/${consultationId}/prescriptions`,
    headers: { authorization: doctor.authorization },
    payload: PRESCRIPTION,
  });
  if (response.statusCode !== 201) throw new Error(`could not issue a prescription: ${response.body}`);
  return response.json<{ id: string; signature: string }>();
}

async function putSchedule(authorization: string, url: string): Promise<void> {
  const response = await inject({ method: 'PUT', url, headers: { authorization }, payload: EMPTY_SCHEDULE });
  if (response.statusCode !== 201) throw new Error(`could not set a schedule: ${response.body}`);
}

async function addTimeOff(doctor: TelemedicineCaller): Promise<string> {
  return insertTimeOff(database(), doctor.account.id, NOW_MS);
}

const routes: MatrixRoute[] = [
  // Patients.
  {
    method: 'PUT',
    path: '/telemedicine/patients/me',
    access: P.managePatientProfile,
    request: () => ({
      url: '/telemedicine/patients/me',
      payload: { full_name: 'Matrix Patient A', date_of_birth: '1990-01-01', sex: 'unspecified' },
    }),
    allowed: 200,
  },
  { method: 'GET', path: '/telemedicine/patients/me', access: P.managePatientProfile, allowed: 200 },
  {
    method: 'GET',
    path: '/telemedicine/patients/:patientId',
    access: P.readConsultations,
    // Patient A is the patient's own record and doctor A's patient; B is neither's.
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/patients/${partiesFor(object).patient.account.id}` }),
    allowed: 200,
    othersObject: patientNotFound,
    expect: { support: patientNotFound, admin: patientNotFound, key: patientNotFound },
  },

  // Doctors.
  {
    method: 'PUT',
    path: '/telemedicine/doctors/me',
    access: P.manageDoctorProfile,
    // The registration number it already has, so the profile stays VERIFIED.
    request: ({ caller }) => ({
      url: '/telemedicine/doctors/me',
      payload: {
        full_name: 'Dr Matrix A',
        specialties: ['general practice'],
        languages: ['en'],
        registration_number: `REG-${caller.id}`,
        years_of_experience: 10,
        fee_minor: 5000,
        currency: 'EUR',
        time_zone: 'Europe/Berlin',
      },
    }),
    allowed: 200,
  },
  { method: 'GET', path: '/telemedicine/doctors/me', access: P.manageDoctorProfile, allowed: 200 },
  {
    method: 'GET',
    path: '/telemedicine/doctors',
    access: P.verifyDoctors,
    request: () => ({ url: '/telemedicine/doctors?status=PENDING' }),
    allowed: 200,
  },
  {
    method: 'GET',
    path: '/telemedicine/doctors/:doctorId',
    access: 'public',
    request: () => ({ url: `/telemedicine/doctors/${doctorA.account.id}` }),
    allowed: 200,
  },
  {
    method: 'POST',
    path: '/telemedicine/doctors/:doctorId/verify',
    access: P.verifyDoctors,
    request: async () => ({
      url: `/telemedicine/doctors/${await insertDoctor(database(), randomUUID(), { status: 'PENDING' })}/verify`,
    }),
    allowed: 200,
  },
  {
    method: 'POST',
    path: '/telemedicine/doctors/:doctorId/suspend',
    access: P.verifyDoctors,
    request: async () => ({
      url: `/telemedicine/doctors/${await insertDoctor(database())}/suspend`,
      payload: { reason: 'matrix' },
    }),
    allowed: 200,
  },

  // Availability: a doctor's own, and any doctor's for admins.
  { method: 'GET', path: '/telemedicine/doctors/me/schedule', access: P.manageAvailability, allowed: 200 },
  {
    method: 'PUT',
    path: '/telemedicine/doctors/me/schedule',
    access: P.manageAvailability,
    // No windows: nothing to materialise, so no slot of the matrix is withdrawn.
    request: () => ({ url: '/telemedicine/doctors/me/schedule', payload: EMPTY_SCHEDULE }),
    allowed: 200,
  },
  {
    method: 'GET',
    path: '/telemedicine/doctors/me/schedule/overrides',
    access: P.manageAvailability,
    allowed: 200,
  },
  {
    method: 'PUT',
    path: '/telemedicine/doctors/me/schedule/overrides/:date',
    access: P.manageAvailability,
    request: () => ({
      url: `/telemedicine/doctors/me/schedule/overrides/${OVERRIDE_DATE}`,
      payload: { is_available: false },
    }),
    allowed: 200,
  },
  {
    method: 'DELETE',
    path: '/telemedicine/doctors/me/schedule/overrides/:date',
    access: P.manageAvailability,
    request: () => ({ url: `/telemedicine/doctors/me/schedule/overrides/${OVERRIDE_DATE}` }),
    allowed: 204,
  },
  {
    method: 'POST',
    path: '/telemedicine/doctors/me/time-off',
    access: P.manageAvailability,
    request: () => ({
      url: '/telemedicine/doctors/me/time-off',
      payload: {
        starts_at: new Date(NOW_MS + 200 * DAY).toISOString(),
        ends_at: new Date(NOW_MS + 201 * DAY).toISOString(),
        reason: 'matrix',
      },
    }),
    allowed: 201,
  },
  { method: 'GET', path: '/telemedicine/doctors/me/time-off', access: P.manageAvailability, allowed: 200 },
  {
    method: 'DELETE',
    path: '/telemedicine/doctors/me/time-off/:timeOffId',
    access: P.manageAvailability,
    objects: ['own', 'other'],
    request: async ({ object }) => ({
      url: `/telemedicine/doctors/me/time-off/${await addTimeOff(partiesFor(object).doctor)}`,
    }),
    allowed: 204,
    othersObject: timeOffNotFound,
  },
  {
    method: 'GET',
    path: '/telemedicine/doctors/:doctorId/schedule',
    access: P.manageAllAvailability,
    request: () => ({ url: `/telemedicine/doctors/${scheduledDoctorId}/schedule` }),
    allowed: 200,
  },
  {
    method: 'PUT',
    path: '/telemedicine/doctors/:doctorId/schedule',
    access: P.manageAllAvailability,
    request: () => ({ url: `/telemedicine/doctors/${scheduledDoctorId}/schedule`, payload: EMPTY_SCHEDULE }),
    allowed: 200,
  },
  {
    method: 'GET',
    path: '/telemedicine/doctors/:doctorId/slots',
    access: 'public',
    request: () => ({ url: `/telemedicine/doctors/${bookingDoctorId}/slots` }),
    allowed: 200,
  },

  // Search and reviews.
  {
    method: 'GET',
    path: '/telemedicine/search/doctors',
    access: 'public',
    request: () => ({ url: '/telemedicine/search/doctors?specialty=general%20practice' }),
    allowed: 200,
  },
  {
    method: 'GET',
    path: '/telemedicine/doctors/:doctorId/reviews',
    access: 'public',
    request: () => ({ url: `/telemedicine/doctors/${doctorA.account.id}/reviews` }),
    allowed: 200,
  },
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/review',
    access: P.review,
    objects: ['own', 'other'],
    // One review per consultation: a fresh COMPLETED one per cell.
    request: async ({ object }) => ({
      url: `/telemedicine/consultations/${await freshConsultation(object, 'COMPLETED', slotTimes.past())}/review`,
      payload: { rating: 5, comment: 'matrix' },
    }),
    allowed: 201,
    othersObject: consultationNotFound,
  },

  // Booking and consultations.
  {
    method: 'POST',
    path: '/telemedicine/consultations',
    access: P.book,
    request: async () => ({
      url: '/telemedicine/consultations',
      headers: { 'idempotency-key': randomUUID() },
      payload: {
        slot_id: await insertOpenSlot(database(), bookingDoctorId, slotTimes.future()),
        reason: 'matrix',
        consent: { treatment: true, telehealth: true, version: '2026-01' },
      },
    }),
    allowed: 201,
  },
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/cancel',
    access: P.cancelConsultations,
    objects: ['own', 'other'],
    request: async ({ object }) => ({
      url: `/telemedicine/consultations/${await freshConsultation(object, 'SCHEDULED', slotTimes.future())}/cancel`,
      payload: { reason: 'matrix' },
    }),
    allowed: 200,
    othersObject: consultationNotFound,
    // Admins cancel anyone's consultation.
    expect: { admin: 200 },
  },
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/reschedule',
    access: P.rescheduleConsultations,
    objects: ['own', 'other'],
    // With the booking doctor: the new slot must be the same doctor's.
    request: async ({ object }) => {
      const consultationId = await insertConsultationAt(
        database(),
        { patientId: partiesFor(object).patient.account.id, doctorId: bookingDoctorId },
        'SCHEDULED',
        slotTimes.future(),
      );
      return {
        url: `/telemedicine/consultations/${consultationId}/reschedule`,
        payload: { slot_id: await insertOpenSlot(database(), bookingDoctorId, slotTimes.future()) },
      };
    },
    allowed: 200,
    othersObject: consultationNotFound,
  },
  // Everyone listing sees only what they may: participants their own, operations everything, a key nothing.
  { method: 'GET', path: '/telemedicine/consultations', access: P.readConsultations, allowed: 200 },
  {
    method: 'GET',
    path: '/telemedicine/consultations/:consultationId',
    access: P.readConsultations,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/consultations/${pick(completed, object)}` }),
    allowed: 200,
    othersObject: consultationNotFound,
    // Logistics for support and admins; an API key is no one's patient or doctor.
    expect: { support: 200, admin: 200, key: consultationNotFound },
  },

  // Payments: the patient's and operations', never the doctor's.
  {
    method: 'GET',
    path: '/telemedicine/payments/:paymentId',
    access: P.readConsultations,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/payments/${pick(paymentIds, object)}` }),
    allowed: 200,
    othersObject: paymentNotFound,
    expect: { doctor: paymentNotFound, support: 200, admin: 200, key: paymentNotFound },
  },
  {
    method: 'GET',
    path: '/telemedicine/consultations/:consultationId/payment',
    access: P.readConsultations,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/consultations/${pick(completed, object)}/payment` }),
    allowed: 200,
    othersObject: paymentNotFound,
    expect: { doctor: paymentNotFound, support: 200, admin: 200, key: paymentNotFound },
  },
  {
    method: 'POST',
    path: '/telemedicine/payments/webhooks',
    access: 'public',
    // No Gateway-Signature: refused the same whoever calls.
    request: () => ({
      url: '/telemedicine/payments/webhooks',
      payload: { id: `evt_${randomUUID()}`, type: 'payment_intent.succeeded', data: { object: {} } },
    }),
    allowed: { status: 400, code: 'payments.invalid_signature' },
  },

  // Clinical care: the consultation's doctor moves it and writes notes; its two participants read them.
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/start',
    access: P.conductConsultations,
    objects: ['own', 'other'],
    request: async ({ object }) => ({
      url: `/telemedicine/consultations/${await freshConsultation(object, 'SCHEDULED', slotTimes.past())}/start`,
      headers: { 'if-match': '"1"' },
    }),
    allowed: 200,
    othersObject: consultationNotFound,
  },
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/complete',
    access: P.conductConsultations,
    objects: ['own', 'other'],
    request: async ({ object }) => ({
      url: `/telemedicine/consultations/${await freshConsultation(object, 'IN_PROGRESS', slotTimes.past())}/complete`,
      headers: { 'if-match': '"1"' },
    }),
    allowed: 200,
    othersObject: consultationNotFound,
  },
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/no-show',
    access: P.conductConsultations,
    objects: ['own', 'other'],
    request: async ({ object }) => ({
      url: `/telemedicine/consultations/${await freshConsultation(object, 'SCHEDULED', slotTimes.past())}/no-show`,
      headers: { 'if-match': '"1"' },
    }),
    allowed: 200,
    othersObject: consultationNotFound,
  },
  {
    method: 'PUT',
    path: '/telemedicine/consultations/:consultationId/notes',
    access: P.writeClinicalNotes,
    objects: ['own', 'other'],
    request: ({ object }) => ({
      url: `/telemedicine/consultations/${pick(completed, object)}/notes`,
      payload: { notes: 'Sore throat, no fever.' },
    }),
    allowed: 200,
    othersObject: consultationNotFound,
  },
  {
    method: 'GET',
    path: '/telemedicine/consultations/:consultationId/notes',
    access: P.readConsultations,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/consultations/${pick(completed, object)}/notes` }),
    allowed: 200,
    othersObject: consultationNotFound,
    expect: { ...notForOperations, key: consultationNotFound },
  },

  // Prescriptions: the doctor issues and corrects; the two participants read; pharmacies verify.
  {
    method: 'POST',
    path: '/telemedicine/consultations/:consultationId/prescriptions',
    access: P.prescribe,
    objects: ['own', 'other'],
    // One prescription per consultation: a fresh COMPLETED one per cell.
    request: async ({ object }) => ({
      url: `/telemedicine/consultations/${await freshConsultation(object, 'COMPLETED', slotTimes.past())}/prescriptions`,
      payload: PRESCRIPTION,
    }),
    allowed: 201,
    othersObject: consultationNotFound,
  },
  {
    method: 'POST',
    path: '/telemedicine/prescriptions/:prescriptionId/corrections',
    access: P.prescribe,
    objects: ['own', 'other'],
    // A prescription is corrected once: a fresh one per cell.
    request: async ({ object }) => {
      const { doctor } = partiesFor(object);
      const consultationId = await freshConsultation(object, 'COMPLETED', slotTimes.past());
      const prescription = await issuePrescription(doctor, consultationId);
      return { url: `/telemedicine/prescriptions/${prescription.id}/corrections`, payload: PRESCRIPTION };
    },
    allowed: 201,
    othersObject: prescriptionNotFound,
  },
  {
    method: 'GET',
    path: '/telemedicine/consultations/:consultationId/prescriptions',
    access: P.readPrescriptions,
    objects: ['own', 'other'],
    request: ({ object }) => ({
      url: `/telemedicine/consultations/${pick(completed, object)}/prescriptions`,
    }),
    allowed: 200,
    othersObject: consultationNotFound,
  },
  {
    method: 'GET',
    path: '/telemedicine/prescriptions/:prescriptionId',
    access: P.readPrescriptions,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/prescriptions/${pick(prescriptions, object).id}` }),
    allowed: 200,
    othersObject: prescriptionNotFound,
  },
  {
    method: 'GET',
    path: '/telemedicine/prescriptions/:prescriptionId/pdf',
    access: P.readPrescriptions,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/prescriptions/${pick(prescriptions, object).id}/pdf` }),
    allowed: 200,
    othersObject: prescriptionNotFound,
  },
  { method: 'GET', path: '/telemedicine/prescriptions/signing-keys', access: 'public', allowed: 200 },
  {
    method: 'POST',
    path: '/telemedicine/prescriptions/verify',
    access: 'public',
    request: () => ({
      url: '/telemedicine/prescriptions/verify',
      payload: { prescription_id: prescriptions.own.id, signature: prescriptions.own.signature },
    }),
    allowed: 200,
  },

  // Compliance: a patient's own record only.
  { method: 'GET', path: '/telemedicine/me/access-log', access: P.readOwnAccessLog, allowed: 200 },
  { method: 'GET', path: '/telemedicine/me/consents', access: P.readOwnAccessLog, allowed: 200 },
  { method: 'POST', path: '/telemedicine/me/data-exports', access: P.exportOwnData, allowed: 202 },
  {
    method: 'GET',
    path: '/telemedicine/me/data-exports/:exportId',
    access: P.exportOwnData,
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/telemedicine/me/data-exports/${pick(pendingExportIds, object)}` }),
    allowed: 200,
    othersObject: exportNotFound,
  },
  {
    method: 'GET',
    path: '/telemedicine/me/data-exports/:exportId/archive',
    access: P.exportOwnData,
    objects: ['own', 'other'],
    request: ({ object }) => ({
      url: `/telemedicine/me/data-exports/${pick(readyExportIds, object)}/archive`,
    }),
    allowed: 200,
    othersObject: exportNotFound,
  },

  // Analytics: admins only.
  { method: 'GET', path: '/telemedicine/admin/analytics', access: P.readAnalytics, allowed: 200 },
];

function callerNamed(name: string): MatrixCaller {
  const caller = callers.find((candidate) => candidate.name === name);
  if (caller === undefined) throw new Error(`no caller ${name}`);
  return caller;
}

describe('telemedicine access matrix', () => {
  it('withholds the permissions of the telemedicine admin role from a session that never passed MFA', async () => {
    const me = await inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: callerNamed('admin-without-mfa').authorization ?? '' },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({
      roles: ['telemedicine:admin'],
      permissions: [],
      mfa_authenticated: false,
    });
  });

  it('lists every telemedicine route, so a new one fails here until it states who may call it', () => {
    // Routes outside /telemedicine are the platform's, covered by the server's matrix.
    const gaps = findMatrixGaps(harness.testApp.app, routes, {
      isExempt: (route) => !route.path.startsWith('/telemedicine'),
    });
    expect(gaps).toEqual({ uncovered: [], unknown: [] });
  });

  // The matrix compares statuses; these two look inside the answers the
  // matrix lets through, where the object rules also apply.
  it('answers support and admins a consultation without its clinical reason, and its participants with it', async () => {
    for (const name of ['patient', 'doctor', 'support', 'admin']) {
      const response = await inject({
        method: 'GET',
        url: `/telemedicine/consultations/${completed.own}`,
        headers: { authorization: callerNamed(name).authorization ?? '' },
      });
      expect(response.statusCode, name).toBe(200);
      const isParticipant = name === 'patient' || name === 'doctor';
      expect(Object.hasOwn(response.json(), 'reason'), name).toBe(isParticipant);
    }
  });

  it('lists participants only the consultations they take part in, and an API key none', async () => {
    const listAs = async (name: string) => {
      const response = await inject({
        method: 'GET',
        url: '/telemedicine/consultations?limit=100',
        headers: { authorization: callerNamed(name).authorization ?? '' },
      });
      expect(response.statusCode, name).toBe(200);
      return response.json<{ items: { id: string; patient_id: string; doctor_id: string }[] }>().items;
    };
    const patientItems = await listAs('patient');
    expect(patientItems.map((item) => item.id)).toContain(completed.own);
    expect(patientItems.every((item) => item.patient_id === patientA.account.id)).toBe(true);
    const doctorItems = await listAs('doctor');
    expect(doctorItems.map((item) => item.id)).toContain(completed.own);
    expect(doctorItems.every((item) => item.doctor_id === doctorA.account.id)).toBe(true);
    expect(await listAs('key')).toEqual([]);
  });

  it('refuses every route to callers without its permission or the object, and lets the others through', async () => {
    const cells = await runAccessMatrix(harness.testApp.app, { callers, routes });
    expect(describeMismatches(cells)).toEqual([]);
    expect(cells).toHaveLength(
      routes.reduce((total, route) => total + (route.objects?.length ?? 1), 0) * callers.length,
    );
  }, 240_000);
});
