import { randomUUID } from 'node:crypto';
import type { Clock } from '@keel/platform/module';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { PATIENT_RECORD_RESOURCE_TYPE } from '../src/compliance/clinical-access.ts';
import type { ConsultationStatusColumn } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import {
  insertDoctor,
  signInDoctor,
  signInPatient,
  signInSupport,
  signInTelemedicineAdmin,
  signInWithRoles,
  type TelemedicineCaller,
} from './fixtures.ts';
import { insertConsultation } from './reviews.fixtures.ts';

// The clock stands still, so "today" (and so "in the future") is exact.
const fixedNow = new Date(Math.floor(Date.now() / 1000) * 1000);
const clock: Clock = { now: () => fixedNow };
const today = fixedNow.toISOString().slice(0, 10);
const tomorrow = new Date(fixedNow.getTime() + 86_400_000).toISOString().slice(0, 10);
const harness = useTestApp({
  modules: [telemedicineModule],
  clock,
  // Every test signs in fresh accounts; the login limiter would stop them.
  env: { RATE_LIMIT_ENABLED: 'false' },
});

type ProfileBody = {
  id: string;
  full_name: string;
  date_of_birth: string;
  sex: string;
  phone: string | null;
  emergency_contact: { name: string; phone: string; relationship: string } | null;
  allergies: string[];
  version: number;
  created_at: string;
  updated_at: string;
};

type AuditRow = { actor_id: string; action: string; resource_id: string; changes: Record<string, unknown> };

const fullProfile = {
  full_name: 'Ada Lovelace',
  date_of_birth: '1985-12-10',
  sex: 'female',
  phone: '+4930123456',
  emergency_contact: { name: 'Charles Babbage', phone: '+442071234567', relationship: 'friend' },
  allergies: ['penicillin', 'peanuts'],
};

function inject(caller: TelemedicineCaller | undefined, options: InjectOptions) {
  return harness.testApp.app.inject({
    ...options,
    headers: {
      ...(caller === undefined ? {} : { authorization: caller.authorization }),
      ...(options.headers ?? {}),
    },
  });
}

function putProfile(
  caller: TelemedicineCaller | undefined,
  payload: unknown,
  headers: Record<string, string> = {},
) {
  return inject(caller, {
    method: 'PUT',
    url: '/telemedicine/patients/me',
    payload: payload as object,
    headers,
  });
}

/** A signed-in patient with no profile yet. */
function signInNewPatient(): Promise<TelemedicineCaller> {
  return signInWithRoles(harness.testApp, ['telemedicine:patient']);
}

/** A signed-in patient with a profile created through the API. */
async function signInPatientWithProfile(): Promise<TelemedicineCaller> {
  const caller = await signInNewPatient();
  const response = await putProfile(caller, fullProfile);
  expect(response.statusCode, response.body).toBe(201);
  return caller;
}

async function clinicalAuditRows(patientId: string): Promise<AuditRow[]> {
  const result = await harness.testDb.database.pool.query<AuditRow>(
    `select actor_id, action, resource_id, changes from platform.audit_events
     where resource_type = $1 and resource_id = $2 order by id`,
    [PATIENT_RECORD_RESOURCE_TYPE, patientId],
  );
  return result.rows;
}

async function rawPatientRow(id: string): Promise<Record<string, string | null>> {
  const result = await harness.testDb.database.pool.query(
    'select full_name, date_of_birth, sex, phone, emergency_contact, allergies from telemedicine.patients where id = $1',
    [id],
  );
  return result.rows[0];
}

function expectProblem(
  response: { statusCode: number; body: string; headers: Record<string, unknown> },
  status: number,
  code: string,
) {
  expect(response.statusCode, response.body).toBe(status);
  expect(String(response.headers['content-type'])).toContain('application/problem+json');
  expect(JSON.parse(response.body).code).toBe(code);
}

describe('PUT /telemedicine/patients/me (putMyPatientProfile)', () => {
  it('creates the profile with 201, version 1 and an ETag, then replaces it with 200', async () => {
    const caller = await signInNewPatient();
    const created = await putProfile(caller, fullProfile);
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    expect(created.headers.location).toBe('/telemedicine/patients/me');
    expect(created.json<ProfileBody>()).toMatchObject({
      id: caller.account.id,
      ...fullProfile,
      version: 1,
      created_at: fixedNow.toISOString(),
    });

    const replaced = await putProfile(caller, {
      full_name: 'Ada King',
      date_of_birth: '1985-12-10',
      sex: 'female',
    });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.headers.etag).toBe('"2"');
    // A PUT replaces the whole profile: fields left out are cleared.
    expect(replaced.json<ProfileBody>()).toMatchObject({
      full_name: 'Ada King',
      phone: null,
      emergency_contact: null,
      allergies: [],
      version: 2,
    });
  });

  it('stores every personal field but sex encrypted', async () => {
    const caller = await signInPatientWithProfile();
    const row = await rawPatientRow(caller.account.id);
    expect(row.sex).toBe('female');
    const plaintexts: Record<string, string> = {
      full_name: 'Ada Lovelace',
      date_of_birth: '1985-12-10',
      phone: '+4930123456',
      emergency_contact: 'Babbage',
      allergies: 'penicillin',
    };
    for (const [column, plaintext] of Object.entries(plaintexts)) {
      expect(row[column], column).toMatch(/^kv1\./);
      expect(row[column], column).not.toContain(plaintext);
    }
  });

  it('audits the write under the patient record, in the access log', async () => {
    const caller = await signInPatientWithProfile();
    const rows = await clinicalAuditRows(caller.account.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor_id: caller.account.id,
      action: 'telemedicine.patient_profile_written',
      changes: { resource: 'patient_profile', operation: 'write', purpose: 'patient_access' },
    });
    // The audit row names the record, never its content.
    expect(JSON.stringify(rows[0]?.changes)).not.toContain('Lovelace');
  });

  it('accepts a matching If-Match and refuses a stale one with 412 telemedicine.version_mismatch', async () => {
    const caller = await signInPatientWithProfile();
    const updated = await putProfile(caller, fullProfile, { 'if-match': '"1"' });
    expect(updated.statusCode, updated.body).toBe(200);
    expect(updated.headers.etag).toBe('"2"');

    const stale = await putProfile(caller, fullProfile, { 'if-match': '"1"' });
    expectProblem(stale, 412, 'telemedicine.version_mismatch');
    expect(stale.json<{ current_version: number }>().current_version).toBe(2);
    expect(stale.headers.etag).toBe('"2"');
  });

  it('refuses If-Match on a profile that does not exist yet with 412', async () => {
    const caller = await signInNewPatient();
    expectProblem(
      await putProfile(caller, fullProfile, { 'if-match': '"1"' }),
      412,
      'telemedicine.version_mismatch',
    );
    // Nothing was created.
    const read = await inject(caller, { method: 'GET', url: '/telemedicine/patients/me' });
    expectProblem(read, 404, 'telemedicine.patient_profile_not_found');
  });

  it('refuses a malformed If-Match with 400 telemedicine.invalid_if_match', async () => {
    const caller = await signInPatientWithProfile();
    expectProblem(
      await putProfile(caller, fullProfile, { 'if-match': 'version-1' }),
      400,
      'telemedicine.invalid_if_match',
    );
  });

  it.each([
    ['a future date of birth', { date_of_birth: tomorrow }, 'telemedicine.invalid_date_of_birth'],
    ['a date of birth before 1900', { date_of_birth: '1899-12-31' }, 'telemedicine.invalid_date_of_birth'],
    ['a date that is not a calendar day', { date_of_birth: '2001-02-29' }, 'request.invalid'],
    ['a date in another format', { date_of_birth: '10/12/1985' }, 'request.invalid'],
    ['an empty name', { full_name: '' }, 'request.invalid'],
    ['a name over 200 characters', { full_name: 'x'.repeat(201) }, 'request.invalid'],
    ['an unknown sex', { sex: 'other' }, 'request.invalid'],
    ['a phone number that is not E.164', { phone: '030 123456' }, 'request.invalid'],
    [
      'an emergency contact without a phone',
      { emergency_contact: { name: 'B', relationship: 'x' } },
      'request.invalid',
    ],
    [
      'more than 50 allergies',
      { allergies: Array.from({ length: 51 }, (_, index) => `a${index}`) },
      'request.invalid',
    ],
    ['an unknown field', { blood_type: 'O+' }, 'request.invalid'],
    ['a number for the name', { full_name: 42 }, 'request.invalid'],
  ])('refuses %s with 400', async (_case, change, code) => {
    const caller = await signInNewPatient();
    const response = await putProfile(caller, { ...fullProfile, ...change });
    expectProblem(response, 400, code);
    expect(response.json<{ errors: { pointer: string }[] }>().errors.length).toBeGreaterThan(0);
  });

  it('accepts a date of birth of today (a newborn)', async () => {
    const caller = await signInNewPatient();
    const response = await putProfile(caller, { ...fullProfile, date_of_birth: today });
    expect(response.statusCode, response.body).toBe(201);
  });

  it('refuses a missing body with 400, not 500', async () => {
    const caller = await signInNewPatient();
    const response = await inject(caller, { method: 'PUT', url: '/telemedicine/patients/me' });
    expect(response.statusCode, response.body).toBe(400);
  });

  it('refuses anonymous callers with 401 and doctors, support and admins with 403', async () => {
    expectProblem(await putProfile(undefined, fullProfile), 401, 'auth.unauthenticated');
    const doctor = await signInDoctor(harness.testApp, harness.testDb.database);
    expectProblem(await putProfile(doctor, fullProfile), 403, 'auth.forbidden');
    expectProblem(await putProfile(await signInSupport(harness.testApp), fullProfile), 403, 'auth.forbidden');
    expectProblem(
      await putProfile(await signInTelemedicineAdmin(harness.testApp), fullProfile),
      403,
      'auth.forbidden',
    );
  });

  it('creates exactly one profile when the same patient sends concurrent first PUTs', async () => {
    const caller = await signInNewPatient();
    const responses = await Promise.all(Array.from({ length: 5 }, () => putProfile(caller, fullProfile)));
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 201]);
    const versions = responses.map((response) => response.json<ProfileBody>().version).sort();
    expect(versions).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('GET /telemedicine/patients/me (getMyPatientProfile)', () => {
  it('returns the decrypted profile with its ETag and audits the read', async () => {
    const caller = await signInPatientWithProfile();
    const response = await inject(caller, { method: 'GET', url: '/telemedicine/patients/me' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers.etag).toBe('"1"');
    expect(response.json<ProfileBody>()).toMatchObject({ id: caller.account.id, ...fullProfile, version: 1 });

    const rows = await clinicalAuditRows(caller.account.id);
    expect(rows.map((row) => row.action)).toEqual([
      'telemedicine.patient_profile_written',
      'telemedicine.patient_profile_viewed',
    ]);
    expect(rows[1]?.changes).toMatchObject({ operation: 'read', purpose: 'patient_access' });
  });

  it('reads a profile written by the shared fixtures (same encryption scheme)', async () => {
    const caller = await signInPatient(
      harness.testApp,
      harness.testDb.database,
      harness.testApp.security.fieldCrypto.encryption,
      { fullName: 'Fixture Patient', dateOfBirth: '1970-01-01' },
    );
    const response = await inject(caller, { method: 'GET', url: '/telemedicine/patients/me' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<ProfileBody>()).toMatchObject({
      full_name: 'Fixture Patient',
      date_of_birth: '1970-01-01',
      sex: 'unspecified',
      phone: null,
      allergies: [],
    });
  });

  it('answers 404 telemedicine.patient_profile_not_found before the profile exists, without an audit row', async () => {
    const caller = await signInNewPatient();
    expectProblem(
      await inject(caller, { method: 'GET', url: '/telemedicine/patients/me' }),
      404,
      'telemedicine.patient_profile_not_found',
    );
    expect(await clinicalAuditRows(caller.account.id)).toEqual([]);
  });

  it('refuses anonymous callers with 401 and doctors with 403', async () => {
    expectProblem(
      await inject(undefined, { method: 'GET', url: '/telemedicine/patients/me' }),
      401,
      'auth.unauthenticated',
    );
    const doctor = await signInDoctor(harness.testApp, harness.testDb.database);
    expectProblem(
      await inject(doctor, { method: 'GET', url: '/telemedicine/patients/me' }),
      403,
      'auth.forbidden',
    );
  });
});

describe('GET /telemedicine/patients/{id} (getPatientProfile)', () => {
  async function patientWithConsultation(status: ConsultationStatusColumn) {
    const patient = await signInPatientWithProfile();
    const doctor = await signInDoctor(harness.testApp, harness.testDb.database);
    await insertConsultation(
      harness.testDb.database,
      { patientId: patient.account.id, doctorId: doctor.account.id },
      status,
    );
    return { patient, doctor };
  }

  function readPatient(caller: TelemedicineCaller | undefined, patientId: string) {
    return inject(caller, { method: 'GET', url: `/telemedicine/patients/${patientId}` });
  }

  it.each(['SCHEDULED', 'IN_PROGRESS', 'COMPLETED'] as const)(
    'lets the treating doctor read it when their consultation is %s, audited with purpose treatment',
    async (status) => {
      const { patient, doctor } = await patientWithConsultation(status);
      const response = await readPatient(doctor, patient.account.id);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json<ProfileBody>()).toMatchObject({ id: patient.account.id, ...fullProfile });

      const rows = await clinicalAuditRows(patient.account.id);
      expect(rows.at(-1)).toMatchObject({
        actor_id: doctor.account.id,
        action: 'telemedicine.patient_profile_viewed',
        changes: { operation: 'read', purpose: 'treatment', actor_roles: ['telemedicine:doctor'] },
      });
    },
  );

  it.each(['PENDING_PAYMENT', 'CANCELLED', 'EXPIRED', 'NO_SHOW'] as const)(
    'hides it (404) from a doctor whose only consultation is %s, and writes no audit row',
    async (status) => {
      const { patient, doctor } = await patientWithConsultation(status);
      expectProblem(
        await readPatient(doctor, patient.account.id),
        404,
        'telemedicine.patient_profile_not_found',
      );
      expect((await clinicalAuditRows(patient.account.id)).map((row) => row.actor_id)).not.toContain(
        doctor.account.id,
      );
    },
  );

  it('hides it (404) from other doctors, other patients, support and admins', async () => {
    const { patient } = await patientWithConsultation('COMPLETED');
    const callers = [
      await signInDoctor(harness.testApp, harness.testDb.database),
      await signInPatientWithProfile(),
      await signInSupport(harness.testApp),
      await signInTelemedicineAdmin(harness.testApp),
    ];
    for (const caller of callers) {
      expectProblem(
        await readPatient(caller, patient.account.id),
        404,
        'telemedicine.patient_profile_not_found',
      );
    }
  });

  it('lets the patient read their own profile by id', async () => {
    const patient = await signInPatientWithProfile();
    const response = await readPatient(patient, patient.account.id);
    expect(response.statusCode, response.body).toBe(200);
    expect((await clinicalAuditRows(patient.account.id)).at(-1)?.changes).toMatchObject({
      purpose: 'patient_access',
    });
  });

  it('answers 404 for an unknown patient and 400 for an id that is not a uuid', async () => {
    const doctor = await signInDoctor(harness.testApp, harness.testDb.database);
    expectProblem(await readPatient(doctor, randomUUID()), 404, 'telemedicine.patient_profile_not_found');
    expectProblem(await readPatient(doctor, 'not-a-uuid'), 400, 'request.invalid');
  });

  it('refuses anonymous callers with 401 and callers without telemedicine roles with 403', async () => {
    const { patient } = await patientWithConsultation('COMPLETED');
    expectProblem(await readPatient(undefined, patient.account.id), 401, 'auth.unauthenticated');
    const outsider = await signInWithRoles(harness.testApp, []);
    expectProblem(await readPatient(outsider, patient.account.id), 403, 'auth.forbidden');
  });

  it('does not treat a doctor profile without a consultation as a relation', async () => {
    const patient = await signInPatientWithProfile();
    const doctorId = await insertDoctor(harness.testDb.database);
    const doctor = await signInDoctor(harness.testApp, harness.testDb.database);
    await insertConsultation(
      harness.testDb.database,
      { patientId: patient.account.id, doctorId },
      'COMPLETED',
    );
    // Another doctor treats this patient; the caller does not.
    expectProblem(
      await readPatient(doctor, patient.account.id),
      404,
      'telemedicine.patient_profile_not_found',
    );
  });
});
