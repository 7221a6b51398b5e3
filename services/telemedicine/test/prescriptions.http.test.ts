import { createPublicKey, generateKeyPairSync, randomUUID, verify } from 'node:crypto';
import type { Clock } from '@keel/platform/module';
import { buildTestApp, type TestApp, useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import type { Response } from 'light-my-request';
import { extractText, getDocumentProxy } from 'unpdf';
import { describe, expect, it } from 'vitest';
import { telemedicineModule } from '../src/index.ts';
import { buildPrescriptionItem } from '../src/prescriptions/prescription.factories.ts';
import { canonicalJson, digestOf } from '../src/prescriptions/prescription.ts';
import { clinicalAuditRows, setUpConsultation, type TestConsultation } from './clinical.fixtures.ts';
import { signInDoctor, signInPatient, signInSupport, signInTelemedicineAdmin } from './fixtures.ts';

const nowMs = Math.floor(Date.now() / 60_000) * 60_000;
const clock: Clock = { now: () => new Date(nowMs) };

const harness = useTestApp({ modules: [telemedicineModule], clock, env: { RATE_LIMIT_ENABLED: 'false' } });

function database() {
  return harness.testDb.database;
}

type PrescriptionBody = {
  id: string;
  consultation_id: string;
  patient_id: string;
  version: number;
  status: 'ISSUED' | 'SUPERSEDED';
  supersedes_id: string | null;
  superseded_by: string | null;
  issued_at: string;
  superseded_at: string | null;
  doctor: { id: string; full_name: string; registration_number: string };
  diagnosis: string;
  advice: string;
  items: Record<string, string>[];
  document_digest: string;
  signature: string;
  kid: string;
};

const CONTENT = {
  diagnosis: 'Acute pharyngitis',
  advice: 'Rest, fluids.\nCome back if the fever persists.',
  items: [
    buildPrescriptionItem(),
    {
      medicine: 'Paracetamol',
      strength: '1 g',
      dosage: '1 tablet',
      frequency: 'up to four times a day',
      duration: '3 days',
      instructions: '',
    },
  ],
};

function call(
  authorization: string | undefined,
  request: { method: 'GET' | 'POST'; url: string; payload?: object },
): Promise<Response> {
  const options: InjectOptions = {
    method: request.method,
    url: `/telemedicine${request.url}`,
    headers: authorization === undefined ? {} : { authorization },
    ...(request.payload === undefined ? {} : { payload: request.payload }),
  };
  return harness.testApp.app.inject(options);
}

function issue(authorization: string | undefined, consultationId: string, body: object = CONTENT) {
  return call(authorization, {
    method: 'POST',
    url: `/consultations/${consultationId}/prescriptions`,
    payload: body,
  });
}

function correct(authorization: string | undefined, prescriptionId: string, body: object = CONTENT) {
  return call(authorization, {
    method: 'POST',
    url: `/prescriptions/${prescriptionId}/corrections`,
    payload: body,
  });
}

function getPrescription(authorization: string | undefined, prescriptionId: string) {
  return call(authorization, { method: 'GET', url: `/prescriptions/${prescriptionId}` });
}

function listPrescriptions(authorization: string | undefined, consultationId: string) {
  return call(authorization, { method: 'GET', url: `/consultations/${consultationId}/prescriptions` });
}

function getPdf(authorization: string | undefined, prescriptionId: string) {
  return call(authorization, { method: 'GET', url: `/prescriptions/${prescriptionId}/pdf` });
}

function verifyPrescription(prescriptionId: string, signature: string) {
  return call(undefined, {
    method: 'POST',
    url: '/prescriptions/verify',
    payload: { prescription_id: prescriptionId, signature },
  });
}

function expectProblem(response: Response, status: number, code: string): void {
  expect({ status: response.statusCode, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.json()).toMatchObject({ status, code });
}

function consultationInProgress(options: { patientName?: string } = {}): Promise<TestConsultation> {
  return setUpConsultation(harness.testApp, database(), {
    startsAt: new Date(nowMs - 5 * 60_000),
    status: 'IN_PROGRESS',
    ...options,
  });
}

async function issued(consultation: TestConsultation): Promise<PrescriptionBody> {
  const response = await issue(consultation.doctor.authorization, consultation.id);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<PrescriptionBody>();
}

async function storedRows(consultationId: string) {
  const result = await database().pool.query<{
    id: string;
    version: number;
    status: string;
    supersedes_id: string | null;
    content: string;
  }>(
    `select id, version, status, supersedes_id, content from telemedicine.prescriptions
      where consultation_id = $1 order by version`,
    [consultationId],
  );
  return result.rows;
}

async function tamper(
  prescriptionId: string,
  column: 'document_digest' | 'signature' | 'content',
  value: string,
) {
  await database().pool.query(`update telemedicine.prescriptions set ${column} = $2 where id = $1`, [
    prescriptionId,
    value,
  ]);
}

/** The document the signature covers, rebuilt from what the API answers. */
function documentOf(prescription: PrescriptionBody) {
  return {
    id: prescription.id,
    version: prescription.version,
    supersedes_id: prescription.supersedes_id,
    consultation_id: prescription.consultation_id,
    patient_id: prescription.patient_id,
    issued_at: prescription.issued_at,
    doctor: prescription.doctor,
    diagnosis: prescription.diagnosis,
    advice: prescription.advice,
    items: prescription.items,
  };
}

describe('issuing a prescription', () => {
  it('issues a signed prescription, stores its content encrypted, emits an event and audits the write', async () => {
    const consultation = await consultationInProgress();
    const response = await issue(consultation.doctor.authorization, consultation.id);

    expect(response.statusCode, response.body).toBe(201);
    const prescription = response.json<PrescriptionBody>();
    expect(response.headers.location).toBe(`/telemedicine/prescriptions/${prescription.id}`);
    expect(prescription).toMatchObject({
      consultation_id: consultation.id,
      patient_id: consultation.patient.account.id,
      version: 1,
      status: 'ISSUED',
      supersedes_id: null,
      superseded_by: null,
      issued_at: new Date(nowMs).toISOString(),
      doctor: {
        id: consultation.doctor.account.id,
        full_name: 'Dr Ada Lovelace',
        registration_number: `REG-${consultation.doctor.account.id}`,
      },
      ...CONTENT,
    });
    expect(prescription.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(prescription.document_digest).toBe(
      digestOf(Buffer.from(canonicalJson(documentOf(prescription)), 'utf8')),
    );

    const [row] = await storedRows(consultation.id);
    expect(row?.content).toMatch(/^kv1\./);
    expect(row?.content).not.toContain('Amoxicillin');
    const events = await database().pool.query<{ payload: Record<string, unknown> }>(
      `select payload from platform.outbox_events
        where type = 'telemedicine.prescription_issued.v1' and aggregate_id = $1`,
      [prescription.id],
    );
    expect(events.rows.map((event) => event.payload)).toEqual([
      {
        prescriptionId: prescription.id,
        consultationId: consultation.id,
        patientId: consultation.patient.account.id,
        doctorId: consultation.doctor.account.id,
        version: 1,
        supersedesId: null,
        issuedAt: prescription.issued_at,
      },
    ]);
    expect(await clinicalAuditRows(database(), consultation.patient.account.id)).toEqual([
      expect.objectContaining({
        action: 'telemedicine.prescription_written',
        actor_id: consultation.doctor.account.id,
        changes: expect.objectContaining({
          resource: 'prescription',
          resource_id: prescription.id,
          purpose: 'treatment',
        }),
      }),
    ]);
  });

  it('also issues after the consultation is completed', async () => {
    const consultation = await setUpConsultation(harness.testApp, database(), {
      startsAt: new Date(nowMs - 60 * 60_000),
      status: 'COMPLETED',
    });
    expect((await issue(consultation.doctor.authorization, consultation.id)).statusCode).toBe(201);
  });

  it('refuses a prescription before the consultation has started (telemedicine.prescription_not_allowed)', async () => {
    const consultation = await setUpConsultation(harness.testApp, database(), {
      startsAt: new Date(nowMs + 60 * 60_000),
    });
    expectProblem(
      await issue(consultation.doctor.authorization, consultation.id),
      409,
      'telemedicine.prescription_not_allowed',
    );
    expect(await storedRows(consultation.id)).toEqual([]);
  });

  it('refuses a second prescription for one consultation: changes are corrections', async () => {
    const consultation = await consultationInProgress();
    await issued(consultation);
    expectProblem(
      await issue(consultation.doctor.authorization, consultation.id),
      409,
      'telemedicine.prescription_already_issued',
    );
    expect(await storedRows(consultation.id)).toHaveLength(1);
  });

  it('issues one prescription however many identical requests race', async () => {
    const consultation = await consultationInProgress();
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => issue(consultation.doctor.authorization, consultation.id)),
    );
    expect(responses.map((response) => response.statusCode).sort()).toEqual([201, 409, 409, 409, 409]);
    expect(await storedRows(consultation.id)).toHaveLength(1);
  });

  it('refuses every caller but the consultation’s doctor', async () => {
    const consultation = await consultationInProgress();
    const otherDoctor = await signInDoctor(harness.testApp, database());
    expectProblem(
      await issue(otherDoctor.authorization, consultation.id),
      404,
      'telemedicine.consultation_not_found',
    );
    expectProblem(await issue(consultation.patient.authorization, consultation.id), 403, 'auth.forbidden');
    expectProblem(
      await issue((await signInSupport(harness.testApp)).authorization, consultation.id),
      403,
      'auth.forbidden',
    );
    expectProblem(
      await issue((await signInTelemedicineAdmin(harness.testApp)).authorization, consultation.id),
      403,
      'auth.forbidden',
    );
    expectProblem(await issue(undefined, consultation.id), 401, 'auth.unauthenticated');
    expect(await storedRows(consultation.id)).toEqual([]);
  });

  it('refuses malformed bodies with 400', async () => {
    const consultation = await consultationInProgress();
    const { authorization } = consultation.doctor;
    const [item] = CONTENT.items;
    const bodies = [
      { ...CONTENT, items: [] },
      { ...CONTENT, items: Array.from({ length: 31 }, () => item) },
      { ...CONTENT, diagnosis: 'x'.repeat(2001) },
      { ...CONTENT, advice: 'x'.repeat(4001) },
      { ...CONTENT, items: [{ ...item, price: 3 }] },
      { ...CONTENT, items: [{ ...item, medicine: '' }] },
      { ...CONTENT, items: [{ ...item, medicine: 'two\nlines' }] },
      { ...CONTENT, signature: 'mine' },
    ];
    for (const body of bodies)
      expect((await issue(authorization, consultation.id, body)).statusCode).toBe(400);
    expect(await storedRows(consultation.id)).toEqual([]);
  });
});

describe('correcting a prescription', () => {
  it('issues version 2 superseding version 1, which is kept unchanged but for its status', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    const corrected = { ...CONTENT, diagnosis: 'Streptococcal pharyngitis' };
    const response = await correct(consultation.doctor.authorization, original.id, corrected);

    expect(response.statusCode, response.body).toBe(201);
    const correction = response.json<PrescriptionBody>();
    expect(correction).toMatchObject({
      version: 2,
      status: 'ISSUED',
      supersedes_id: original.id,
      diagnosis: 'Streptococcal pharyngitis',
    });
    const old = await getPrescription(consultation.doctor.authorization, original.id);
    expect(old.json()).toEqual({
      ...original,
      status: 'SUPERSEDED',
      superseded_by: correction.id,
      superseded_at: new Date(nowMs).toISOString(),
    });
  });

  it('refuses to correct a superseded version (telemedicine.prescription_superseded)', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    const second = await correct(consultation.doctor.authorization, original.id);
    expect(second.statusCode).toBe(201);
    expectProblem(
      await correct(consultation.doctor.authorization, original.id),
      409,
      'telemedicine.prescription_superseded',
    );
    // The current version can still be corrected.
    const third = await correct(consultation.doctor.authorization, second.json<PrescriptionBody>().id);
    expect(third.json()).toMatchObject({ version: 3 });
  });

  it('lets exactly one of 10 concurrent corrections succeed', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        correct(consultation.doctor.authorization, original.id, { ...CONTENT, advice: `Attempt ${index}` }),
      ),
    );
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    for (const response of responses.filter((candidate) => candidate.statusCode === 409)) {
      expect(response.json()).toMatchObject({ code: 'telemedicine.prescription_superseded' });
    }
    const rows = await storedRows(consultation.id);
    expect(rows.map((row) => [row.version, row.status, row.supersedes_id])).toEqual([
      [1, 'SUPERSEDED', null],
      [2, 'ISSUED', original.id],
    ]);
  });

  it('refuses every caller but the prescription’s doctor', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    const otherDoctor = await signInDoctor(harness.testApp, database());
    expectProblem(
      await correct(otherDoctor.authorization, original.id),
      404,
      'telemedicine.prescription_not_found',
    );
    expectProblem(await correct(consultation.patient.authorization, original.id), 403, 'auth.forbidden');
    expectProblem(await correct(undefined, original.id), 401, 'auth.unauthenticated');
    expectProblem(
      await correct(consultation.doctor.authorization, randomUUID()),
      404,
      'telemedicine.prescription_not_found',
    );
    expect(await storedRows(consultation.id)).toHaveLength(1);
  });

  it('offers no route to change or delete a prescription', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    for (const method of ['PUT', 'PATCH', 'DELETE'] as const) {
      const response = await harness.testApp.app.inject({
        method,
        url: `/telemedicine/prescriptions/${original.id}`,
        headers: { authorization: consultation.doctor.authorization },
        payload: CONTENT,
      });
      expect([404, 405]).toContain(response.statusCode);
    }
  });
});

describe('reading prescriptions', () => {
  it('shows a prescription to its patient and its doctor, auditing each read with its purpose', async () => {
    const consultation = await consultationInProgress();
    const prescription = await issued(consultation);
    for (const caller of [consultation.doctor, consultation.patient]) {
      const response = await getPrescription(caller.authorization, prescription.id);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toEqual(prescription);
    }
    const reads = (await clinicalAuditRows(database(), consultation.patient.account.id)).filter(
      (row) => row.action === 'telemedicine.prescription_viewed',
    );
    expect(reads.map((row) => [row.actor_id, row.changes.resource_id, row.changes.purpose])).toEqual([
      [consultation.doctor.account.id, prescription.id, 'treatment'],
      [consultation.patient.account.id, prescription.id, 'patient_access'],
    ]);
  });

  it('lists every version of a consultation’s prescription, oldest first', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    const correction = (
      await correct(consultation.doctor.authorization, original.id)
    ).json<PrescriptionBody>();
    const response = await listPrescriptions(consultation.patient.authorization, consultation.id);

    expect(response.statusCode, response.body).toBe(200);
    const { items } = response.json<{ items: PrescriptionBody[] }>();
    expect(items.map((item) => [item.id, item.status, item.superseded_by])).toEqual([
      [original.id, 'SUPERSEDED', correction.id],
      [correction.id, 'ISSUED', null],
    ]);
    const reads = (await clinicalAuditRows(database(), consultation.patient.account.id)).filter(
      (row) => row.action === 'telemedicine.prescription_viewed',
    );
    expect(reads.map((row) => row.changes.resource_id)).toEqual([original.id, correction.id]);
  });

  it('hides prescriptions from everyone else: 404 for other participants, 403 without the permission', async () => {
    const consultation = await consultationInProgress();
    const prescription = await issued(consultation);
    const otherPatient = await signInPatient(
      harness.testApp,
      database(),
      harness.testApp.security.fieldCrypto.encryption,
    );
    const otherDoctor = await signInDoctor(harness.testApp, database());
    for (const caller of [otherPatient, otherDoctor]) {
      expectProblem(
        await getPrescription(caller.authorization, prescription.id),
        404,
        'telemedicine.prescription_not_found',
      );
      expectProblem(
        await getPdf(caller.authorization, prescription.id),
        404,
        'telemedicine.prescription_not_found',
      );
      expectProblem(
        await listPrescriptions(caller.authorization, consultation.id),
        404,
        'telemedicine.consultation_not_found',
      );
    }
    // Support and admins have no telemedicine:read_prescriptions at all: clinical content is not theirs.
    for (const caller of [
      await signInSupport(harness.testApp),
      await signInTelemedicineAdmin(harness.testApp),
    ]) {
      expectProblem(await getPrescription(caller.authorization, prescription.id), 403, 'auth.forbidden');
      expectProblem(await getPdf(caller.authorization, prescription.id), 403, 'auth.forbidden');
      expectProblem(await listPrescriptions(caller.authorization, consultation.id), 403, 'auth.forbidden');
    }
    for (const response of [
      await getPrescription(undefined, prescription.id),
      await getPdf(undefined, prescription.id),
      await listPrescriptions(undefined, consultation.id),
    ]) {
      expectProblem(response, 401, 'auth.unauthenticated');
    }
    // Only the doctor's write is in the access log: no refused read was recorded.
    expect(await clinicalAuditRows(database(), consultation.patient.account.id)).toHaveLength(1);
  });

  it('prints the prescription as a PDF for its participants, auditing the read', async () => {
    const consultation = await consultationInProgress({ patientName: 'Ирина Петрова' });
    const issuedResponse = await issue(consultation.doctor.authorization, consultation.id, {
      ...CONTENT,
      diagnosis: 'Φαρυγγίτιδα (Łódź)',
      items: [{ ...CONTENT.items[0], medicine: 'Амоксициллин' }],
    });
    expect(issuedResponse.statusCode, issuedResponse.body).toBe(201);
    const prescription = issuedResponse.json<PrescriptionBody>();
    const response = await getPdf(consultation.patient.authorization, prescription.id);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('application/pdf');
    expect(response.headers['content-disposition']).toBe(
      `attachment; filename="prescription-${prescription.id}.pdf"`,
    );
    expect(response.rawPayload.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    // The decrypted name and the non-Latin content read back from the PDF as written.
    const { text } = await extractText(await getDocumentProxy(new Uint8Array(response.rawPayload)), {
      mergePages: true,
    });
    for (const expected of ['Patient: Ирина Петрова', 'Φαρυγγίτιδα (Łódź)', 'Амоксициллин']) {
      expect(text).toContain(expected);
    }
    const reads = (await clinicalAuditRows(database(), consultation.patient.account.id)).filter(
      (row) => row.action === 'telemedicine.prescription_viewed',
    );
    expect(reads.map((row) => [row.actor_id, row.changes.resource_id])).toEqual([
      [consultation.patient.account.id, prescription.id],
    ]);
    expect((await getPdf(consultation.doctor.authorization, prescription.id)).statusCode).toBe(200);
  });
});

describe('verifying a prescription', () => {
  it('confirms a valid prescription with issuer, date and status only', async () => {
    const consultation = await consultationInProgress();
    const prescription = await issued(consultation);
    const response = await verifyPrescription(prescription.id, prescription.signature);

    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      valid: true,
      issuer: { full_name: 'Dr Ada Lovelace', registration_number: `REG-${consultation.doctor.account.id}` },
      issued_at: prescription.issued_at,
      status: 'current',
    });
  });

  it('says superseded for a corrected version, current for its correction', async () => {
    const consultation = await consultationInProgress();
    const original = await issued(consultation);
    const correction = (
      await correct(consultation.doctor.authorization, original.id)
    ).json<PrescriptionBody>();
    expect((await verifyPrescription(original.id, original.signature)).json()).toMatchObject({
      valid: true,
      status: 'superseded',
    });
    expect((await verifyPrescription(correction.id, correction.signature)).json()).toMatchObject({
      valid: true,
      status: 'current',
    });
  });

  it('answers {valid: false} alike for an unknown id and a wrong signature', async () => {
    const consultation = await consultationInProgress();
    const prescription = await issued(consultation);
    const other = await issued(await consultationInProgress());
    for (const response of [
      await verifyPrescription(randomUUID(), prescription.signature),
      await verifyPrescription(prescription.id, other.signature),
      await verifyPrescription(prescription.id, 'AAAA'),
    ]) {
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toEqual({ valid: false });
    }
    expect((await verifyPrescription('not-a-uuid', prescription.signature)).statusCode).toBe(400);
  });

  it('answers {valid: false} once the stored digest, signature or content was altered', async () => {
    const digestCase = await issued(await consultationInProgress());
    await tamper(digestCase.id, 'document_digest', '0'.repeat(64));
    expect((await verifyPrescription(digestCase.id, digestCase.signature)).json()).toEqual({ valid: false });

    // Someone who can write the table swaps in a signature of their choosing and asks about it.
    const signatureCase = await issued(await consultationInProgress());
    const forged = `${signatureCase.signature.slice(0, -4)}AAAA`;
    await tamper(signatureCase.id, 'signature', forged);
    expect((await verifyPrescription(signatureCase.id, forged)).json()).toEqual({ valid: false });
    expect((await verifyPrescription(signatureCase.id, signatureCase.signature)).json()).toEqual({
      valid: false,
    });

    // Content moved from another prescription decrypts under neither AAD.
    const contentCase = await issued(await consultationInProgress());
    const donor = await issued(await consultationInProgress());
    const [donorRow] = await storedRows(donor.consultation_id);
    await tamper(contentCase.id, 'content', donorRow?.content ?? '');
    expect((await verifyPrescription(contentCase.id, contentCase.signature)).json()).toEqual({
      valid: false,
    });
  });

  it('keeps verifying what an earlier key signed once it is configured as retired, after a rotation', async () => {
    const prescription = await issued(await consultationInProgress());
    const published = await call(undefined, { method: 'GET', url: '/prescriptions/signing-keys' });
    const [oldJwk] = published.json<{ keys: { kid: string; x: string }[] }>().keys;
    if (oldJwk === undefined) throw new Error('no key published');
    const oldPublicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: oldJwk.x }, format: 'jwk' })
      .export({ type: 'spki', format: 'der' })
      .toString('base64');
    const newPrivateKey = generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'der' })
      .toString('base64');
    const rotatedApp = (env: Record<string, string>) =>
      buildTestApp({
        database: harness.testDb.database,
        databaseUrl: harness.testDb.url,
        modules: [telemedicineModule],
        clock,
        env: { RATE_LIMIT_ENABLED: 'false', TELEMEDICINE_PRESCRIPTION_SIGNING_KEY: newPrivateKey, ...env },
      });
    const verifyOn = (app: TestApp) =>
      app.app.inject({
        method: 'POST',
        url: '/telemedicine/prescriptions/verify',
        payload: { prescription_id: prescription.id, signature: prescription.signature },
      });

    // Rotated without naming the old key: its prescriptions no longer verify.
    const forgetful = await rotatedApp({});
    try {
      expect((await verifyOn(forgetful)).json()).toEqual({ valid: false });
    } finally {
      await forgetful.close();
    }

    const rotated = await rotatedApp({ TELEMEDICINE_PRESCRIPTION_RETIRED_PUBLIC_KEYS: ` ${oldPublicKey} ` });
    try {
      expect((await verifyOn(rotated)).json()).toMatchObject({ valid: true, status: 'current' });
      const keys = await rotated.app.inject({
        method: 'GET',
        url: '/telemedicine/prescriptions/signing-keys',
      });
      const kids = keys.json<{ keys: { kid: string }[] }>().keys.map((key) => key.kid);
      expect(kids).toHaveLength(2);
      expect(kids[0]).not.toBe(oldJwk.kid);
      expect(kids[1]).toBe(oldJwk.kid);
    } finally {
      await rotated.close();
    }
  });

  it('publishes the signing key as a JWK that verifies a prescription offline', async () => {
    const prescription = await issued(await consultationInProgress());
    const response = await call(undefined, { method: 'GET', url: '/prescriptions/signing-keys' });

    expect(response.statusCode, response.body).toBe(200);
    const { keys } = response.json<{ keys: { kid: string; kty: string; crv: string; x: string }[] }>();
    expect(keys).toEqual([{ kid: prescription.kid, kty: 'OKP', crv: 'Ed25519', x: expect.any(String) }]);
    const [jwk] = keys;
    if (jwk === undefined) throw new Error('no key published');
    const publicKey = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
    const signed = Buffer.from(canonicalJson(documentOf(prescription)), 'utf8');
    const signature = Buffer.from(prescription.signature, 'base64url');
    expect(verify(null, signed, publicKey, signature)).toBe(true);
    const altered = Buffer.from(
      canonicalJson({ ...documentOf(prescription), diagnosis: 'Something else' }),
      'utf8',
    );
    expect(verify(null, altered, publicKey, signature)).toBe(false);
  });
});
