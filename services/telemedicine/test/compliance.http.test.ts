import { randomUUID } from 'node:crypto';
import type { FieldEncryption } from '@keel/platform/crypto';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createExportDataQueue,
  DATA_EXPORT_READY_TEMPLATE,
  EXPORT_DATA_RETRY_LIMIT,
} from '../src/compliance/export-data.job.ts';
import { createPurgeDataExportsQueue } from '../src/compliance/purge-data-exports.job.ts';
import type { TelemedicineSchema } from '../src/database.ts';
import { telemedicineModule } from '../src/index.ts';
import {
  buildPrincipal,
  insertConsultation,
  insertPayment,
  insertPendingExport,
  insertPrescription,
  insertReview,
  recordAccess,
} from './compliance.fixtures.ts';
import {
  signInDoctor,
  signInPatient,
  signInSupport,
  signInWithRoles,
  type TelemedicineCaller,
} from './fixtures.ts';

const harness = useTestApp({ modules: [telemedicineModule], env: { RATE_LIMIT_ENABLED: 'false' } });
const inject = (options: InjectOptions) => harness.testApp.app.inject(options);

function database() {
  return harness.testDb.database;
}
function encryption() {
  return harness.testApp.security.fieldCrypto.encryption;
}
function db() {
  return database().typed<TelemedicineSchema>();
}

function call(caller: TelemedicineCaller | undefined, method: InjectOptions['method'], url: string) {
  return inject({
    method,
    url,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

function newPatient(fullName = 'Test Patient') {
  return signInPatient(harness.testApp, database(), encryption(), { fullName, dateOfBirth: '1815-12-10' });
}

type ExportStatus = { id: string; status: string; archive_url: string | null };

/** Polls the export's status (bounded) until it leaves PENDING: the job runs on the test app's real queue. */
async function waitForExport(caller: TelemedicineCaller, id: string): Promise<ExportStatus> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const response = await call(caller, 'GET', `/telemedicine/me/data-exports/${id}`);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<ExportStatus>();
    if (body.status !== 'PENDING' || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('listMyAccessLog', () => {
  let patient: TelemedicineCaller;
  let otherPatient: TelemedicineCaller;
  let doctor: TelemedicineCaller;
  let consultationId: string;
  const base = Date.UTC(2030, 5, 1, 12);

  beforeAll(async () => {
    patient = await newPatient();
    otherPatient = await newPatient();
    doctor = await signInDoctor(harness.testApp, database());
    consultationId = await insertConsultation(database(), encryption(), {
      patientId: patient.account.id,
      doctorId: doctor.account.id,
    });
    const doctorActor = buildPrincipal(doctor.account.id, ['telemedicine:doctor']);
    const supportActor = buildPrincipal(randomUUID(), ['telemedicine:support']);
    // Five accesses a minute apart, the newest last; one to the other patient's record.
    await recordAccess(database(), {
      actor: doctorActor,
      patientId: patient.account.id,
      operation: 'read',
      resource: 'consultation',
      resourceId: consultationId,
      purpose: 'treatment',
      occurredAt: new Date(base),
    });
    await recordAccess(database(), {
      actor: doctorActor,
      patientId: patient.account.id,
      operation: 'write',
      resource: 'clinical_notes',
      resourceId: consultationId,
      purpose: 'treatment',
      occurredAt: new Date(base + 60_000),
    });
    await recordAccess(database(), {
      actor: supportActor,
      patientId: patient.account.id,
      operation: 'read',
      resource: 'consultation',
      resourceId: consultationId,
      purpose: 'support',
      occurredAt: new Date(base + 120_000),
    });
    await recordAccess(database(), {
      actor: doctorActor,
      patientId: patient.account.id,
      operation: 'read',
      resource: 'patient_profile',
      resourceId: patient.account.id,
      purpose: 'treatment',
      occurredAt: new Date(base + 180_000),
    });
    await recordAccess(database(), {
      actor: doctorActor,
      patientId: patient.account.id,
      operation: 'read',
      resource: 'prescription',
      resourceId: randomUUID(),
      purpose: 'treatment',
      occurredAt: new Date(base + 240_000),
    });
    await recordAccess(database(), {
      actor: doctorActor,
      patientId: otherPatient.account.id,
      operation: 'read',
      resource: 'patient_profile',
      resourceId: otherPatient.account.id,
      purpose: 'treatment',
      occurredAt: new Date(base + 300_000),
    });
  });

  it('shows the patient who read their record, in which role and why, newest first', async () => {
    const response = await call(patient, 'GET', '/telemedicine/me/access-log');
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.next_cursor).toBeNull();
    expect(body.items).toHaveLength(5);
    expect(body.items.map((entry: { occurred_at: string }) => entry.occurred_at)).toEqual(
      [4, 3, 2, 1, 0].map((minutes) => new Date(base + minutes * 60_000).toISOString()),
    );
    expect(body.items[4]).toEqual({
      occurred_at: new Date(base).toISOString(),
      actor_id: doctor.account.id,
      actor_type: 'user',
      actor_roles: ['telemedicine:doctor'],
      action: 'telemedicine.consultation_viewed',
      resource: 'consultation',
      resource_id: consultationId,
      purpose: 'treatment',
      operation: 'read',
    });
    expect(body.items[3]).toMatchObject({
      action: 'telemedicine.clinical_notes_written',
      operation: 'write',
      resource: 'clinical_notes',
    });
    expect(body.items[2]).toMatchObject({ actor_roles: ['telemedicine:support'], purpose: 'support' });
  });

  it('shows another patient none of it', async () => {
    const response = await call(otherPatient, 'GET', '/telemedicine/me/access-log');
    expect(response.statusCode).toBe(200);
    const items = response.json().items as { resource_id: string; actor_id: string }[];
    expect(items).toHaveLength(1);
    expect(items[0]?.resource_id).toBe(otherPatient.account.id);
    const withoutAccess = await signInWithRoles(harness.testApp, ['telemedicine:patient']);
    const empty = await call(withoutAccess, 'GET', '/telemedicine/me/access-log');
    expect(empty.json()).toEqual({ items: [], next_cursor: null });
  });

  it('pages through the log with the opaque cursor, each entry once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const response = await call(patient, 'GET', `/telemedicine/me/access-log?limit=2${query}`);
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json();
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((entry: { occurred_at: string }) => entry.occurred_at));
      cursor = body.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([4, 3, 2, 1, 0].map((minutes) => new Date(base + minutes * 60_000).toISOString()));
  });

  it('filters by time: from inclusive, to exclusive', async () => {
    const from = new Date(base + 60_000).toISOString();
    const to = new Date(base + 180_000).toISOString();
    const response = await call(
      patient,
      'GET',
      `/telemedicine/me/access-log?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
    );
    expect(response.statusCode).toBe(200);
    expect(response.json().items.map((entry: { occurred_at: string }) => entry.occurred_at)).toEqual([
      new Date(base + 120_000).toISOString(),
      from,
    ]);
  });

  it('answers 400 audit.invalid_cursor for a cursor it did not issue, and 400 for a bad limit', async () => {
    const forged = await call(patient, 'GET', '/telemedicine/me/access-log?cursor=not-a-cursor');
    expect(forged.statusCode).toBe(400);
    expect(forged.json()).toMatchObject({ code: 'audit.invalid_cursor' });
    expect((await call(patient, 'GET', '/telemedicine/me/access-log?limit=0')).statusCode).toBe(400);
    expect((await call(patient, 'GET', '/telemedicine/me/access-log?from=yesterday')).statusCode).toBe(400);
  });

  it('refuses a doctor and support with 403 and an anonymous caller with 401', async () => {
    for (const caller of [doctor, await signInSupport(harness.testApp)]) {
      const response = await call(caller, 'GET', '/telemedicine/me/access-log');
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ code: 'auth.forbidden' });
    }
    expect((await call(undefined, 'GET', '/telemedicine/me/access-log')).statusCode).toBe(401);
  });
});

describe('exportMyData', () => {
  let patient: TelemedicineCaller;
  let otherPatient: TelemedicineCaller;
  let doctor: TelemedicineCaller;
  let consultationId: string;
  let prescriptionId: string;
  let exportId: string;

  beforeAll(async () => {
    patient = await newPatient('Ada Lovelace');
    otherPatient = await newPatient();
    doctor = await signInDoctor(harness.testApp, database(), { fullName: 'Dr Export' });
    consultationId = await insertConsultation(database(), encryption(), {
      patientId: patient.account.id,
      doctorId: doctor.account.id,
      reason: 'Migraine since Tuesday',
      clinicalNotes: 'Prescribed rest and fluids',
    });
    await insertPayment(database(), {
      consultationId,
      patientId: patient.account.id,
      amountMinor: 5000,
      refundMinor: 1000,
    });
    prescriptionId = await insertPrescription(database(), encryption(), {
      consultationId,
      patientId: patient.account.id,
      doctorId: doctor.account.id,
      document: { items: [{ medicine: 'Ibuprofen 400 mg', dosage: 'twice daily' }], advice: 'Rest' },
    });
    await insertReview(database(), {
      consultationId,
      patientId: patient.account.id,
      doctorId: doctor.account.id,
      rating: 5,
      comment: 'Very kind',
    });
    await recordAccess(database(), {
      actor: buildPrincipal(doctor.account.id, ['telemedicine:doctor']),
      patientId: patient.account.id,
      operation: 'read',
      resource: 'consultation',
      resourceId: consultationId,
      purpose: 'treatment',
    });
    // Someone else's record, which must not leak into this export.
    await insertConsultation(database(), encryption(), {
      patientId: otherPatient.account.id,
      doctorId: doctor.account.id,
      reason: 'Not Ada’s reason',
    });
  });

  it('prepares an archive of everything held about the patient, decrypted, and notifies them', async () => {
    const response = await call(patient, 'POST', '/telemedicine/me/data-exports');
    expect(response.statusCode, response.body).toBe(202);
    const body = response.json<ExportStatus>();
    expect(body).toMatchObject({ status: 'PENDING', archive_url: null });
    exportId = body.id;
    expect(response.headers.location).toBe(`/telemedicine/me/data-exports/${exportId}`);

    const ready = await waitForExport(patient, exportId);
    expect(ready).toMatchObject({
      id: exportId,
      status: 'READY',
      archive_url: `/telemedicine/me/data-exports/${exportId}/archive`,
      completed_at: expect.any(String),
      expires_at: expect.any(String),
    });
    const status = ready as ExportStatus & { completed_at: string; expires_at: string };
    expect(Date.parse(status.expires_at) - Date.parse(status.completed_at)).toBe(7 * 86_400_000);

    const download = await call(patient, 'GET', `/telemedicine/me/data-exports/${exportId}/archive`);
    expect(download.statusCode, download.body).toBe(200);
    expect(download.headers['content-type']).toMatch(/^application\/json/);
    expect(download.headers['content-disposition']).toBe(
      `attachment; filename="telemedicine-export-${exportId}.json"`,
    );
    const archive = download.json();
    expect(archive).toMatchObject({
      format: 'keel.telemedicine.data_export.v1',
      export_id: exportId,
      patient_id: patient.account.id,
      profile: { id: patient.account.id, full_name: 'Ada Lovelace', date_of_birth: '1815-12-10' },
    });
    expect(archive.consultations).toEqual([
      expect.objectContaining({
        id: consultationId,
        doctor_id: doctor.account.id,
        doctor_name: 'Dr Export',
        status: 'COMPLETED',
        reason: 'Migraine since Tuesday',
        clinical_notes: 'Prescribed rest and fluids',
        fee_minor: 5000,
      }),
    ]);
    expect(archive.prescriptions).toEqual([
      expect.objectContaining({
        id: prescriptionId,
        status: 'ISSUED',
        content: { items: [{ medicine: 'Ibuprofen 400 mg', dosage: 'twice daily' }], advice: 'Rest' },
        signature: 'ed25519:test-signature',
      }),
    ]);
    expect(archive.payments).toEqual([
      expect.objectContaining({
        consultation_id: consultationId,
        amount_minor: 5000,
        refunded_minor: 1000,
        refunds: [expect.objectContaining({ amount_minor: 1000, status: 'SUCCEEDED' })],
      }),
    ]);
    expect(archive.payments[0]).not.toHaveProperty('client_secret');
    expect(archive.reviews).toEqual([expect.objectContaining({ rating: 5, comment: 'Very kind' })]);
    expect(archive.consents.map((consent: { kind: string }) => consent.kind)).toEqual([
      'treatment',
      'telehealth',
    ]);
    expect(archive.access_log).toEqual([
      expect.objectContaining({
        actor_id: doctor.account.id,
        resource: 'consultation',
        purpose: 'treatment',
      }),
    ]);
    expect(download.body).not.toContain('Not Ada’s reason');
    expect(download.body).not.toContain('secret');

    expect(harness.testApp.notifications).toContainEqual({
      to: patient.account.id,
      template: DATA_EXPORT_READY_TEMPLATE,
      data: { exportId },
    });
  });

  it('stores the archive field-encrypted', async () => {
    const row = await db().run((kysely) =>
      kysely
        .selectFrom('telemedicine.data_exports')
        .select(['archive', 'status'])
        .where('id', '=', exportId)
        .executeTakeFirstOrThrow(),
    );
    expect(row.status).toBe('READY');
    expect(row.archive).toMatch(/^kv1\./);
    expect(row.archive).not.toContain('Ada');
    expect(row.archive).not.toContain('Migraine');
  });

  it('records the export and the download in the patient’s access log', async () => {
    const response = await call(patient, 'GET', '/telemedicine/me/access-log');
    const items = response.json().items as Record<string, unknown>[];
    const exportEntries = items.filter((entry) => entry.resource === 'data_export');
    expect(exportEntries).toEqual([
      expect.objectContaining({
        actor_id: patient.account.id,
        resource_id: exportId,
        purpose: 'patient_access',
        operation: 'read',
      }),
      expect.objectContaining({
        actor_id: patient.account.id,
        actor_roles: ['telemedicine:patient'],
        resource_id: exportId,
        purpose: 'data_export',
        operation: 'read',
      }),
    ]);
  });

  it('answers 404 telemedicine.export_not_found for another patient’s export or an unknown one', async () => {
    for (const url of [
      `/telemedicine/me/data-exports/${exportId}`,
      `/telemedicine/me/data-exports/${exportId}/archive`,
      `/telemedicine/me/data-exports/${randomUUID()}`,
      `/telemedicine/me/data-exports/${randomUUID()}/archive`,
    ]) {
      const response = await call(otherPatient, 'GET', url);
      expect(response.statusCode, url).toBe(404);
      expect(response.json()).toMatchObject({ code: 'telemedicine.export_not_found' });
    }
    expect((await call(otherPatient, 'GET', '/telemedicine/me/data-exports/not-a-uuid')).statusCode).toBe(
      400,
    );
  });

  it('returns the pending export instead of starting a second one, and refuses its archive with 409', async () => {
    const caller = await newPatient();
    const pendingId = await insertPendingExport(database(), caller.account.id);
    const again = await call(caller, 'POST', '/telemedicine/me/data-exports');
    expect(again.statusCode).toBe(202);
    expect(again.json()).toMatchObject({ id: pendingId, status: 'PENDING' });
    const archive = await call(caller, 'GET', `/telemedicine/me/data-exports/${pendingId}/archive`);
    expect(archive.statusCode).toBe(409);
    expect(archive.json()).toMatchObject({ code: 'telemedicine.export_not_ready' });
  });

  it('keeps concurrent requests to one export', async () => {
    const caller = await newPatient();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => call(caller, 'POST', '/telemedicine/me/data-exports')),
    );
    expect(responses.map((response) => response.statusCode)).toEqual(Array(10).fill(202));
    const ids = new Set(responses.map((response) => response.json<ExportStatus>().id));
    expect(ids.size).toBe(1);
    const rows = await db().run((kysely) =>
      kysely
        .selectFrom('telemedicine.data_exports')
        .select(['id'])
        .where('patient_id', '=', caller.account.id)
        .execute(),
    );
    expect(rows).toHaveLength(1);
    const [id] = ids;
    expect(await waitForExport(caller, id ?? '')).toMatchObject({ status: 'READY' });
  });

  it('returns a READY export requested within the last minute, and starts a new one after that or once it expired', async () => {
    const caller = await newPatient();
    const first = (await call(caller, 'POST', '/telemedicine/me/data-exports')).json<ExportStatus>().id;
    expect(await waitForExport(caller, first)).toMatchObject({ status: 'READY' });
    const again = await call(caller, 'POST', '/telemedicine/me/data-exports');
    expect(again.statusCode).toBe(202);
    expect(again.json()).toMatchObject({ id: first, status: 'READY' });

    const setExport = (id: string, values: { requested_at?: Date; expires_at?: Date }) =>
      db().run((kysely) =>
        kysely.updateTable('telemedicine.data_exports').set(values).where('id', '=', id).execute(),
      );
    // Recent but expired: a new export.
    await setExport(first, { expires_at: new Date(Date.now() - 1000) });
    const afterExpiry = (await call(caller, 'POST', '/telemedicine/me/data-exports')).json<ExportStatus>();
    expect(afterExpiry.id).not.toBe(first);
    expect(await waitForExport(caller, afterExpiry.id)).toMatchObject({ status: 'READY' });

    // Downloadable but requested over a minute ago: a new export too.
    await setExport(afterExpiry.id, { requested_at: new Date(Date.now() - 61_000) });
    const later = (await call(caller, 'POST', '/telemedicine/me/data-exports')).json<ExportStatus>();
    expect([first, afterExpiry.id]).not.toContain(later.id);
  });

  it('answers 404 telemedicine.export_expired once the archive has expired, and erases it', async () => {
    const caller = await newPatient();
    const created = await call(caller, 'POST', '/telemedicine/me/data-exports');
    const id = created.json<ExportStatus>().id;
    expect(await waitForExport(caller, id)).toMatchObject({ status: 'READY' });
    await db().run((kysely) =>
      kysely
        .updateTable('telemedicine.data_exports')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('id', '=', id)
        .execute(),
    );
    const status = await call(caller, 'GET', `/telemedicine/me/data-exports/${id}`);
    expect(status.json()).toMatchObject({ status: 'EXPIRED', archive_url: null });
    const archive = await call(caller, 'GET', `/telemedicine/me/data-exports/${id}/archive`);
    expect(archive.statusCode).toBe(404);
    expect(archive.json()).toMatchObject({ code: 'telemedicine.export_expired' });

    const purge = createPurgeDataExportsQueue({
      db: db(),
      clock: harness.testApp.clock,
      logger: harness.testApp.logger,
    });
    await purge.handler({
      id: randomUUID(),
      name: purge.name,
      data: {},
      retryCount: 0,
      signal: new AbortController().signal,
    });
    const row = await db().run((kysely) =>
      kysely
        .selectFrom('telemedicine.data_exports')
        .select(['archive', 'status'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    );
    expect(row).toEqual({ archive: null, status: 'READY' });
    const afterPurge = await call(caller, 'GET', `/telemedicine/me/data-exports/${id}/archive`);
    expect(afterPurge.json()).toMatchObject({ code: 'telemedicine.export_expired' });
  });

  function runExportJob(
    exportId: string,
    retryCount: number,
    encryptionUsed: FieldEncryption = encryption(),
  ): Promise<void> {
    const queue = createExportDataQueue({
      db: db(),
      database: database(),
      encryption: encryptionUsed,
      clock: harness.testApp.clock,
      notifier: { send: async () => undefined },
    });
    return queue.handler({
      id: randomUUID(),
      name: queue.name,
      data: { exportId },
      retryCount,
      signal: new AbortController().signal,
    });
  }

  async function statusOf(caller: TelemedicineCaller, id: string): Promise<ExportStatus> {
    return (await call(caller, 'GET', `/telemedicine/me/data-exports/${id}`)).json<ExportStatus>();
  }

  it('keeps a transiently failing export PENDING for its retries, and marks it FAILED after the last', async () => {
    const caller = await newPatient();
    const id = await insertPendingExport(database(), caller.account.id);
    const unreachable: FieldEncryption = {
      ...encryption(),
      encrypt: () => {
        throw new Error('the key service is unreachable');
      },
    };
    await expect(runExportJob(id, 0, unreachable)).rejects.toThrow('unreachable');
    expect(await statusOf(caller, id)).toMatchObject({ status: 'PENDING' });
    await expect(runExportJob(id, EXPORT_DATA_RETRY_LIMIT, unreachable)).rejects.toThrow('unreachable');
    expect(await statusOf(caller, id)).toMatchObject({ status: 'FAILED', archive_url: null });
    const archive = await call(caller, 'GET', `/telemedicine/me/data-exports/${id}/archive`);
    expect(archive.statusCode).toBe(409);
    expect(archive.json()).toMatchObject({ code: 'telemedicine.export_failed' });
    // A failed export does not block a new one.
    const retried = await call(caller, 'POST', '/telemedicine/me/data-exports');
    expect(retried.statusCode).toBe(202);
    expect(retried.json<ExportStatus>().id).not.toBe(id);
  });

  it('marks the export FAILED at once when the record cannot be decrypted (no retry can help)', async () => {
    const caller = await newPatient();
    await insertConsultation(database(), encryption(), {
      patientId: caller.account.id,
      doctorId: doctor.account.id,
      rawReason: 'kv1.not-a-real-ciphertext',
    });
    const id = await insertPendingExport(database(), caller.account.id);
    await expect(runExportJob(id, 0)).rejects.toMatchObject({ kind: 'internal' });
    expect(await statusOf(caller, id)).toMatchObject({ status: 'FAILED' });
  });

  it('answers 422 telemedicine.patient_profile_required without a patient profile', async () => {
    const caller = await signInWithRoles(harness.testApp, ['telemedicine:patient']);
    const response = await call(caller, 'POST', '/telemedicine/me/data-exports');
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ code: 'telemedicine.patient_profile_required' });
  });

  it('refuses a doctor and support with 403 and an anonymous caller with 401', async () => {
    const support = await signInSupport(harness.testApp);
    const routes = [
      ['POST', '/telemedicine/me/data-exports'],
      ['GET', `/telemedicine/me/data-exports/${exportId}`],
      ['GET', `/telemedicine/me/data-exports/${exportId}/archive`],
    ] as const;
    for (const [method, url] of routes) {
      for (const caller of [doctor, support]) {
        const response = await call(caller, method, url);
        expect(response.statusCode, `${method} ${url}`).toBe(403);
        expect(response.json()).toMatchObject({ code: 'auth.forbidden' });
      }
      expect((await call(undefined, method, url)).statusCode).toBe(401);
    }
  });
});

describe('listMyConsents', () => {
  let patient: TelemedicineCaller;
  let otherPatient: TelemedicineCaller;
  let doctor: TelemedicineCaller;
  const consultations: string[] = [];

  beforeAll(async () => {
    patient = await newPatient();
    otherPatient = await newPatient();
    doctor = await signInDoctor(harness.testApp, database());
    for (const day of [1, 2]) {
      consultations.push(
        await insertConsultation(database(), encryption(), {
          patientId: patient.account.id,
          doctorId: doctor.account.id,
          startsAt: new Date(Date.UTC(2031, 0, day, 9)),
        }),
      );
    }
    await insertConsultation(database(), encryption(), {
      patientId: otherPatient.account.id,
      doctorId: doctor.account.id,
      startsAt: new Date(Date.UTC(2031, 0, 3, 9)),
    });
  });

  it('lists the caller’s consents, newest first', async () => {
    const response = await call(patient, 'GET', '/telemedicine/me/consents');
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.next_cursor).toBeNull();
    expect(
      body.items.map((consent: { consultation_id: string; kind: string }) => [
        consent.consultation_id,
        consent.kind,
      ]),
    ).toEqual([
      [consultations[1], 'telehealth'],
      [consultations[1], 'treatment'],
      [consultations[0], 'telehealth'],
      [consultations[0], 'treatment'],
    ]);
    expect(body.items[0]).toEqual({
      id: expect.any(String),
      consultation_id: consultations[1],
      kind: 'telehealth',
      version: '2030-01',
      given_at: expect.any(String),
    });
  });

  it('pages with the cursor and shows no one else’s consents', async () => {
    const first = await call(patient, 'GET', '/telemedicine/me/consents?limit=3');
    const firstBody = first.json();
    expect(firstBody.items).toHaveLength(3);
    const second = await call(
      patient,
      'GET',
      `/telemedicine/me/consents?limit=3&cursor=${encodeURIComponent(firstBody.next_cursor)}`,
    );
    const secondBody = second.json();
    expect(secondBody).toMatchObject({ next_cursor: null });
    expect(secondBody.items.map((consent: { consultation_id: string }) => consent.consultation_id)).toEqual([
      consultations[0],
    ]);
    const other = await call(otherPatient, 'GET', '/telemedicine/me/consents');
    expect(other.json().items).toHaveLength(2);
    expect(
      other
        .json()
        .items.every(
          (consent: { consultation_id: string }) => !consultations.includes(consent.consultation_id),
        ),
    ).toBe(true);
  });

  it('answers 400 telemedicine.invalid_cursor for a forged cursor', async () => {
    const forged = Buffer.from(JSON.stringify({ g: 'yesterday', i: 'x' })).toString('base64url');
    const response = await call(patient, 'GET', `/telemedicine/me/consents?cursor=${forged}`);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'telemedicine.invalid_cursor' });
  });

  it('refuses a doctor with 403 and an anonymous caller with 401', async () => {
    const response = await call(doctor, 'GET', '/telemedicine/me/consents');
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'auth.forbidden' });
    expect((await call(undefined, 'GET', '/telemedicine/me/consents')).statusCode).toBe(401);
  });
});
