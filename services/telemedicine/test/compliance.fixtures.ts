import { randomUUID } from 'node:crypto';
import type { FieldEncryption } from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import { type ClinicalAccess, recordClinicalAccess } from '../src/compliance/clinical-access.ts';
import type { TelemedicineSchema } from '../src/database.ts';
import { fieldAad } from '../src/encrypted-columns.ts';
import { insertSlots } from './fixtures.ts';

// A patient's record written straight to the tables (as the booking, clinical,
// payments, prescriptions and reviews features write it), for the access log
// and data export tests: they test what the compliance feature reads, not
// how the other features get there.

function typed(database: Database) {
  return database.typed<TelemedicineSchema>();
}

/** A principal as the access hook builds it, for audit rows written outside a request. */
export function buildPrincipal(id: string, roles: string[]): Principal {
  // Only id, kind and roles reach the audit row.
  return { id, kind: 'user', roles, permissions: new Set(), isMfaAuthenticated: false };
}

/** Audits one access to a patient's record, as the features do inside their transactions. */
export async function recordAccess(
  database: Database,
  access: Omit<ClinicalAccess, 'occurredAt'> & { occurredAt?: Date },
): Promise<void> {
  await typed(database).transaction((trx) =>
    recordClinicalAccess(trx, { ...access, occurredAt: access.occurredAt ?? new Date() }),
  );
}

export type ConsultationSpec = {
  patientId: string;
  doctorId: string;
  status?: 'SCHEDULED' | 'COMPLETED' | 'CANCELLED';
  reason?: string | null;
  clinicalNotes?: string | null;
  startsAt?: Date;
  feeMinor?: number;
  currency?: string;
  specialty?: string;
  /** Stored as is instead of encrypting `reason` (a value that will not decrypt). */
  rawReason?: string;
};

let slotsTaken = 0;

/** A consultation on a fresh slot of the doctor, with its two consents. Returns its id. */
export async function insertConsultation(
  database: Database,
  encryption: FieldEncryption,
  spec: ConsultationSpec,
): Promise<string> {
  slotsTaken += 1;
  // An hour apart: a doctor's slots must not overlap (slots_no_overlap).
  const startsAt = spec.startsAt ?? new Date(Date.UTC(2030, 0, 1, 9) + slotsTaken * 3_600_000);
  const [slotId] = await insertSlots(database, spec.doctorId, { startsAt, count: 1, minutes: 30 });
  const id = randomUUID();
  const table = 'telemedicine.consultations';
  const reason = spec.reason === undefined ? 'Persistent headache' : spec.reason;
  const clinicalNotes = spec.clinicalNotes === undefined ? null : spec.clinicalNotes;
  const consentedAt = new Date(startsAt.getTime() - 86_400_000);
  await typed(database).transaction(async (trx) => {
    await trx
      .insertInto(table)
      .values({
        id,
        patient_id: spec.patientId,
        doctor_id: spec.doctorId,
        slot_id: slotId ?? '',
        status: spec.status ?? 'COMPLETED',
        starts_at: startsAt,
        ends_at: new Date(startsAt.getTime() + 30 * 60_000),
        hold_expires_at: null,
        fee_minor: spec.feeMinor ?? 5000,
        currency: spec.currency ?? 'EUR',
        specialty: spec.specialty ?? 'general practice',
        reason:
          spec.rawReason ??
          (reason === null ? null : encryption.encrypt(reason, fieldAad(table, 'reason', id))),
        clinical_notes:
          clinicalNotes === null
            ? null
            : encryption.encrypt(clinicalNotes, fieldAad(table, 'clinical_notes', id)),
        consent_version: '2030-01',
        consented_at: consentedAt,
      })
      .execute();
    await trx
      .insertInto('telemedicine.consents')
      .values(
        (['treatment', 'telehealth'] as const).map((kind, index) => ({
          id: randomUUID(),
          patient_id: spec.patientId,
          consultation_id: id,
          kind,
          version: '2030-01',
          given_at: new Date(consentedAt.getTime() + index),
        })),
      )
      .execute();
  });
  return id;
}

/** A succeeded payment for the consultation, refunded `refundMinor` if given. Returns the payment id. */
export async function insertPayment(
  database: Database,
  payment: { consultationId: string; patientId: string; amountMinor: number; refundMinor?: number },
): Promise<string> {
  const id = randomUUID();
  await typed(database).transaction(async (trx) => {
    await trx
      .insertInto('telemedicine.payments')
      .values({
        id,
        consultation_id: payment.consultationId,
        patient_id: payment.patientId,
        provider: 'fake',
        provider_intent_id: `pi_${id}`,
        client_secret: `pi_${id}_secret_do_not_export`,
        amount_minor: payment.amountMinor,
        currency: 'EUR',
        status: payment.refundMinor === undefined ? 'SUCCEEDED' : 'PARTIALLY_REFUNDED',
        refunded_minor: payment.refundMinor ?? 0,
      })
      .execute();
    if (payment.refundMinor !== undefined) {
      await trx
        .insertInto('telemedicine.refunds')
        .values({
          id: randomUUID(),
          payment_id: id,
          amount_minor: payment.refundMinor,
          reason: 'admin',
          status: 'SUCCEEDED',
          provider_refund_id: `re_${id}`,
        })
        .execute();
    }
  });
  return id;
}

/** An issued prescription whose (encrypted) content is `document`. Returns its id. */
export async function insertPrescription(
  database: Database,
  encryption: FieldEncryption,
  prescription: { consultationId: string; patientId: string; doctorId: string; document: object },
): Promise<string> {
  const id = randomUUID();
  await typed(database).run((db) =>
    db
      .insertInto('telemedicine.prescriptions')
      .values({
        id,
        consultation_id: prescription.consultationId,
        patient_id: prescription.patientId,
        doctor_id: prescription.doctorId,
        version: 1,
        status: 'ISSUED',
        content: encryption.encrypt(
          JSON.stringify(prescription.document),
          fieldAad('telemedicine.prescriptions', 'content', id),
        ),
        document_digest: 'sha256:test',
        signature: 'ed25519:test-signature',
        signing_key_id: 'test-key',
        issued_at: new Date(),
      })
      .execute(),
  );
  return id;
}

export async function insertReview(
  database: Database,
  review: { consultationId: string; patientId: string; doctorId: string; rating: number; comment: string },
): Promise<void> {
  await typed(database).run((db) =>
    db
      .insertInto('telemedicine.reviews')
      .values({
        consultation_id: review.consultationId,
        patient_id: review.patientId,
        doctor_id: review.doctorId,
        rating: review.rating,
        comment: review.comment,
      })
      .execute(),
  );
}

/** A PENDING export row with no job behind it: it stays PENDING whatever the job workers do. */
export async function insertPendingExport(database: Database, patientId: string): Promise<string> {
  const id = randomUUID();
  await typed(database).run((db) =>
    db
      .insertInto('telemedicine.data_exports')
      .values({ id, patient_id: patientId, status: 'PENDING', requested_at: new Date() })
      .execute(),
  );
  return id;
}
