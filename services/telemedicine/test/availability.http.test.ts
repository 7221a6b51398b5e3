import { randomUUID } from 'node:crypto';
import { DoctorProfileChangedV1, SlotsChangedV1 } from '@keel/contracts';
import type { JobSender } from '@keel/platform/module';
import { emitEvent } from '@keel/platform/outbox';
import {
  buildTestApp,
  createTestAccount,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createExtendSlotWindowsQueue,
  MATERIALISE_SLOTS_QUEUE,
} from '../src/availability/materialise-slots.job.ts';
import { createSlotMaterialiser, type SlotMaterialiser } from '../src/availability/slot-materialiser.ts';
import type { TelemedicineSchema } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import {
  insertDoctor,
  insertPatient,
  signInDoctor,
  signInPatient,
  signInTelemedicineAdmin,
  signInWithRoles,
  type TelemedicineCaller,
} from './fixtures.ts';

// The app runs on a movable clock set to Wednesday 2026-03-25, so the 28-day
// horizon spans Europe's spring-forward (Sunday 2026-03-29). The pool is
// larger than the default and waits longer for a connection: the concurrency
// tests park ten transactions on one schedule lock while the background
// materialise jobs want connections too.

const START = Date.parse('2026-03-25T00:00:00Z');
let nowMs = START;
const clock = { now: () => new Date(nowMs) };
const HORIZON_DAYS = 28;

let testDb: TestDatabase;
let testApp: TestApp;
let materialiser: SlotMaterialiser;
beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'), { poolMax: 20, connectTimeoutMs: 30_000 });
  testApp = await buildTestApp({
    database: testDb.database,
    databaseUrl: testDb.url,
    modules: [telemedicineModule],
    clock,
    // Every test signs in fresh accounts; the login limiter would stop them.
    env: { RATE_LIMIT_ENABLED: 'false', DATABASE_POOL_MAX: '20' },
  });
  materialiser = createSlotMaterialiser({
    db: testDb.database.typed<TelemedicineSchema>(),
    clock,
    ids: { uuid: randomUUID },
    logger: testApp.logger,
    settings: { slotHorizonDays: HORIZON_DAYS },
  });
});
afterAll(async () => {
  await testApp?.close();
  await testDb?.drop();
});

type Problem = { code: string; status: number; errors?: { pointer: string; detail: string }[] };
type ScheduleBody = {
  doctor_id: string;
  time_zone: string;
  slot_minutes: number;
  buffer_minutes: number;
  rules: { weekday: number; start: string; end: string }[];
  version: number;
};
type SlotListBody = {
  time_zone: string;
  from: string;
  to: string;
  items: { id: string; starts_at: string; ends_at: string; local_start: string; local_end: string }[];
};
type SlotRow = { id: string; starts_at: Date; ends_at: Date; status: string };

const WEEKDAYS_9_TO_13 = [1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: '09:00', end: '13:00' }));

function berlinSchedule(overrides: Record<string, unknown> = {}) {
  return {
    time_zone: 'Europe/Berlin',
    slot_minutes: 15,
    buffer_minutes: 0,
    rules: WEEKDAYS_9_TO_13,
    ...overrides,
  };
}

function call(caller: TelemedicineCaller | undefined, options: InjectOptions) {
  return testApp.app.inject({
    ...options,
    headers: {
      ...(caller === undefined ? {} : { authorization: caller.authorization }),
      ...options.headers,
    },
  });
}

function putSchedule(caller: TelemedicineCaller, body: object, headers: Record<string, string> = {}) {
  return call(caller, { method: 'PUT', url: '/telemedicine/doctors/me/schedule', payload: body, headers });
}

async function newDoctor(spec: { status?: 'PENDING' | 'VERIFIED' | 'SUSPENDED' } = {}) {
  return signInDoctor(testApp, testDb.database, { timeZone: 'Europe/Berlin', ...spec });
}

/** A verified Berlin doctor with the Mon-Fri 09:00-13:00, 15-minute schedule, materialised. */
async function scheduledDoctor(body: object = berlinSchedule()) {
  const doctor = await newDoctor();
  const response = await putSchedule(doctor, body);
  expect(response.statusCode).toBe(201);
  return doctor;
}

async function slotRows(doctorId: string, statuses = ['OPEN', 'HELD', 'BOOKED']): Promise<SlotRow[]> {
  const result = await testDb.database.pool.query<SlotRow>(
    `select id, starts_at, ends_at, status from telemedicine.slots
     where doctor_id = $1 and status = any($2) order by starts_at`,
    [doctorId, statuses],
  );
  return result.rows;
}

/** Waits until no materialise job for the doctor is queued, retrying or running. */
async function untilMaterialiseJobsSettled(doctorId: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const result = await testDb.database.pool.query<{ count: string }>(
      `select count(*) from pgboss.job
       where name = $1 and data->>'doctorId' = $2 and state in ('created', 'retry', 'active')`,
      [MATERIALISE_SLOTS_QUEUE, doctorId],
    );
    if (result.rows[0]?.count === '0') return;
    if (Date.now() > deadline) throw new Error(`materialise jobs for ${doctorId} still pending`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startsOn(rows: SlotRow[], utcDay: string): string[] {
  return rows.map((row) => row.starts_at.toISOString()).filter((start) => start.startsWith(utcDay));
}

/** Live slots of the doctor that overlap another live slot: the exclusion constraint says zero. */
async function countOverlaps(doctorId: string): Promise<number> {
  const result = await testDb.database.pool.query<{ count: string }>(
    `select count(*) from telemedicine.slots a join telemedicine.slots b
       on a.doctor_id = b.doctor_id and a.id < b.id
      and tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
     where a.doctor_id = $1 and a.status <> 'WITHDRAWN' and b.status <> 'WITHDRAWN'`,
    [doctorId],
  );
  return Number(result.rows[0]?.count);
}

async function slotsChangedEvents(
  doctorId: string,
): Promise<{ offeredByDay: { day: string; count: number }[] }[]> {
  const result = await testDb.database.pool.query<{
    payload: { offeredByDay: { day: string; count: number }[] };
  }>(`select payload from platform.outbox_events where type = $1 and aggregate_id = $2 order by position`, [
    SlotsChangedV1.type,
    doctorId,
  ]);
  return result.rows.map((row) => row.payload);
}

async function nextAvailableAt(doctorId: string): Promise<Date | null> {
  const result = await testDb.database.pool.query<{ next_available_at: Date | null }>(
    'select next_available_at from telemedicine.doctors where id = $1',
    [doctorId],
  );
  return result.rows[0]?.next_available_at ?? null;
}

async function setSlotStatus(slotId: string, status: 'BOOKED' | 'HELD'): Promise<void> {
  await testDb.database.pool.query(
    `update telemedicine.slots set status = $2,
       hold_expires_at = case when $2 = 'HELD' then starts_at else null end
     where id = $1`,
    [slotId, status],
  );
}

function expectProblem(response: { statusCode: number; json: () => unknown }, status: number, code: string) {
  expect(response.statusCode).toBe(status);
  const problem = response.json() as Problem;
  expect(problem.code).toBe(code);
  return problem;
}

describe('weekly schedule and DST', () => {
  it('materialises Mon-Fri 09:00-13:00 Berlin as 08:00Z before and 07:00Z after the spring change', async () => {
    const doctor = await newDoctor();
    const response = await putSchedule(doctor, berlinSchedule());
    expect(response.statusCode).toBe(201);
    expect(response.headers.etag).toBe('"1"');
    expect(response.json<ScheduleBody>()).toMatchObject({
      doctor_id: doctor.account.id,
      time_zone: 'Europe/Berlin',
      slot_minutes: 15,
      buffer_minutes: 0,
      version: 1,
    });

    const rows = await slotRows(doctor.account.id);
    // Friday before the change: 09:00 CET = 08:00Z; Monday after: 09:00 CEST = 07:00Z.
    const friday = startsOn(rows, '2026-03-27');
    expect(friday).toHaveLength(16);
    expect(friday[0]).toBe('2026-03-27T08:00:00.000Z');
    expect(friday.at(-1)).toBe('2026-03-27T11:45:00.000Z');
    const monday = startsOn(rows, '2026-03-30');
    expect(monday).toHaveLength(16);
    expect(monday[0]).toBe('2026-03-30T07:00:00.000Z');
    expect(monday.at(-1)).toBe('2026-03-30T10:45:00.000Z');
    expect(startsOn(rows, '2026-03-28')).toEqual([]);
    expect(startsOn(rows, '2026-03-29')).toEqual([]);
    // 20 weekdays in the 28-day horizon from Wednesday 2026-03-25 00:00Z, 16 slots each.
    expect(rows).toHaveLength(20 * 16);
    expect(rows.every((row) => row.ends_at.getTime() - row.starts_at.getTime() === 15 * 60_000)).toBe(true);
    expect(await nextAvailableAt(doctor.account.id)).toEqual(new Date('2026-03-25T08:00:00Z'));

    const events = await slotsChangedEvents(doctor.account.id);
    expect(events).toHaveLength(1);
    expect(events[0]?.offeredByDay).toContainEqual({ day: '2026-03-30', count: 16 });
    expect(events[0]?.offeredByDay.some((entry) => entry.day === '2026-03-29')).toBe(false);
  });

  it('lists the slots in the caller’s zone (America/New_York) with local times and offsets', async () => {
    const doctor = await scheduledDoctor();
    const response = await call(undefined, {
      method: 'GET',
      url: `/telemedicine/doctors/${doctor.account.id}/slots`,
      query: { from: '2026-03-27', to: '2026-03-30', time_zone: 'America/New_York' },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json<SlotListBody>();
    expect(body.time_zone).toBe('America/New_York');
    // Dates are New York days: Friday 00:00 EDT (04:00Z) to the end of Monday.
    expect(body.from).toBe('2026-03-27T04:00:00.000Z');
    expect(body.to).toBe('2026-03-31T04:00:00.000Z');
    expect(body.items).toHaveLength(32);
    expect(body.items[0]).toMatchObject({
      starts_at: '2026-03-27T08:00:00.000Z',
      ends_at: '2026-03-27T08:15:00.000Z',
      local_start: '2026-03-27T04:00:00-04:00',
      local_end: '2026-03-27T04:15:00-04:00',
    });
    expect(body.items[16]).toMatchObject({
      starts_at: '2026-03-30T07:00:00.000Z',
      local_start: '2026-03-30T03:00:00-04:00',
    });

    const berlin = await call(undefined, {
      method: 'GET',
      url: `/telemedicine/doctors/${doctor.account.id}/slots`,
      query: {
        from: '2026-03-30T00:00:00+02:00',
        to: '2026-03-31T00:00:00+02:00',
        time_zone: 'Europe/Berlin',
      },
    });
    expect(berlin.json<SlotListBody>().items[0]?.local_start).toBe('2026-03-30T09:00:00+02:00');

    const utc = await call(undefined, {
      method: 'GET',
      url: `/telemedicine/doctors/${doctor.account.id}/slots`,
    });
    const utcBody = utc.json<SlotListBody>();
    // Default: now to 7 days later, in UTC.
    expect(utcBody.from).toBe('2026-03-25T00:00:00.000Z');
    expect(utcBody.to).toBe('2026-04-01T00:00:00.000Z');
    expect(utcBody.items[0]?.local_start).toBe('2026-03-25T08:00:00+00:00');
    expect(utcBody.items).toHaveLength(5 * 16);
  });

  it('offers only future slots', async () => {
    const doctor = await scheduledDoctor();
    nowMs = Date.parse('2026-03-25T08:20:00Z');
    try {
      const response = await call(undefined, {
        method: 'GET',
        url: `/telemedicine/doctors/${doctor.account.id}/slots`,
        query: { from: '2026-03-25T00:00:00Z', to: '2026-03-26T00:00:00Z' },
      });
      const items = response.json<SlotListBody>().items;
      expect(items[0]?.starts_at).toBe('2026-03-25T08:30:00.000Z');
      expect(items).toHaveLength(14);
    } finally {
      nowMs = START;
    }
  });

  it('refuses another doctor, a pending or unknown doctor with telemedicine.doctor_not_found', async () => {
    const pending = await newDoctor({ status: 'PENDING' });
    expect((await putSchedule(pending, berlinSchedule())).statusCode).toBe(201);
    // A pending doctor's schedule is kept but offers nothing until verification.
    expect(await slotRows(pending.account.id)).toEqual([]);
    for (const doctorId of [pending.account.id, randomUUID()]) {
      const response = await call(undefined, {
        method: 'GET',
        url: `/telemedicine/doctors/${doctorId}/slots`,
      });
      expectProblem(response, 404, 'telemedicine.doctor_not_found');
    }
  });

  it('rejects a bad slot query with 400 and a pointer', async () => {
    const doctor = await scheduledDoctor();
    const url = `/telemedicine/doctors/${doctor.account.id}/slots`;
    const cases: [Record<string, string>, string, string][] = [
      [{ time_zone: 'Mars/Olympus_Mons' }, 'telemedicine.invalid_time_zone', '/querystring/time_zone'],
      [{ time_zone: '+02:00' }, 'telemedicine.invalid_time_zone', '/querystring/time_zone'],
      [{ from: '2026-03-25', to: '2026-04-30' }, 'telemedicine.invalid_range', '/querystring/to'],
      [{ from: '2026-03-27', to: '2026-03-26' }, 'telemedicine.invalid_range', '/querystring/to'],
      [{ from: 'yesterday' }, 'telemedicine.invalid_range', '/querystring/from'],
      [{ from: '2026-03-25T10:00:00' }, 'telemedicine.invalid_range', '/querystring/from'],
      [{ from: '2026-02-30' }, 'telemedicine.invalid_date', '/querystring/from'],
      [{ to: '0000-01-01' }, 'telemedicine.invalid_date', '/querystring/to'],
    ];
    for (const [query, code, pointer] of cases) {
      const problem = expectProblem(await call(undefined, { method: 'GET', url, query }), 400, code);
      expect(problem.errors?.[0]?.pointer).toBe(pointer);
    }
    const badId = await call(undefined, { method: 'GET', url: '/telemedicine/doctors/not-a-uuid/slots' });
    expect(badId.statusCode).toBe(400);
  });
});

describe('schedule versions and validation', () => {
  it('reads the schedule with its ETag and refuses a stale If-Match with 412', async () => {
    const doctor = await scheduledDoctor();
    const read = await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/schedule' });
    expect(read.statusCode).toBe(200);
    expect(read.headers.etag).toBe('"1"');
    expect(read.json<ScheduleBody>().rules).toEqual(WEEKDAYS_9_TO_13);

    const updated = await putSchedule(doctor, berlinSchedule({ slot_minutes: 30 }), { 'if-match': '"1"' });
    expect(updated.statusCode).toBe(200);
    expect(updated.headers.etag).toBe('"2"');
    expect(updated.json<ScheduleBody>().slot_minutes).toBe(30);

    const stale = await putSchedule(doctor, berlinSchedule(), { 'if-match': '"1"' });
    expectProblem(stale, 412, 'telemedicine.version_mismatch');
    expect(stale.headers.etag).toBe('"2"');
    expectProblem(
      await putSchedule(doctor, berlinSchedule(), { 'if-match': 'version 2' }),
      400,
      'telemedicine.invalid_if_match',
    );
    // Without If-Match the last writer wins.
    expect((await putSchedule(doctor, berlinSchedule())).statusCode).toBe(200);
  });

  it('answers 404 before the first schedule and 412 for If-Match on a schedule that does not exist', async () => {
    const doctor = await newDoctor();
    expectProblem(
      await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/schedule' }),
      404,
      'telemedicine.schedule_not_found',
    );
    expectProblem(
      await putSchedule(doctor, berlinSchedule(), { 'if-match': '"1"' }),
      412,
      'telemedicine.version_mismatch',
    );
  });

  it('needs a doctor profile (422 telemedicine.doctor_profile_required)', async () => {
    const noProfile = await signInWithRoles(testApp, ['telemedicine:doctor']);
    expectProblem(
      await putSchedule(noProfile, berlinSchedule()),
      422,
      'telemedicine.doctor_profile_required',
    );
    expectProblem(
      await call(noProfile, { method: 'GET', url: '/telemedicine/doctors/me/schedule' }),
      422,
      'telemedicine.doctor_profile_required',
    );
    expectProblem(
      await call(noProfile, {
        method: 'POST',
        url: '/telemedicine/doctors/me/time-off',
        payload: { starts_at: '2026-04-01T08:00:00Z', ends_at: '2026-04-01T10:00:00Z' },
      }),
      422,
      'telemedicine.doctor_profile_required',
    );
  });

  it('rejects bad schedules with 400, a stable code and a pointer, never 500', async () => {
    const doctor = await newDoctor();
    const cases: [object, string, string][] = [
      [
        berlinSchedule({
          rules: [
            { weekday: 1, start: '09:00', end: '12:00' },
            { weekday: 1, start: '11:00', end: '13:00' },
          ],
        }),
        'telemedicine.overlapping_windows',
        '/body/rules/1/start',
      ],
      [
        berlinSchedule({ rules: [{ weekday: 2, start: '13:00', end: '09:00' }] }),
        'telemedicine.invalid_window',
        '/body/rules/0/end',
      ],
      [
        berlinSchedule({ slot_minutes: 60, rules: [{ weekday: 2, start: '09:00', end: '09:30' }] }),
        'telemedicine.invalid_window',
        '/body/rules/0/end',
      ],
      [berlinSchedule({ time_zone: 'Europe/Atlantis' }), 'telemedicine.invalid_time_zone', '/body/time_zone'],
      [
        berlinSchedule({ rules: [{ weekday: 1, start: '25:00', end: '26:00' }] }),
        'request.invalid',
        '/body/rules/0/start',
      ],
      [
        berlinSchedule({ rules: [{ weekday: 8, start: '09:00', end: '10:00' }] }),
        'request.invalid',
        '/body/rules/0/weekday',
      ],
      [berlinSchedule({ slot_minutes: 3 }), 'request.invalid', '/body/slot_minutes'],
      [berlinSchedule({ buffer_minutes: 121 }), 'request.invalid', '/body/buffer_minutes'],
      [berlinSchedule({ slot_minutes: '15' }), 'request.invalid', '/body/slot_minutes'],
      [berlinSchedule({ extra: true }), 'request.invalid', '/body/extra'],
    ];
    for (const [body, code, pointer] of cases) {
      const problem = expectProblem(await putSchedule(doctor, body), 400, code);
      expect(problem.errors?.map((error) => error.pointer)).toContain(pointer);
    }
    // Nothing was written by any of them.
    expectProblem(
      await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/schedule' }),
      404,
      'telemedicine.schedule_not_found',
    );
  });

  it('accepts a window ending at 24:00 and touching windows', async () => {
    const doctor = await newDoctor();
    const response = await putSchedule(
      doctor,
      berlinSchedule({
        slot_minutes: 60,
        rules: [
          { weekday: 4, start: '22:00', end: '24:00' },
          { weekday: 4, start: '20:00', end: '22:00' },
        ],
      }),
    );
    expect(response.statusCode).toBe(201);
    // Sorted by start; Thursday 2026-03-26 20:00-24:00 CET is 19:00-23:00Z.
    expect(response.json<ScheduleBody>().rules.map((rule) => rule.start)).toEqual(['20:00', '22:00']);
    expect(startsOn(await slotRows(doctor.account.id), '2026-03-26')).toEqual([
      '2026-03-26T19:00:00.000Z',
      '2026-03-26T20:00:00.000Z',
      '2026-03-26T21:00:00.000Z',
      '2026-03-26T22:00:00.000Z',
    ]);
  });
});

describe('schedule edits and booked slots', () => {
  it('keeps a BOOKED slot and never creates one overlapping it when the grid changes', async () => {
    const doctor = await scheduledDoctor();
    const before = await slotRows(doctor.account.id);
    // Thursday 09:00 CET (08:00-08:15Z) is booked, Thursday 09:15 held.
    const booked = before.find((row) => row.starts_at.toISOString() === '2026-03-26T08:00:00.000Z');
    const held = before.find((row) => row.starts_at.toISOString() === '2026-03-26T08:15:00.000Z');
    if (booked === undefined || held === undefined) throw new Error('fixture slots missing');
    await setSlotStatus(booked.id, 'BOOKED');
    await setSlotStatus(held.id, 'HELD');

    // 20-minute slots: 09:00-09:20 and 09:20-09:40 local would overlap the kept ones.
    const response = await putSchedule(doctor, berlinSchedule({ slot_minutes: 20 }));
    expect(response.statusCode).toBe(200);

    const after = await slotRows(doctor.account.id);
    expect(after.find((row) => row.id === booked.id)).toMatchObject({ status: 'BOOKED' });
    expect(after.find((row) => row.id === held.id)).toMatchObject({ status: 'HELD' });
    expect(startsOn(after, '2026-03-26')).toEqual([
      '2026-03-26T08:00:00.000Z',
      '2026-03-26T08:15:00.000Z',
      // 09:40 local is the first 20-minute slot clear of both.
      '2026-03-26T08:40:00.000Z',
      '2026-03-26T09:00:00.000Z',
      '2026-03-26T09:20:00.000Z',
      '2026-03-26T09:40:00.000Z',
      '2026-03-26T10:00:00.000Z',
      '2026-03-26T10:20:00.000Z',
      '2026-03-26T10:40:00.000Z',
      '2026-03-26T11:00:00.000Z',
      '2026-03-26T11:20:00.000Z',
      '2026-03-26T11:40:00.000Z',
    ]);
    // Other days are on the new grid entirely.
    expect(startsOn(after, '2026-03-27')).toHaveLength(12);
    expect(await countOverlaps(doctor.account.id)).toBe(0);

    // Removing the whole day (and then the whole schedule's windows) still keeps them.
    const dayOff = await call(doctor, {
      method: 'PUT',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-26',
      payload: { is_available: false },
    });
    expect(dayOff.statusCode).toBe(200);
    expect(await putSchedule(doctor, berlinSchedule({ rules: [] }))).toMatchObject({ statusCode: 200 });
    const remaining = await slotRows(doctor.account.id);
    expect(remaining.map((row) => row.id).sort()).toEqual([booked.id, held.id].sort());
    expect(await nextAvailableAt(doctor.account.id)).toBeNull();
  });

  it('withdraws an unplanned open slot that a past consultation refers to, and deletes the others', async () => {
    const doctor = await scheduledDoctor();
    const patientId = randomUUID();
    await insertPatient(testDb.database, testApp.security.fieldCrypto.encryption, patientId);
    const [slot] = startsOn(await slotRows(doctor.account.id), '2026-03-27');
    const rows = await slotRows(doctor.account.id);
    const withHistory = rows.find((row) => row.starts_at.toISOString() === slot);
    if (withHistory === undefined) throw new Error('fixture slot missing');
    // A cancelled consultation: its slot went back to OPEN but has history.
    await testDb.database.pool.query(
      `insert into telemedicine.consultations
         (id, patient_id, doctor_id, slot_id, status, starts_at, ends_at, fee_minor, currency, specialty,
          consent_version, consented_at, cancelled_at, cancelled_by)
       values ($1, $2, $3, $4, 'CANCELLED', $5, $6, 5000, 'EUR', 'general practice', 'v1', $7, $7, 'patient')`,
      [
        randomUUID(),
        patientId,
        doctor.account.id,
        withHistory.id,
        withHistory.starts_at,
        withHistory.ends_at,
        clock.now(),
      ],
    );

    const response = await call(doctor, {
      method: 'PUT',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-27',
      payload: { is_available: false },
    });
    expect(response.statusCode).toBe(200);
    const friday = await testDb.database.pool.query<{ id: string; status: string }>(
      `select id, status from telemedicine.slots where doctor_id = $1
         and starts_at >= '2026-03-27T00:00Z' and starts_at < '2026-03-28T00:00Z'`,
      [doctor.account.id],
    );
    expect(friday.rows).toEqual([{ id: withHistory.id, status: 'WITHDRAWN' }]);

    // Back to the weekly hours: a fresh slot takes the withdrawn one's place.
    const restored = await call(doctor, {
      method: 'DELETE',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-27',
    });
    expect(restored.statusCode).toBe(204);
    const open = startsOn(await slotRows(doctor.account.id, ['OPEN']), '2026-03-27');
    expect(open).toHaveLength(16);
    expect(await countOverlaps(doctor.account.id)).toBe(0);
  });
});

describe('materialisation', () => {
  it('does nothing and emits nothing when run again with nothing changed', async () => {
    const doctor = await scheduledDoctor();
    const before = await slotRows(doctor.account.id);
    const eventsBefore = await slotsChangedEvents(doctor.account.id);
    for (let run = 0; run < 3; run += 1) {
      expect(await materialiser.materialiseNow(doctor.account.id)).toEqual({
        added: 0,
        removed: 0,
        offeredByDay: [],
      });
    }
    expect(await slotRows(doctor.account.id)).toEqual(before);
    expect(await slotsChangedEvents(doctor.account.id)).toEqual(eventsBefore);
  });

  it('leaves no duplicate or overlapping slot when ten runs for one doctor race', async () => {
    const doctor = await scheduledDoctor();
    // The schedule write queued a safety-net job; were it to run during the
    // race it could do the work itself and leave none to the ten.
    await untilMaterialiseJobsSettled(doctor.account.id);
    // Change the schedule behind the API's back so that every racing run has work to find.
    await testDb.database.pool.query(
      `update telemedicine.schedules set slot_minutes = 25, buffer_minutes = 5 where doctor_id = $1`,
      [doctor.account.id],
    );
    const results = await Promise.all(
      Array.from({ length: 10 }, () => materialiser.materialiseNow(doctor.account.id)),
    );
    // Serialised on the schedule lock: the first does the work, the rest find nothing.
    expect(results.filter((result) => result.added > 0 || result.removed > 0)).toHaveLength(1);
    const rows = await slotRows(doctor.account.id);
    expect(startsOn(rows, '2026-03-30')).toEqual([
      '2026-03-30T07:00:00.000Z',
      '2026-03-30T07:30:00.000Z',
      '2026-03-30T08:00:00.000Z',
      '2026-03-30T08:30:00.000Z',
      '2026-03-30T09:00:00.000Z',
      '2026-03-30T09:30:00.000Z',
      '2026-03-30T10:00:00.000Z',
      '2026-03-30T10:30:00.000Z',
    ]);
    expect(await countOverlaps(doctor.account.id)).toBe(0);
  });

  it('keeps the invariant when ten schedule edits race over HTTP', async () => {
    const doctor = await scheduledDoctor();
    const lengths = [15, 20, 30, 45, 60];
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        putSchedule(doctor, berlinSchedule({ slot_minutes: lengths[index % lengths.length] })),
      ),
    );
    expect(responses.map((response) => response.statusCode)).toEqual(Array(10).fill(200));
    // Every inline materialisation went through (none left its work to the job).
    expect(testApp.logs.text()).not.toContain('inline slot materialisation failed');
    expect(await countOverlaps(doctor.account.id)).toBe(0);
    // Whichever edit committed last, its grid is what is offered, and a rerun agrees.
    const final = await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/schedule' });
    expect(final.json<ScheduleBody>().version).toBe(11);
    expect(await materialiser.materialiseNow(doctor.account.id)).toMatchObject({ added: 0, removed: 0 });
    const slotMinutes = final.json<ScheduleBody>().slot_minutes;
    const rows = await slotRows(doctor.account.id);
    expect(
      rows.every((row) => row.ends_at.getTime() - row.starts_at.getTime() === slotMinutes * 60_000),
    ).toBe(true);
  });

  it('creates the schedule once when ten first PUTs race (one 201, the rest replace it)', async () => {
    const doctor = await newDoctor();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => putSchedule(doctor, berlinSchedule())),
    );
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(
      (await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/schedule' })).headers.etag,
    ).toBe('"10"');
    expect(await slotRows(doctor.account.id)).toHaveLength(20 * 16);
    expect(await countOverlaps(doctor.account.id)).toBe(0);
  });

  it('materialises through the job queue', async () => {
    const doctor = await scheduledDoctor();
    await testDb.database.pool.query(`delete from telemedicine.slots where doctor_id = $1`, [
      doctor.account.id,
    ]);
    await testApp.background
      .jobs()
      .send(MATERIALISE_SLOTS_QUEUE, { doctorId: doctor.account.id }, { singletonKey: doctor.account.id });
    const deadline = Date.now() + 15_000;
    while ((await slotRows(doctor.account.id)).length < 20 * 16 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await slotRows(doctor.account.id)).toHaveLength(20 * 16);
  });

  it('enqueues one materialise job per verified doctor with a schedule on the hourly roll', async () => {
    const verified = await scheduledDoctor();
    const pending = await newDoctor({ status: 'PENDING' });
    await putSchedule(pending, berlinSchedule());
    const unscheduled = await newDoctor();
    const sent: { name: string; data: { doctorId: string }; singletonKey: string | undefined }[] = [];
    const jobs: JobSender = {
      send: async (name, data, options) => {
        sent.push({ name, data: data as { doctorId: string }, singletonKey: options?.singletonKey });
        return randomUUID();
      },
      sendWith: async () => null,
      sendManyWith: async () => {},
    };
    const queue = createExtendSlotWindowsQueue({ db: testDb.database.typed<TelemedicineSchema>(), jobs });
    await queue.handler({
      id: randomUUID(),
      name: queue.name,
      data: {},
      retryCount: 0,
      signal: new AbortController().signal,
    });
    const doctorIds = sent.map((job) => job.data.doctorId);
    expect(doctorIds).toContain(verified.account.id);
    expect(doctorIds).not.toContain(pending.account.id);
    expect(doctorIds).not.toContain(unscheduled.account.id);
    expect(sent.find((job) => job.data.doctorId === verified.account.id)).toEqual({
      name: MATERIALISE_SLOTS_QUEUE,
      data: { doctorId: verified.account.id },
      singletonKey: verified.account.id,
    });
  });

  it('offers the slots of a doctor who becomes verified, and takes them down on suspension', async () => {
    const doctor = await newDoctor({ status: 'PENDING' });
    expect((await putSchedule(doctor, berlinSchedule())).statusCode).toBe(201);
    expect(await slotRows(doctor.account.id)).toEqual([]);

    const announce = async (status: 'VERIFIED' | 'SUSPENDED') => {
      await testDb.database.pool.query(
        `update telemedicine.doctors set status = $2, verified_at = coalesce(verified_at, now()) where id = $1`,
        [doctor.account.id, status],
      );
      await testDb.database.typed<unknown>().transaction((trx) =>
        emitEvent(
          trx,
          {
            type: DoctorProfileChangedV1.type,
            aggregateType: 'doctor',
            aggregateId: doctor.account.id,
            payload: { doctorId: doctor.account.id, status, change: 'verification' },
          },
          { definition: DoctorProfileChangedV1 },
        ),
      );
      await testApp.background.drainEvents();
    };

    await announce('VERIFIED');
    expect(await slotRows(doctor.account.id)).toHaveLength(20 * 16);
    expect(await nextAvailableAt(doctor.account.id)).toEqual(new Date('2026-03-25T08:00:00Z'));

    await announce('SUSPENDED');
    expect(await slotRows(doctor.account.id)).toEqual([]);
    expect(await nextAvailableAt(doctor.account.id)).toBeNull();
  });
});

describe('date overrides', () => {
  it('replaces a date’s windows, lists overrides and restores the weekly hours on delete', async () => {
    const doctor = await scheduledDoctor();
    // Saturday 2026-03-28 has no rule: 10:00-11:00 CET is 09:00-10:00Z.
    const saturday = await call(doctor, {
      method: 'PUT',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-28',
      payload: { is_available: true, windows: [{ start: '10:00', end: '11:00' }] },
    });
    expect(saturday.statusCode).toBe(200);
    expect(saturday.json()).toEqual({
      date: '2026-03-28',
      is_available: true,
      windows: [{ start: '10:00', end: '11:00' }],
    });
    // Monday 2026-03-30 gets two short windows instead of 09:00-13:00 (CEST: 07:00Z = 09:00).
    const monday = await call(doctor, {
      method: 'PUT',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-30',
      payload: {
        is_available: true,
        windows: [
          { start: '16:00', end: '16:30' },
          { start: '08:00', end: '08:15' },
        ],
      },
    });
    expect(monday.statusCode).toBe(200);
    const dayOff = await call(doctor, {
      method: 'PUT',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-31',
      payload: { is_available: false, windows: [] },
    });
    expect(dayOff.statusCode).toBe(200);

    const rows = await slotRows(doctor.account.id);
    expect(startsOn(rows, '2026-03-28')).toEqual([
      '2026-03-28T09:00:00.000Z',
      '2026-03-28T09:15:00.000Z',
      '2026-03-28T09:30:00.000Z',
      '2026-03-28T09:45:00.000Z',
    ]);
    expect(startsOn(rows, '2026-03-30')).toEqual([
      '2026-03-30T06:00:00.000Z',
      '2026-03-30T14:00:00.000Z',
      '2026-03-30T14:15:00.000Z',
    ]);
    expect(startsOn(rows, '2026-03-31')).toEqual([]);

    const listed = await call(doctor, {
      method: 'GET',
      url: '/telemedicine/doctors/me/schedule/overrides',
      query: { from: '2026-03-28', to: '2026-03-31' },
    });
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({
      items: [
        { date: '2026-03-28', is_available: true, windows: [{ start: '10:00', end: '11:00' }] },
        {
          date: '2026-03-30',
          is_available: true,
          windows: [
            { start: '08:00', end: '08:15' },
            { start: '16:00', end: '16:30' },
          ],
        },
        { date: '2026-03-31', is_available: false, windows: [] },
      ],
    });
    // Default range: from today in the doctor's zone.
    const defaults = await call(doctor, {
      method: 'GET',
      url: '/telemedicine/doctors/me/schedule/overrides',
    });
    expect(defaults.json<{ items: unknown[] }>().items).toHaveLength(3);

    for (const date of ['2026-03-28', '2026-03-30', '2026-03-31']) {
      const removed = await call(doctor, {
        method: 'DELETE',
        url: `/telemedicine/doctors/me/schedule/overrides/${date}`,
      });
      expect(removed.statusCode).toBe(204);
    }
    const restored = await slotRows(doctor.account.id);
    expect(startsOn(restored, '2026-03-28')).toEqual([]);
    expect(startsOn(restored, '2026-03-30')).toHaveLength(16);
    expect(startsOn(restored, '2026-03-31')).toHaveLength(16);
    // Deleting an override that is not there is a no-op.
    const again = await call(doctor, {
      method: 'DELETE',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-28',
    });
    expect(again.statusCode).toBe(204);
  });

  it('needs a weekly schedule first and rejects bad overrides with 400', async () => {
    const unscheduled = await newDoctor();
    expectProblem(
      await call(unscheduled, {
        method: 'PUT',
        url: '/telemedicine/doctors/me/schedule/overrides/2026-03-28',
        payload: { is_available: false },
      }),
      422,
      'telemedicine.schedule_required',
    );

    const doctor = await scheduledDoctor();
    const cases: [string, object, string, string][] = [
      ['2026-02-30', { is_available: false }, 'telemedicine.invalid_date', '/params/date'],
      ['2026-3-1', { is_available: false }, 'request.invalid', '/params/date'],
      ['2026-03-28', { is_available: true }, 'telemedicine.invalid_override', '/body/windows'],
      [
        '2026-03-28',
        { is_available: false, windows: [{ start: '09:00', end: '10:00' }] },
        'telemedicine.invalid_override',
        '/body/windows',
      ],
      [
        '2026-03-28',
        {
          is_available: true,
          windows: [
            { start: '09:00', end: '10:00' },
            { start: '09:30', end: '10:30' },
          ],
        },
        'telemedicine.overlapping_windows',
        '/body/windows/1/start',
      ],
      [
        '2026-03-28',
        { is_available: true, windows: [{ start: '10:00', end: '10:00' }] },
        'telemedicine.invalid_window',
        '/body/windows/0/end',
      ],
      ['2026-03-28', { is_available: 'no' }, 'request.invalid', '/body/is_available'],
    ];
    for (const [date, payload, code, pointer] of cases) {
      const response = await call(doctor, {
        method: 'PUT',
        url: `/telemedicine/doctors/me/schedule/overrides/${date}`,
        payload,
      });
      const problem = expectProblem(response, 400, code);
      expect(problem.errors?.map((error) => error.pointer)).toContain(pointer);
    }
    const tooLong = await call(doctor, {
      method: 'GET',
      url: '/telemedicine/doctors/me/schedule/overrides',
      query: { from: '2026-01-01', to: '2027-06-01' },
    });
    expectProblem(tooLong, 400, 'telemedicine.invalid_range');
  });
});

describe('time off', () => {
  it('withdraws the open slots it covers, lists it, and offers them again when it is cancelled', async () => {
    const doctor = await scheduledDoctor();
    // Thursday 2026-03-26 10:00-11:10 CET: 09:00-10:10Z, touching five slots.
    const created = await call(doctor, {
      method: 'POST',
      url: '/telemedicine/doctors/me/time-off',
      payload: { starts_at: '2026-03-26T09:00:00Z', ends_at: '2026-03-26T10:10:00Z', reason: 'Conference' },
    });
    expect(created.statusCode).toBe(201);
    const timeOff = created.json<{ id: string; starts_at: string; ends_at: string; reason: string }>();
    expect(timeOff).toMatchObject({
      starts_at: '2026-03-26T09:00:00.000Z',
      ends_at: '2026-03-26T10:10:00.000Z',
      reason: 'Conference',
    });
    expect(created.headers.location).toBe(`/telemedicine/doctors/me/time-off/${timeOff.id}`);
    const thursday = startsOn(await slotRows(doctor.account.id), '2026-03-26');
    expect(thursday).toHaveLength(16 - 5);
    expect(thursday).not.toContain('2026-03-26T10:00:00.000Z');
    expect(thursday).toContain('2026-03-26T10:15:00.000Z');
    expect(thursday).toContain('2026-03-26T08:45:00.000Z');

    const listed = await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/time-off' });
    expect(listed.json<{ items: { id: string }[] }>().items.map((item) => item.id)).toEqual([timeOff.id]);

    const removed = await call(doctor, {
      method: 'DELETE',
      url: `/telemedicine/doctors/me/time-off/${timeOff.id}`,
    });
    expect(removed.statusCode).toBe(204);
    expect(startsOn(await slotRows(doctor.account.id), '2026-03-26')).toHaveLength(16);
    const gone = await call(doctor, {
      method: 'DELETE',
      url: `/telemedicine/doctors/me/time-off/${timeOff.id}`,
    });
    expectProblem(gone, 404, 'telemedicine.time_off_not_found');
  });

  it('replays a time off created with an Idempotency-Key instead of adding it twice', async () => {
    const doctor = await scheduledDoctor();
    const request: InjectOptions = {
      method: 'POST',
      url: '/telemedicine/doctors/me/time-off',
      headers: { 'idempotency-key': randomUUID() },
      payload: { starts_at: '2026-04-01T08:00:00Z', ends_at: '2026-04-01T09:00:00Z' },
    };
    const first = await call(doctor, request);
    const second = await call(doctor, request);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.json<{ id: string }>().id).toBe(first.json<{ id: string }>().id);
    expect(second.headers['idempotent-replayed']).toBe('true');
    const listed = await call(doctor, { method: 'GET', url: '/telemedicine/doctors/me/time-off' });
    expect(listed.json<{ items: unknown[] }>().items).toHaveLength(1);
  });

  it('rejects bad time off with 400 and a pointer', async () => {
    const doctor = await scheduledDoctor();
    const cases: [object, string, string][] = [
      [
        { starts_at: '2026-04-01T10:00:00Z', ends_at: '2026-04-01T09:00:00Z' },
        'telemedicine.invalid_time_off',
        '/body/ends_at',
      ],
      [
        { starts_at: '2026-03-01T10:00:00Z', ends_at: '2026-03-02T09:00:00Z' },
        'telemedicine.invalid_time_off',
        '/body/ends_at',
      ],
      [
        { starts_at: '2026-04-01T10:00:00Z', ends_at: '2027-06-01T09:00:00Z' },
        'telemedicine.invalid_time_off',
        '/body/ends_at',
      ],
      [
        { starts_at: '2026-04-01 10:00', ends_at: '2026-04-01T11:00:00Z' },
        'request.invalid',
        '/body/starts_at',
      ],
      [{ starts_at: '2026-04-01T10:00:00Z' }, 'request.invalid', '/body/ends_at'],
      [
        { starts_at: '2026-04-01T10:00:00Z', ends_at: '2026-04-01T11:00:00Z', reason: 'x'.repeat(501) },
        'request.invalid',
        '/body/reason',
      ],
    ];
    for (const [payload, code, pointer] of cases) {
      const response = await call(doctor, {
        method: 'POST',
        url: '/telemedicine/doctors/me/time-off',
        payload,
      });
      const problem = expectProblem(response, 400, code);
      expect(problem.errors?.map((error) => error.pointer)).toContain(pointer);
    }
    const badId = await call(doctor, { method: 'DELETE', url: '/telemedicine/doctors/me/time-off/nope' });
    expect(badId.statusCode).toBe(400);
  });

  it('does not let a doctor cancel another doctor’s time off (404)', async () => {
    const owner = await scheduledDoctor();
    const created = await call(owner, {
      method: 'POST',
      url: '/telemedicine/doctors/me/time-off',
      payload: { starts_at: '2026-04-02T08:00:00Z', ends_at: '2026-04-02T09:00:00Z' },
    });
    const other = await scheduledDoctor();
    const response = await call(other, {
      method: 'DELETE',
      url: `/telemedicine/doctors/me/time-off/${created.json<{ id: string }>().id}`,
    });
    expectProblem(response, 404, 'telemedicine.time_off_not_found');
    const listed = await call(owner, { method: 'GET', url: '/telemedicine/doctors/me/time-off' });
    expect(listed.json<{ items: unknown[] }>().items).toHaveLength(1);
  });
});

describe('who may manage availability', () => {
  const doctorRoutes: InjectOptions[] = [
    { method: 'GET', url: '/telemedicine/doctors/me/schedule' },
    { method: 'PUT', url: '/telemedicine/doctors/me/schedule', payload: berlinSchedule() },
    { method: 'GET', url: '/telemedicine/doctors/me/schedule/overrides' },
    {
      method: 'PUT',
      url: '/telemedicine/doctors/me/schedule/overrides/2026-03-28',
      payload: { is_available: false },
    },
    { method: 'DELETE', url: '/telemedicine/doctors/me/schedule/overrides/2026-03-28' },
    { method: 'GET', url: '/telemedicine/doctors/me/time-off' },
    {
      method: 'POST',
      url: '/telemedicine/doctors/me/time-off',
      payload: { starts_at: '2026-04-01T08:00:00Z', ends_at: '2026-04-01T09:00:00Z' },
    },
    { method: 'DELETE', url: `/telemedicine/doctors/me/time-off/${randomUUID()}` },
  ];

  it('refuses patients (403), admins on the /me routes (403) and anonymous callers (401)', async () => {
    const patient = await signInPatient(testApp, testDb.database, testApp.security.fieldCrypto.encryption);
    const admin = await signInTelemedicineAdmin(testApp);
    for (const route of doctorRoutes) {
      expect((await call(patient, route)).statusCode, `${route.method} ${route.url}`).toBe(403);
      expect((await call(admin, route)).statusCode, `${route.method} ${route.url}`).toBe(403);
      expect((await call(undefined, route)).statusCode, `${route.method} ${route.url}`).toBe(401);
    }
  });

  it('refuses a doctor on another doctor’s schedule (403): doctors only have /me', async () => {
    const owner = await scheduledDoctor();
    const other = await newDoctor();
    const url = `/telemedicine/doctors/${owner.account.id}/schedule`;
    expect((await call(other, { method: 'GET', url })).statusCode).toBe(403);
    expect(
      (await call(other, { method: 'PUT', url, payload: berlinSchedule({ rules: [] }) })).statusCode,
    ).toBe(403);
    expect(
      (await call(owner, { method: 'PUT', url, payload: berlinSchedule({ rules: [] }) })).statusCode,
    ).toBe(403);
    expect(await slotRows(owner.account.id)).toHaveLength(20 * 16);
  });

  it('lets an admin with MFA read and set any doctor’s schedule', async () => {
    const admin = await signInTelemedicineAdmin(testApp);
    const doctorId = await insertDoctor(testDb.database, randomUUID(), { timeZone: 'Asia/Kolkata' });
    const url = `/telemedicine/doctors/${doctorId}/schedule`;
    expectProblem(await call(admin, { method: 'GET', url }), 404, 'telemedicine.schedule_not_found');
    const created = await call(admin, {
      method: 'PUT',
      url,
      payload: {
        time_zone: 'Asia/Kolkata',
        slot_minutes: 30,
        rules: [{ weekday: 3, start: '09:00', end: '10:00' }],
      },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json<ScheduleBody>().buffer_minutes).toBe(0);
    // Wednesday 09:00 IST is 03:30Z.
    expect(startsOn(await slotRows(doctorId), '2026-03-25')).toEqual([
      '2026-03-25T03:30:00.000Z',
      '2026-03-25T04:00:00.000Z',
    ]);
    const read = await call(admin, { method: 'GET', url });
    expect(read.statusCode).toBe(200);
    expect(read.headers.etag).toBe('"1"');
    const stale = await call(admin, {
      method: 'PUT',
      url,
      headers: { 'if-match': '"7"' },
      payload: { time_zone: 'Asia/Kolkata', slot_minutes: 30, rules: [] },
    });
    expectProblem(stale, 412, 'telemedicine.version_mismatch');

    const unknown = `/telemedicine/doctors/${randomUUID()}/schedule`;
    expectProblem(await call(admin, { method: 'GET', url: unknown }), 404, 'telemedicine.doctor_not_found');
    expectProblem(
      await call(admin, { method: 'PUT', url: unknown, payload: berlinSchedule() }),
      404,
      'telemedicine.doctor_not_found',
    );
  });

  it('does not let an admin who has not completed MFA in', async () => {
    const account = await createTestAccount(testApp, { roles: ['telemedicine:admin'] });
    const login = await testApp.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: account.email, password: account.password },
    });
    expect(login.statusCode).toBe(200);
    const body = login.json<{ status: string; mfa_token?: string }>();
    // The password alone gets no session, only an MFA challenge; its token opens nothing.
    expect(body.status).toBe('mfa_required');
    const response = await testApp.app.inject({
      method: 'GET',
      url: `/telemedicine/doctors/${randomUUID()}/schedule`,
      headers: { authorization: `Bearer ${body.mfa_token}` },
    });
    expect([401, 403]).toContain(response.statusCode);
  });
});
