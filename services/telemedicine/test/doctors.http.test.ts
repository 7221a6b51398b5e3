import { randomUUID } from 'node:crypto';
import { DoctorProfileChangedV1 } from '@keel/contracts';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
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

const harness = useTestApp({
  modules: [telemedicineModule],
  // Every test signs in fresh accounts; the login limiter would stop them.
  env: { RATE_LIMIT_ENABLED: 'false' },
});

type DoctorBody = {
  id: string;
  full_name: string;
  specialties: string[];
  languages: string[];
  registration_number: string;
  status: 'PENDING' | 'VERIFIED' | 'SUSPENDED';
  verified_at: string | null;
  verified_by: string | null;
  rating: number | null;
  rating_count: number;
  version: number;
  created_at: string;
  [field: string]: unknown;
};

type Page = { items: DoctorBody[]; next_cursor: string | null };

function database() {
  return harness.testDb.database;
}

function profile(overrides: Record<string, unknown> = {}) {
  return {
    full_name: 'Dr Grace Hopper',
    specialties: ['cardiology', 'general practice'],
    languages: ['en', 'de'],
    qualifications: ['MD', 'FRCP'],
    registration_number: `GMC-${randomUUID().slice(0, 8)}`,
    years_of_experience: 12,
    fee_minor: 6500,
    currency: 'EUR',
    bio: 'Heart health.\nAlso general practice.',
    time_zone: 'Europe/Berlin',
    ...overrides,
  };
}

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
    url: '/telemedicine/doctors/me',
    payload: payload as object,
    headers,
  });
}

function expectProblem(response: { statusCode: number; body: string }, status: number, code: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(JSON.parse(response.body).code).toBe(code);
}

/** A signed-in doctor without a profile. */
function signInNewDoctor(): Promise<TelemedicineCaller> {
  return signInWithRoles(harness.testApp, ['telemedicine:doctor']);
}

/** A signed-in doctor whose PENDING profile was created through the API. */
async function signInPendingDoctor(
  overrides: Record<string, unknown> = {},
): Promise<{ caller: TelemedicineCaller; doctor: DoctorBody }> {
  const caller = await signInNewDoctor();
  const response = await putProfile(caller, profile(overrides));
  expect(response.statusCode, response.body).toBe(201);
  return { caller, doctor: response.json<DoctorBody>() };
}

async function doctorEvents(doctorId: string): Promise<{ status: string; change: string }[]> {
  const result = await database().pool.query<{ payload: { status: string; change: string } }>(
    `select payload from platform.outbox_events where type = $1 and aggregate_id = $2 order by position`,
    [DoctorProfileChangedV1.type, doctorId],
  );
  return result.rows.map((row) => ({ status: row.payload.status, change: row.payload.change }));
}

async function doctorAuditRows(
  doctorId: string,
): Promise<{ action: string; actor_id: string; changes: Record<string, unknown> }[]> {
  const result = await database().pool.query(
    `select action, actor_id, changes from platform.audit_events
     where resource_type = 'telemedicine.doctor' and resource_id = $1 order by id`,
    [doctorId],
  );
  return result.rows;
}

function verify(caller: TelemedicineCaller | undefined, doctorId: string) {
  return inject(caller, { method: 'POST', url: `/telemedicine/doctors/${doctorId}/verify` });
}

function suspend(
  caller: TelemedicineCaller | undefined,
  doctorId: string,
  payload: object | null = { reason: 'Licence lapsed' },
) {
  return inject(caller, {
    method: 'POST',
    url: `/telemedicine/doctors/${doctorId}/suspend`,
    ...(payload === null ? {} : { payload }),
  });
}

describe('PUT /telemedicine/doctors/me (putMyDoctorProfile)', () => {
  it('creates a PENDING profile with 201 and emits doctor_profile_changed (profile)', async () => {
    const caller = await signInNewDoctor();
    const body = profile();
    const response = await putProfile(caller, body);
    expect(response.statusCode, response.body).toBe(201);
    expect(response.headers.etag).toBe('"1"');
    expect(response.headers.location).toBe('/telemedicine/doctors/me');
    expect(response.json<DoctorBody>()).toMatchObject({
      ...body,
      id: caller.account.id,
      status: 'PENDING',
      verified_at: null,
      verified_by: null,
      rating: null,
      rating_count: 0,
      version: 1,
    });
    expect(await doctorEvents(caller.account.id)).toEqual([{ status: 'PENDING', change: 'profile' }]);
  });

  it('updates with 200 and the next version, honouring If-Match', async () => {
    const { caller, doctor } = await signInPendingDoctor();
    const updated = await putProfile(
      caller,
      profile({ registration_number: doctor.registration_number, fee_minor: 7000 }),
      { 'if-match': '"1"' },
    );
    expect(updated.statusCode, updated.body).toBe(200);
    expect(updated.headers.etag).toBe('"2"');
    expect(updated.json<DoctorBody>()).toMatchObject({ fee_minor: 7000, version: 2, status: 'PENDING' });

    const stale = await putProfile(caller, profile(), { 'if-match': '"1"' });
    expectProblem(stale, 412, 'telemedicine.version_mismatch');
    expectProblem(
      await putProfile(caller, profile(), { 'if-match': 'W/"x"' }),
      400,
      'telemedicine.invalid_if_match',
    );
    expect(await doctorEvents(caller.account.id)).toHaveLength(2);
  });

  it('refuses a registration number another doctor holds with 409 telemedicine.registration_number_taken', async () => {
    const otherId = await insertDoctor(database());
    const caller = await signInNewDoctor();
    const response = await putProfile(caller, profile({ registration_number: `REG-${otherId}` }));
    expectProblem(response, 409, 'telemedicine.registration_number_taken');
    expect(response.json<{ errors: { pointer: string }[] }>().errors[0]?.pointer).toBe(
      '/body/registration_number',
    );
    expect(await doctorEvents(caller.account.id)).toEqual([]);
  });

  it('lets one of two doctors claiming the same new registration number concurrently win (the constraint decides)', async () => {
    const first = await signInNewDoctor();
    const second = await signInNewDoctor();
    const registration = `RACE-${randomUUID()}`;
    const responses = await Promise.all([
      putProfile(first, profile({ registration_number: registration })),
      putProfile(second, profile({ registration_number: registration })),
    ]);
    expect(responses.map((response) => response.statusCode).sort()).toEqual([201, 409]);
    for (const response of responses.filter((candidate) => candidate.statusCode === 409)) {
      expectProblem(response, 409, 'telemedicine.registration_number_taken');
    }
    const holders = await database().pool.query(
      'select id from telemedicine.doctors where registration_number = $1',
      [registration],
    );
    expect(holders.rowCount).toBe(1);
  });

  it('sends a verified doctor back to PENDING when the registration number changes, not otherwise', async () => {
    const caller = await signInDoctor(harness.testApp, database());
    const registration = `REG-${caller.account.id}`;
    const sameNumber = await putProfile(
      caller,
      profile({ registration_number: registration, fee_minor: 9000 }),
    );
    expect(sameNumber.statusCode, sameNumber.body).toBe(200);
    expect(sameNumber.json<DoctorBody>()).toMatchObject({ status: 'VERIFIED', fee_minor: 9000 });
    expect(sameNumber.json<DoctorBody>().verified_at).not.toBeNull();

    const newNumber = await putProfile(caller, profile({ registration_number: `NEW-${caller.account.id}` }));
    expect(newNumber.statusCode, newNumber.body).toBe(200);
    expect(newNumber.json<DoctorBody>()).toMatchObject({
      status: 'PENDING',
      verified_at: null,
      verified_by: null,
    });
    expect(await doctorEvents(caller.account.id)).toEqual([
      { status: 'VERIFIED', change: 'profile' },
      { status: 'PENDING', change: 'profile' },
      { status: 'PENDING', change: 'verification' },
    ]);
    // No longer public.
    expectProblem(
      await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${caller.account.id}` }),
      404,
      'telemedicine.doctor_not_found',
    );
  });

  it('keeps a suspended doctor suspended whatever they edit', async () => {
    const caller = await signInDoctor(harness.testApp, database(), { status: 'SUSPENDED' });
    const response = await putProfile(caller, profile());
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<DoctorBody>().status).toBe('SUSPENDED');
  });

  it.each([
    [
      'a time zone that does not exist',
      { time_zone: 'Mars/Olympus_Mons' },
      'telemedicine.invalid_time_zone',
      '/body/time_zone',
    ],
    ['a UTC offset instead of a zone', { time_zone: '+01:00' }, 'request.invalid', '/body/time_zone'],
    [
      'an unknown language code',
      { languages: ['en', 'xx'] },
      'telemedicine.invalid_language',
      '/body/languages/1',
    ],
    ['an upper-case language code', { languages: ['EN'] }, 'request.invalid', '/body/languages/0'],
    ['an unknown currency', { currency: 'ABC' }, 'telemedicine.invalid_currency', '/body/currency'],
    ['a lower-case currency', { currency: 'eur' }, 'request.invalid', '/body/currency'],
    ['no specialties', { specialties: [] }, 'request.invalid', '/body/specialties'],
    [
      'eleven specialties',
      { specialties: Array.from({ length: 11 }, (_, index) => `s${index}`) },
      'request.invalid',
      '/body/specialties',
    ],
    ['an upper-case specialty', { specialties: ['Cardiology'] }, 'request.invalid', '/body/specialties/0'],
    [
      'a repeated specialty',
      { specialties: ['cardiology', 'cardiology'] },
      'request.invalid',
      '/body/specialties',
    ],
    ['no languages', { languages: [] }, 'request.invalid', '/body/languages'],
    [
      '21 qualifications',
      { qualifications: Array.from({ length: 21 }, (_, index) => `q${index}`) },
      'request.invalid',
      '/body/qualifications',
    ],
    ['a zero fee', { fee_minor: 0 }, 'request.invalid', '/body/fee_minor'],
    ['a fee over 10,000,000', { fee_minor: 10_000_001 }, 'request.invalid', '/body/fee_minor'],
    ['a fractional fee', { fee_minor: 10.5 }, 'request.invalid', '/body/fee_minor'],
    ['81 years of experience', { years_of_experience: 81 }, 'request.invalid', '/body/years_of_experience'],
    ['a bio over 4000 characters', { bio: 'x'.repeat(4001) }, 'request.invalid', '/body/bio'],
    [
      'a two-character registration number',
      { registration_number: 'AB' },
      'request.invalid',
      '/body/registration_number',
    ],
    ['an empty name', { full_name: '' }, 'request.invalid', '/body/full_name'],
    ['an unknown field', { status: 'VERIFIED' }, 'request.invalid', '/body/status'],
  ])('refuses %s with 400 and a pointer', async (_case, change, code, pointer) => {
    const caller = await signInNewDoctor();
    const response = await putProfile(caller, profile(change));
    expectProblem(response, 400, code);
    const pointers = response.json<{ errors: { pointer: string }[] }>().errors.map((error) => error.pointer);
    expect(pointers).toContain(pointer);
  });

  it('refuses anonymous callers with 401 and patients and admins with 403', async () => {
    expectProblem(await putProfile(undefined, profile()), 401, 'auth.unauthenticated');
    const patient = await signInPatient(
      harness.testApp,
      database(),
      harness.testApp.security.fieldCrypto.encryption,
    );
    expectProblem(await putProfile(patient, profile()), 403, 'auth.forbidden');
    expectProblem(
      await putProfile(await signInTelemedicineAdmin(harness.testApp), profile()),
      403,
      'auth.forbidden',
    );
  });
});

describe('GET /telemedicine/doctors/me (getMyDoctorProfile)', () => {
  it('returns the own profile in any status with its ETag', async () => {
    const { caller } = await signInPendingDoctor();
    const response = await inject(caller, { method: 'GET', url: '/telemedicine/doctors/me' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers.etag).toBe('"1"');
    expect(response.json<DoctorBody>()).toMatchObject({ id: caller.account.id, status: 'PENDING' });
  });

  it('answers 404 telemedicine.doctor_profile_not_found before the profile exists', async () => {
    const caller = await signInNewDoctor();
    expectProblem(
      await inject(caller, { method: 'GET', url: '/telemedicine/doctors/me' }),
      404,
      'telemedicine.doctor_profile_not_found',
    );
  });

  it('refuses anonymous callers with 401 and patients with 403', async () => {
    expectProblem(
      await inject(undefined, { method: 'GET', url: '/telemedicine/doctors/me' }),
      401,
      'auth.unauthenticated',
    );
    const patient = await signInPatient(
      harness.testApp,
      database(),
      harness.testApp.security.fieldCrypto.encryption,
    );
    expectProblem(
      await inject(patient, { method: 'GET', url: '/telemedicine/doctors/me' }),
      403,
      'auth.forbidden',
    );
  });
});

describe('GET /telemedicine/doctors/{id} (getDoctor)', () => {
  it('shows anyone a verified doctor’s public fields only, with the rating as a number', async () => {
    const doctorId = await insertDoctor(database(), randomUUID(), { fullName: 'Dr Public', bio: 'Hello' });
    await database().pool.query(
      'update telemedicine.doctors set rating_sum = 9, rating_count = 2 where id = $1',
      [doctorId],
    );
    const response = await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctorId}` });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<Record<string, unknown>>();
    expect(body).toMatchObject({
      id: doctorId,
      full_name: 'Dr Public',
      bio: 'Hello',
      rating: 4.5,
      rating_count: 2,
      fee_minor: 5000,
    });
    for (const privateField of [
      'registration_number',
      'status',
      'verified_by',
      'verified_at',
      'version',
      'rating_sum',
    ]) {
      expect(body, privateField).not.toHaveProperty(privateField);
    }
  });

  it('shows a doctor without reviews with rating null', async () => {
    const doctorId = await insertDoctor(database());
    const response = await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctorId}` });
    expect(response.json<DoctorBody>()).toMatchObject({ rating: null, rating_count: 0 });
  });

  it.each(['PENDING', 'SUSPENDED'] as const)(
    'answers 404 telemedicine.doctor_not_found for a %s doctor',
    async (status) => {
      const doctorId = await insertDoctor(database(), randomUUID(), { status });
      expectProblem(
        await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctorId}` }),
        404,
        'telemedicine.doctor_not_found',
      );
    },
  );

  it('answers 404 for an unknown doctor and 400 for an id that is not a uuid', async () => {
    expectProblem(
      await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${randomUUID()}` }),
      404,
      'telemedicine.doctor_not_found',
    );
    expectProblem(
      await inject(undefined, { method: 'GET', url: '/telemedicine/doctors/nope' }),
      400,
      'request.invalid',
    );
  });
});

describe('GET /telemedicine/doctors (listDoctors)', () => {
  async function listAll(admin: TelemedicineCaller, query: string): Promise<DoctorBody[]> {
    const items: DoctorBody[] = [];
    let cursor: string | null = null;
    for (let pageNumber = 0; pageNumber < 100; pageNumber += 1) {
      const url: string = `/telemedicine/doctors?limit=2&${query}${cursor === null ? '' : `&cursor=${cursor}`}`;
      const response = await inject(admin, { method: 'GET', url });
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json<Page>();
      expect(page.items.length).toBeLessThanOrEqual(2);
      items.push(...page.items);
      cursor = page.next_cursor;
      if (cursor === null) return items;
    }
    throw new Error('pagination did not end');
  }

  it('pages through doctors of one status, oldest first, each exactly once', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const created = [];
    for (let index = 0; index < 5; index += 1) created.push((await signInPendingDoctor()).doctor.id);
    await insertDoctor(database(), randomUUID(), { status: 'SUSPENDED' });

    const pending = await listAll(admin, 'status=PENDING');
    expect(pending.every((doctor) => doctor.status === 'PENDING')).toBe(true);
    const ids = pending.map((doctor) => doctor.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(created));
    // Creation order is list order.
    expect(created.map((id) => ids.indexOf(id))).toEqual(
      [...created.map((id) => ids.indexOf(id))].sort((a, b) => a - b),
    );
    // Milliseconds only here (the order itself is by microseconds, then id).
    const createdAts = pending.map((doctor) => doctor.created_at);
    expect(createdAts).toEqual([...createdAts].sort());

    const everyone = await listAll(admin, '');
    expect(everyone.length).toBeGreaterThan(pending.length);
  });

  it('breaks ties on the creation time by id, losing no doctor between pages', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      ids.push(await insertDoctor(database(), randomUUID(), { status: 'SUSPENDED' }));
    }
    // Older than anything else in the database, all in the same microsecond.
    await database().pool.query(
      `update telemedicine.doctors set created_at = '2001-01-01T00:00:00.123456Z' where id = any($1::uuid[])`,
      [ids],
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pageNumber = 0; pageNumber < 3; pageNumber += 1) {
      const url: string = `/telemedicine/doctors?status=SUSPENDED&limit=1${cursor === null ? '' : `&cursor=${cursor}`}`;
      const page = (await inject(admin, { method: 'GET', url })).json<Page>();
      seen.push(...page.items.map((doctor) => doctor.id));
      cursor = page.next_cursor;
    }
    expect(seen).toEqual([...ids].sort());
  });

  it.each([
    ['an invalid cursor', 'cursor=bm90LWEtY3Vyc29y', 'telemedicine.invalid_cursor'],
    ['an unknown status', 'status=APPROVED', 'request.invalid'],
    ['a limit of 0', 'limit=0', 'request.invalid'],
    ['a limit over 100', 'limit=101', 'request.invalid'],
  ])('refuses %s with 400', async (_case, query, code) => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    expectProblem(await inject(admin, { method: 'GET', url: `/telemedicine/doctors?${query}` }), 400, code);
  });

  it('refuses anonymous callers with 401 and patients, doctors and support with 403', async () => {
    expectProblem(
      await inject(undefined, { method: 'GET', url: '/telemedicine/doctors' }),
      401,
      'auth.unauthenticated',
    );
    const callers = [
      await signInPatient(harness.testApp, database(), harness.testApp.security.fieldCrypto.encryption),
      await signInDoctor(harness.testApp, database()),
      await signInSupport(harness.testApp),
    ];
    for (const caller of callers) {
      expectProblem(
        await inject(caller, { method: 'GET', url: '/telemedicine/doctors' }),
        403,
        'auth.forbidden',
      );
    }
  });
});

describe('POST /telemedicine/doctors/{id}/verify and /suspend (verifyDoctor, suspendDoctor)', () => {
  it('verifies a pending doctor, audited and announced, and makes them public', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const { doctor } = await signInPendingDoctor();
    const response = await verify(admin, doctor.id);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers.etag).toBe('"2"');
    const verified = response.json<DoctorBody>();
    expect(verified).toMatchObject({ status: 'VERIFIED', verified_by: admin.account.id, version: 2 });
    expect(verified.verified_at).not.toBeNull();

    expect(await doctorAuditRows(doctor.id)).toEqual([
      {
        action: 'telemedicine.doctor_verified',
        actor_id: admin.account.id,
        changes: { status: { from: 'PENDING', to: 'VERIFIED' } },
      },
    ]);
    expect((await doctorEvents(doctor.id)).at(-1)).toEqual({ status: 'VERIFIED', change: 'verification' });
    const publicView = await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctor.id}` });
    expect(publicView.statusCode, publicView.body).toBe(200);
  });

  it('refuses to verify a verified doctor with 409 telemedicine.doctor_already_verified', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const doctorId = await insertDoctor(database());
    expectProblem(await verify(admin, doctorId), 409, 'telemedicine.doctor_already_verified');
    expect(await doctorAuditRows(doctorId)).toEqual([]);
    expect(await doctorEvents(doctorId)).toEqual([]);
  });

  it('suspends with a reason (kept in the audit log), refuses a second suspension, and reinstates by verifying', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const doctorId = await insertDoctor(database());
    const suspended = await suspend(admin, doctorId, { reason: 'Licence lapsed' });
    expect(suspended.statusCode, suspended.body).toBe(200);
    expect(suspended.json<DoctorBody>().status).toBe('SUSPENDED');
    expectProblem(
      await inject(undefined, { method: 'GET', url: `/telemedicine/doctors/${doctorId}` }),
      404,
      'telemedicine.doctor_not_found',
    );
    expectProblem(await suspend(admin, doctorId), 409, 'telemedicine.doctor_already_suspended');

    const reinstated = await verify(admin, doctorId);
    expect(reinstated.statusCode, reinstated.body).toBe(200);
    expect(reinstated.json<DoctorBody>().status).toBe('VERIFIED');

    expect(await doctorAuditRows(doctorId)).toEqual([
      {
        action: 'telemedicine.doctor_suspended',
        actor_id: admin.account.id,
        changes: { status: { from: 'VERIFIED', to: 'SUSPENDED' }, reason: 'Licence lapsed' },
      },
      {
        action: 'telemedicine.doctor_verified',
        actor_id: admin.account.id,
        changes: { status: { from: 'SUSPENDED', to: 'VERIFIED' } },
      },
    ]);
    expect(await doctorEvents(doctorId)).toEqual([
      { status: 'SUSPENDED', change: 'verification' },
      { status: 'VERIFIED', change: 'verification' },
    ]);
  });

  it('suspends a pending doctor', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const { doctor } = await signInPendingDoctor();
    const response = await suspend(admin, doctor.id);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<DoctorBody>().status).toBe('SUSPENDED');
  });

  it.each([
    ['no body', null],
    ['an empty reason', { reason: '' }],
    ['a reason over 500 characters', { reason: 'x'.repeat(501) }],
    ['an unknown field', { reason: 'x', until: '2030-01-01' }],
  ])('refuses a suspension with %s with 400', async (_case, payload) => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const doctorId = await insertDoctor(database());
    const response = await suspend(admin, doctorId, payload);
    expect(response.statusCode, response.body).toBe(400);
  });

  it('answers 404 telemedicine.doctor_not_found for an unknown doctor', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    expectProblem(await verify(admin, randomUUID()), 404, 'telemedicine.doctor_not_found');
    expectProblem(await suspend(admin, randomUUID()), 404, 'telemedicine.doctor_not_found');
  });

  it('refuses anonymous callers with 401 and patients, doctors and support with 403', async () => {
    const doctorId = await insertDoctor(database(), randomUUID(), { status: 'PENDING' });
    expectProblem(await verify(undefined, doctorId), 401, 'auth.unauthenticated');
    expectProblem(await suspend(undefined, doctorId), 401, 'auth.unauthenticated');
    const callers = [
      await signInPatient(harness.testApp, database(), harness.testApp.security.fieldCrypto.encryption),
      await signInDoctor(harness.testApp, database()),
      await signInSupport(harness.testApp),
    ];
    for (const caller of callers) {
      expectProblem(await verify(caller, doctorId), 403, 'auth.forbidden');
      expectProblem(await suspend(caller, doctorId), 403, 'auth.forbidden');
    }
    // A doctor cannot verify themselves either.
    const self = await signInDoctor(harness.testApp, database(), { status: 'PENDING' });
    expectProblem(await verify(self, self.account.id), 403, 'auth.forbidden');
  });

  it('verifies exactly once when admins verify the same doctor concurrently', async () => {
    const admin = await signInTelemedicineAdmin(harness.testApp);
    const { doctor } = await signInPendingDoctor();
    const responses = await Promise.all(Array.from({ length: 8 }, () => verify(admin, doctor.id)));
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    expect(await doctorAuditRows(doctor.id)).toHaveLength(1);
    expect((await doctorEvents(doctor.id)).filter((event) => event.change === 'verification')).toHaveLength(
      1,
    );
  });
});
