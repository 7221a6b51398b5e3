import { randomUUID } from 'node:crypto';
import {
  ConsultationConfirmedV1,
  ConsultationRescheduledV1,
  type EventDefinition,
  type EventEnvelope,
} from '@keel/contracts';
import type { Clock } from '@keel/platform/module';
import type { Notification } from '@keel/platform/notifier';
import { emitEvent } from '@keel/platform/outbox';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import type { Response } from 'light-my-request';
import type { TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import type { ReminderJob } from '../src/clinical/reminders.ts';
import { createSendReminderQueue, SEND_REMINDER_QUEUE } from '../src/clinical/send-reminder.job.ts';
import type { TelemedicineSchema } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import { clinicalAuditRows, setUpConsultation, type TestConsultation } from './clinical.fixtures.ts';
import { signInDoctor, signInPatient, signInSupport, signInTelemedicineAdmin } from './fixtures.ts';

// A clock the tests move: the lifecycle's windows (start from 15 minutes
// before, no-show from 10 minutes after) are checked against it.
let nowMs = Math.floor(Date.now() / 60_000) * 60_000;
const clock: Clock = { now: () => new Date(nowMs) };
const MINUTE = 60_000;

const harness = useTestApp({ modules: [telemedicineModule], clock, env: { RATE_LIMIT_ENABLED: 'false' } });

function database() {
  return harness.testDb.database;
}

/** A consultation starting `minutes` from the clock's now. */
function consultationStartingIn(minutes: number, status?: 'SCHEDULED' | 'CANCELLED') {
  return setUpConsultation(harness.testApp, database(), {
    startsAt: new Date(nowMs + minutes * MINUTE),
    ...(status === undefined ? {} : { status }),
  });
}

function call(
  authorization: string | undefined,
  request: {
    method: 'GET' | 'POST' | 'PUT';
    url: string;
    headers?: Record<string, string>;
    payload?: object;
  },
): Promise<Response> {
  const options: InjectOptions = {
    method: request.method,
    url: `/telemedicine${request.url}`,
    headers: { ...(authorization === undefined ? {} : { authorization }), ...request.headers },
    ...(request.payload === undefined ? {} : { payload: request.payload }),
  };
  return harness.testApp.app.inject(options);
}

function move(
  authorization: string | undefined,
  consultationId: string,
  action: 'start' | 'complete' | 'no-show',
  ifMatch?: string,
) {
  return call(authorization, {
    method: 'POST',
    url: `/consultations/${consultationId}/${action}`,
    ...(ifMatch === undefined ? {} : { headers: { 'if-match': ifMatch } }),
  });
}

function writeNotes(
  authorization: string | undefined,
  consultationId: string,
  notes: string,
  ifMatch?: string,
) {
  return call(authorization, {
    method: 'PUT',
    url: `/consultations/${consultationId}/notes`,
    payload: { notes },
    ...(ifMatch === undefined ? {} : { headers: { 'if-match': ifMatch } }),
  });
}

function readNotes(authorization: string | undefined, consultationId: string) {
  return call(authorization, { method: 'GET', url: `/consultations/${consultationId}/notes` });
}

function expectProblem(response: Response, status: number, code: string): void {
  expect({ status: response.statusCode, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.json()).toMatchObject({ status, code });
}

async function started(consultation: TestConsultation): Promise<void> {
  const response = await move(consultation.doctor.authorization, consultation.id, 'start', '"1"');
  expect(response.statusCode, response.body).toBe(200);
}

async function rawConsultation(id: string) {
  const result = await database().pool.query<{
    status: string;
    version: number;
    clinical_notes: string | null;
  }>('select status, version, clinical_notes from telemedicine.consultations where id = $1', [id]);
  return result.rows[0];
}

async function statusEvents(consultationId: string) {
  const result = await database().pool.query<{ payload: { from: string; to: string } }>(
    `select payload from platform.outbox_events
      where type = 'telemedicine.consultation_status_changed.v1' and aggregate_id = $1 order by position`,
    [consultationId],
  );
  return result.rows.map((row) => row.payload);
}

describe('consultation lifecycle', () => {
  it('starts a consultation from 15 minutes before its start, with an event and a new ETag', async () => {
    const consultation = await consultationStartingIn(15);
    const response = await move(consultation.doctor.authorization, consultation.id, 'start', '"1"');

    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers.etag).toBe('"2"');
    expect(response.json()).toEqual({
      id: consultation.id,
      status: 'IN_PROGRESS',
      version: 2,
      started_at: new Date(nowMs).toISOString(),
      completed_at: null,
    });
    expect(await statusEvents(consultation.id)).toEqual([
      expect.objectContaining({
        consultationId: consultation.id,
        patientId: consultation.patient.account.id,
        doctorId: consultation.doctor.account.id,
        from: 'SCHEDULED',
        to: 'IN_PROGRESS',
        startsAt: consultation.startsAt.toISOString(),
      }),
    ]);
  });

  it('refuses to start earlier than 15 minutes before the start (telemedicine.too_early_to_start)', async () => {
    const consultation = await consultationStartingIn(16);
    const response = await move(consultation.doctor.authorization, consultation.id, 'start', '"1"');
    expectProblem(response, 409, 'telemedicine.too_early_to_start');
    expect((await rawConsultation(consultation.id))?.status).toBe('SCHEDULED');
  });

  it('completes a started consultation and stamps completed_at', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    // Less than an access token's lifetime: the doctor's session must still be valid.
    nowMs += 10 * MINUTE;
    const response = await move(consultation.doctor.authorization, consultation.id, 'complete', '"2"');

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'COMPLETED',
      version: 3,
      completed_at: new Date(nowMs).toISOString(),
    });
    expect((await statusEvents(consultation.id)).map((event) => event.to)).toEqual([
      'IN_PROGRESS',
      'COMPLETED',
    ]);
  });

  it('answers 409 telemedicine.invalid_transition for moves the lifecycle does not allow', async () => {
    const consultation = await consultationStartingIn(5);
    expectProblem(
      await move(consultation.doctor.authorization, consultation.id, 'complete', '"1"'),
      409,
      'telemedicine.invalid_transition',
    );
    await started(consultation);
    expectProblem(
      await move(consultation.doctor.authorization, consultation.id, 'start', '"2"'),
      409,
      'telemedicine.invalid_transition',
    );
    expectProblem(
      await move(consultation.doctor.authorization, consultation.id, 'no-show', '"2"'),
      409,
      'telemedicine.invalid_transition',
    );

    const cancelled = await consultationStartingIn(5, 'CANCELLED');
    expectProblem(
      await move(cancelled.doctor.authorization, cancelled.id, 'start', '"1"'),
      409,
      'telemedicine.invalid_transition',
    );
  });

  it('marks a no-show only from 10 minutes after the start', async () => {
    const consultation = await consultationStartingIn(-9);
    expectProblem(
      await move(consultation.doctor.authorization, consultation.id, 'no-show', '"1"'),
      409,
      'telemedicine.too_early_for_no_show',
    );
    nowMs += MINUTE;
    const response = await move(consultation.doctor.authorization, consultation.id, 'no-show', '"1"');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ status: 'NO_SHOW', version: 2, started_at: null });
    expect(await statusEvents(consultation.id)).toEqual([
      expect.objectContaining({ from: 'SCHEDULED', to: 'NO_SHOW' }),
    ]);
  });

  it('requires If-Match (400), refuses a stale one (412) and a malformed one (400)', async () => {
    const consultation = await consultationStartingIn(5);
    const { authorization } = consultation.doctor;
    expectProblem(
      await move(authorization, consultation.id, 'start'),
      400,
      'telemedicine.precondition_required',
    );
    const stale = await move(authorization, consultation.id, 'start', '"7"');
    expectProblem(stale, 412, 'telemedicine.version_mismatch');
    expect(stale.headers.etag).toBe('"1"');
    expectProblem(
      await move(authorization, consultation.id, 'start', 'W/"1"'),
      400,
      'telemedicine.invalid_if_match',
    );
    expect((await rawConsultation(consultation.id))?.status).toBe('SCHEDULED');
  });

  it('lets exactly one of several concurrent starts win; the others get 412', async () => {
    const consultation = await consultationStartingIn(5);
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        move(consultation.doctor.authorization, consultation.id, 'start', '"1"'),
      ),
    );
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 412, 412, 412, 412, 412]);
    expect(await rawConsultation(consultation.id)).toMatchObject({ status: 'IN_PROGRESS', version: 2 });
    expect(await statusEvents(consultation.id)).toHaveLength(1);
  });

  it('refuses every caller but the consultation’s doctor', async () => {
    const consultation = await consultationStartingIn(5);
    const otherDoctor = await signInDoctor(harness.testApp, database());
    const support = await signInSupport(harness.testApp);
    const admin = await signInTelemedicineAdmin(harness.testApp);
    for (const action of ['start', 'complete', 'no-show'] as const) {
      expectProblem(
        await move(otherDoctor.authorization, consultation.id, action, '"1"'),
        404,
        'telemedicine.consultation_not_found',
      );
      expectProblem(
        await move(consultation.patient.authorization, consultation.id, action, '"1"'),
        403,
        'auth.forbidden',
      );
      expectProblem(await move(support.authorization, consultation.id, action, '"1"'), 403, 'auth.forbidden');
      expectProblem(await move(admin.authorization, consultation.id, action, '"1"'), 403, 'auth.forbidden');
      expectProblem(await move(undefined, consultation.id, action, '"1"'), 401, 'auth.unauthenticated');
    }
    expectProblem(
      await move(consultation.doctor.authorization, randomUUID(), 'start', '"1"'),
      404,
      'telemedicine.consultation_not_found',
    );
    expect(await rawConsultation(consultation.id)).toMatchObject({ status: 'SCHEDULED', version: 1 });
  });
});

describe('clinical notes', () => {
  it('refuses notes before the consultation has started (telemedicine.notes_not_writable)', async () => {
    const consultation = await consultationStartingIn(60);
    expectProblem(
      await writeNotes(consultation.doctor.authorization, consultation.id, 'Too soon'),
      409,
      'telemedicine.notes_not_writable',
    );
  });

  it('stores the notes encrypted, bumps the version and audits the write', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    const text = 'Sore throat for 3 days.\n\tNo fever.';
    const response = await writeNotes(consultation.doctor.authorization, consultation.id, text);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers.etag).toBe('"3"');
    expect(response.json()).toMatchObject({ consultation_id: consultation.id, notes: text, version: 3 });
    const raw = await rawConsultation(consultation.id);
    expect(raw?.version).toBe(3);
    expect(raw?.clinical_notes).toMatch(/^kv1\./);
    expect(raw?.clinical_notes).not.toContain('throat');
    expect(await clinicalAuditRows(database(), consultation.patient.account.id)).toEqual([
      expect.objectContaining({
        action: 'telemedicine.clinical_notes_written',
        actor_id: consultation.doctor.account.id,
        changes: expect.objectContaining({
          resource: 'clinical_notes',
          resource_id: consultation.id,
          operation: 'write',
          purpose: 'treatment',
        }),
      }),
    ]);
  });

  it('keeps accepting notes after completion, and refuses a stale If-Match with 412', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    await move(consultation.doctor.authorization, consultation.id, 'complete', '"2"');
    const written = await writeNotes(consultation.doctor.authorization, consultation.id, 'Write-up', '"3"');
    expect(written.statusCode, written.body).toBe(200);
    expectProblem(
      await writeNotes(consultation.doctor.authorization, consultation.id, 'Overwrite', '"3"'),
      412,
      'telemedicine.version_mismatch',
    );
    const read = await readNotes(consultation.doctor.authorization, consultation.id);
    expect(read.json()).toMatchObject({ notes: 'Write-up', version: 4 });
  });

  it('shows the notes to the doctor and the patient, auditing each read with its purpose', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    await writeNotes(consultation.doctor.authorization, consultation.id, 'Rest and fluids');

    const byDoctor = await readNotes(consultation.doctor.authorization, consultation.id);
    const byPatient = await readNotes(consultation.patient.authorization, consultation.id);
    for (const response of [byDoctor, byPatient]) {
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ consultation_id: consultation.id, notes: 'Rest and fluids' });
    }
    const reads = (await clinicalAuditRows(database(), consultation.patient.account.id)).filter(
      (row) => row.action === 'telemedicine.clinical_notes_viewed',
    );
    expect(reads.map((row) => [row.actor_id, row.changes.purpose])).toEqual([
      [consultation.doctor.account.id, 'treatment'],
      [consultation.patient.account.id, 'patient_access'],
    ]);
  });

  it('answers null notes before any are written, still auditing the read', async () => {
    const consultation = await consultationStartingIn(60);
    const response = await readNotes(consultation.patient.authorization, consultation.id);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ notes: null, version: 1 });
    expect(await clinicalAuditRows(database(), consultation.patient.account.id)).toHaveLength(1);
  });

  it('hides the notes from support, admins, other patients and other doctors (404), unaudited', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    await writeNotes(consultation.doctor.authorization, consultation.id, 'Private');
    const callers = [
      await signInSupport(harness.testApp),
      await signInTelemedicineAdmin(harness.testApp),
      await signInPatient(harness.testApp, database(), harness.testApp.security.fieldCrypto.encryption),
      await signInDoctor(harness.testApp, database()),
    ];
    for (const caller of callers) {
      expectProblem(
        await readNotes(caller.authorization, consultation.id),
        404,
        'telemedicine.consultation_not_found',
      );
    }
    expectProblem(await readNotes(undefined, consultation.id), 401, 'auth.unauthenticated');
    // Only the doctor's write: no refused caller left a read in the access log.
    expect(await clinicalAuditRows(database(), consultation.patient.account.id)).toHaveLength(1);
  });

  it('lets only the consultation’s doctor write notes', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    const otherDoctor = await signInDoctor(harness.testApp, database());
    expectProblem(
      await writeNotes(otherDoctor.authorization, consultation.id, 'Not mine'),
      404,
      'telemedicine.consultation_not_found',
    );
    expectProblem(
      await writeNotes(consultation.patient.authorization, consultation.id, 'Mine?'),
      403,
      'auth.forbidden',
    );
    const support = await signInSupport(harness.testApp);
    expectProblem(await writeNotes(support.authorization, consultation.id, 'x'), 403, 'auth.forbidden');
    expectProblem(await writeNotes(undefined, consultation.id, 'x'), 401, 'auth.unauthenticated');
    expect((await rawConsultation(consultation.id))?.clinical_notes).toBeNull();
  });

  it('refuses notes over 20000 characters and control characters (400)', async () => {
    const consultation = await consultationStartingIn(5);
    await started(consultation);
    const { authorization } = consultation.doctor;
    expect((await writeNotes(authorization, consultation.id, 'x'.repeat(20_001))).statusCode).toBe(400);
    expect((await writeNotes(authorization, consultation.id, 'bell\u0007')).statusCode).toBe(400);
    expect((await writeNotes(authorization, consultation.id, 'x'.repeat(20_000))).statusCode).toBe(200);
  });
});

describe('consultation reminders', () => {
  const sendReminderQueue = () =>
    createSendReminderQueue({
      db: database().typed<TelemedicineSchema>(),
      // The test app's recording notifier, so the assertions read testApp.notifications.
      notifier: { send: async (notification) => void harness.testApp.notifications.push(notification) },
    });

  function runReminder(job: ReminderJob) {
    return sendReminderQueue().handler({
      id: randomUUID(),
      name: SEND_REMINDER_QUEUE,
      data: job,
      retryCount: 0,
      signal: new AbortController().signal,
    });
  }

  function factsOf(consultation: TestConsultation, startsAt: Date = consultation.startsAt) {
    return {
      consultationId: consultation.id,
      patientId: consultation.patient.account.id,
      doctorId: consultation.doctor.account.id,
      slotId: consultation.slotId,
      specialty: 'general practice',
      startsAt: startsAt.toISOString(),
      endsAt: new Date(startsAt.getTime() + 15 * MINUTE).toISOString(),
      feeMinor: 5000,
      currency: 'EUR',
    };
  }

  // Emitted straight into the outbox, as the booking saga emits them.
  async function emit(definition: EventDefinition<string, TSchema>, consultationId: string, payload: object) {
    return database()
      .typed<unknown>()
      .transaction(
        (trx): Promise<EventEnvelope> =>
          emitEvent(
            trx,
            { type: definition.type, aggregateType: 'consultation', aggregateId: consultationId, payload },
            { definition },
          ),
      );
  }

  async function reminderJobs(consultationId: string) {
    const result = await database().pool.query<{
      data: ReminderJob;
      singleton_key: string;
      start_after: Date;
    }>(
      `select data, singleton_key, start_after from pgboss.job
        where name = $1 and data->>'consultationId' = $2 order by start_after`,
      [SEND_REMINDER_QUEUE, consultationId],
    );
    return result.rows;
  }

  function remindersOf(consultationId: string): Notification[] {
    return harness.testApp.notifications.filter(
      (notification) => notification.data.consultationId === consultationId,
    );
  }

  it('plans a 24h and a 1h reminder when a consultation is confirmed', async () => {
    const consultation = await consultationStartingIn(2 * 24 * 60);
    await emit(ConsultationConfirmedV1, consultation.id, {
      ...factsOf(consultation),
      paymentId: randomUUID(),
    });
    await harness.testApp.background.drainEvents();

    const startsAt = consultation.startsAt.toISOString();
    const jobs = await reminderJobs(consultation.id);
    expect(jobs.map((job) => [job.data, job.singleton_key])).toEqual([
      [{ consultationId: consultation.id, kind: '24h', startsAt }, `${consultation.id}:24h:${startsAt}`],
      [{ consultationId: consultation.id, kind: '1h', startsAt }, `${consultation.id}:1h:${startsAt}`],
    ]);
    // Delayed by the lead times: 23 hours apart.
    const [first, second] = jobs;
    expect((second?.start_after.getTime() ?? 0) - (first?.start_after.getTime() ?? 0)).toBe(23 * 3_600_000);
  });

  it('skips a reminder whose moment has passed (booked 3 hours ahead: only the 1h one)', async () => {
    const consultation = await consultationStartingIn(3 * 60);
    await emit(ConsultationConfirmedV1, consultation.id, {
      ...factsOf(consultation),
      paymentId: randomUUID(),
    });
    await harness.testApp.background.drainEvents();
    expect((await reminderJobs(consultation.id)).map((job) => job.data.kind)).toEqual(['1h']);
  });

  it('plans new reminders for the new start when a consultation is rescheduled', async () => {
    const consultation = await consultationStartingIn(2 * 24 * 60);
    const movedTo = new Date(consultation.startsAt.getTime() + 24 * 3_600_000);
    await emit(ConsultationRescheduledV1, consultation.id, {
      ...factsOf(consultation, movedTo),
      previousSlotId: randomUUID(),
      previousStartsAt: consultation.startsAt.toISOString(),
    });
    await harness.testApp.background.drainEvents();
    expect((await reminderJobs(consultation.id)).map((job) => job.singleton_key)).toEqual([
      `${consultation.id}:24h:${movedTo.toISOString()}`,
      `${consultation.id}:1h:${movedTo.toISOString()}`,
    ]);
  });

  it('reminds the patient and the doctor when the consultation is still booked for that start', async () => {
    const consultation = await consultationStartingIn(2 * 24 * 60);
    const startsAt = consultation.startsAt.toISOString();
    await runReminder({ consultationId: consultation.id, kind: '1h', startsAt });

    const data = { consultationId: consultation.id, startsAt, kind: '1h' };
    expect(remindersOf(consultation.id)).toEqual([
      {
        to: `account:${consultation.patient.account.id}`,
        template: 'telemedicine.consultation_reminder',
        data,
      },
      {
        to: `account:${consultation.doctor.account.id}`,
        template: 'telemedicine.consultation_reminder',
        data,
      },
    ]);
  });

  it('sends nothing for a reminder of an old start, or of a cancelled consultation', async () => {
    const moved = await consultationStartingIn(2 * 24 * 60);
    const oldStart = new Date(moved.startsAt.getTime() - 3_600_000).toISOString();
    await runReminder({ consultationId: moved.id, kind: '24h', startsAt: oldStart });
    expect(remindersOf(moved.id)).toEqual([]);

    const cancelled = await consultationStartingIn(2 * 24 * 60, 'CANCELLED');
    await runReminder({
      consultationId: cancelled.id,
      kind: '1h',
      startsAt: cancelled.startsAt.toISOString(),
    });
    expect(remindersOf(cancelled.id)).toEqual([]);

    await runReminder({
      consultationId: randomUUID(),
      kind: '1h',
      startsAt: cancelled.startsAt.toISOString(),
    });
  });

  it('runs a due reminder through the real queue', async () => {
    // Confirmed exactly one hour ahead: the 1h reminder is due at once and the worker sends it.
    const consultation = await consultationStartingIn(60);
    await emit(ConsultationConfirmedV1, consultation.id, {
      ...factsOf(consultation),
      paymentId: randomUUID(),
    });
    await harness.testApp.background.drainEvents();

    const deadline = Date.now() + 15_000;
    while (remindersOf(consultation.id).length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(
      remindersOf(consultation.id).map((notification) => [notification.to, notification.data.kind]),
    ).toEqual(
      expect.arrayContaining([
        [`account:${consultation.patient.account.id}`, '1h'],
        [`account:${consultation.doctor.account.id}`, '1h'],
      ]),
    );
  });
});
