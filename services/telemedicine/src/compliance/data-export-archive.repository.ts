import type { TelemedicineDb } from '../database.ts';
import type { Consent } from './compliance.ts';
import type {
  ConsultationRecord,
  PatientRecord,
  PaymentRecord,
  PrescriptionRecord,
  RefundRecord,
  ReviewRecord,
} from './data-export-archive.ts';

// What the export job reads: every row held about one patient, oldest
// first, encrypted columns still encrypted (the archive assembly decrypts).

export async function findAllConsents(db: TelemedicineDb, patientId: string): Promise<Consent[]> {
  const rows = await db
    .selectFrom('telemedicine.consents')
    .select(['id', 'consultation_id', 'kind', 'version', 'given_at'])
    .where('patient_id', '=', patientId)
    .orderBy('given_at')
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    consultationId: row.consultation_id,
    kind: row.kind,
    version: row.version,
    givenAt: row.given_at,
  }));
}

export async function findPatientRecord(
  db: TelemedicineDb,
  patientId: string,
): Promise<PatientRecord | undefined> {
  const row = await db
    .selectFrom('telemedicine.patients')
    .select([
      'id',
      'full_name',
      'date_of_birth',
      'sex',
      'phone',
      'emergency_contact',
      'allergies',
      'created_at',
      'updated_at',
    ])
    .where('id', '=', patientId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    id: row.id,
    fullNameEncrypted: row.full_name,
    dateOfBirthEncrypted: row.date_of_birth,
    sex: row.sex,
    phoneEncrypted: row.phone,
    emergencyContactEncrypted: row.emergency_contact,
    allergiesEncrypted: row.allergies,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function findConsultationRecords(
  db: TelemedicineDb,
  patientId: string,
): Promise<ConsultationRecord[]> {
  const rows = await db
    .selectFrom('telemedicine.consultations as c')
    .leftJoin('telemedicine.doctors as d', 'd.id', 'c.doctor_id')
    .select([
      'c.id',
      'c.doctor_id',
      'd.full_name as doctor_name',
      'c.status',
      'c.starts_at',
      'c.ends_at',
      'c.specialty',
      'c.fee_minor',
      'c.currency',
      'c.reason',
      'c.clinical_notes',
      'c.consent_version',
      'c.consented_at',
      'c.started_at',
      'c.completed_at',
      'c.cancelled_at',
      'c.cancelled_by',
      'c.cancel_reason',
      'c.expired_reason',
      'c.created_at',
    ])
    .where('c.patient_id', '=', patientId)
    .orderBy('c.starts_at')
    .orderBy('c.id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    doctorId: row.doctor_id,
    doctorName: row.doctor_name,
    status: row.status,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    specialty: row.specialty,
    feeMinor: Number(row.fee_minor),
    currency: row.currency,
    reasonEncrypted: row.reason,
    clinicalNotesEncrypted: row.clinical_notes,
    consentVersion: row.consent_version,
    consentedAt: row.consented_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    cancelledAt: row.cancelled_at,
    cancelledBy: row.cancelled_by,
    cancelReason: row.cancel_reason,
    expiredReason: row.expired_reason,
    createdAt: row.created_at,
  }));
}

export async function findPrescriptionRecords(
  db: TelemedicineDb,
  patientId: string,
): Promise<PrescriptionRecord[]> {
  const rows = await db
    .selectFrom('telemedicine.prescriptions')
    .select([
      'id',
      'consultation_id',
      'doctor_id',
      'version',
      'supersedes_id',
      'status',
      'content',
      'document_digest',
      'signature',
      'signing_key_id',
      'issued_at',
      'superseded_at',
    ])
    .where('patient_id', '=', patientId)
    .orderBy('issued_at')
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    consultationId: row.consultation_id,
    doctorId: row.doctor_id,
    version: row.version,
    supersedesId: row.supersedes_id,
    status: row.status,
    contentEncrypted: row.content,
    documentDigest: row.document_digest,
    signature: row.signature,
    signingKeyId: row.signing_key_id,
    issuedAt: row.issued_at,
    supersededAt: row.superseded_at,
  }));
}

export async function findPaymentRecords(db: TelemedicineDb, patientId: string): Promise<PaymentRecord[]> {
  const rows = await db
    .selectFrom('telemedicine.payments')
    .select([
      'id',
      'consultation_id',
      'provider',
      'amount_minor',
      'currency',
      'status',
      'refunded_minor',
      'failure_code',
      'created_at',
      'updated_at',
    ])
    .where('patient_id', '=', patientId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    consultationId: row.consultation_id,
    provider: row.provider,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
    status: row.status,
    refundedMinor: Number(row.refunded_minor),
    failureCode: row.failure_code,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }));
}

export async function findRefundRecords(db: TelemedicineDb, patientId: string): Promise<RefundRecord[]> {
  const rows = await db
    .selectFrom('telemedicine.refunds as r')
    .innerJoin('telemedicine.payments as p', 'p.id', 'r.payment_id')
    .select(['r.id', 'r.payment_id', 'r.amount_minor', 'r.reason', 'r.status', 'r.created_at'])
    .where('p.patient_id', '=', patientId)
    .orderBy('r.created_at')
    .orderBy('r.id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    paymentId: row.payment_id,
    amountMinor: Number(row.amount_minor),
    reason: row.reason,
    status: row.status,
    createdAt: row.created_at,
  }));
}

export async function findReviewRecords(db: TelemedicineDb, patientId: string): Promise<ReviewRecord[]> {
  const rows = await db
    .selectFrom('telemedicine.reviews')
    .select(['consultation_id', 'doctor_id', 'rating', 'comment', 'created_at'])
    .where('patient_id', '=', patientId)
    .orderBy('created_at')
    .orderBy('consultation_id')
    .execute();
  return rows.map((row) => ({
    consultationId: row.consultation_id,
    doctorId: row.doctor_id,
    rating: row.rating,
    comment: row.comment,
    createdAt: row.created_at,
  }));
}
