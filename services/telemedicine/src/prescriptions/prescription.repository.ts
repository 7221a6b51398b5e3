import type { Kysely } from '@keel/platform/db';
import type { ConsultationStatus } from '../consultations/consultation.ts';
import type { TelemedicineSchema } from '../database.ts';
import type { PrescriptionStatus, StoredPrescription } from './prescription.ts';

type Db = Kysely<TelemedicineSchema>;

/** The consultation a prescription is written in, and the doctor's identity as printed on it. */
export type PrescribingContext = {
  consultationId: string;
  patientId: string;
  doctorId: string;
  status: ConsultationStatus;
  doctorFullName: string;
  registrationNumber: string;
};

export async function findPrescribingContext(
  db: Db,
  consultationId: string,
): Promise<PrescribingContext | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations as consultation')
    .innerJoin('telemedicine.doctors as doctor', 'doctor.id', 'consultation.doctor_id')
    .select([
      'consultation.id',
      'consultation.patient_id',
      'consultation.doctor_id',
      'consultation.status',
      'doctor.full_name',
      'doctor.registration_number',
    ])
    .where('consultation.id', '=', consultationId)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : {
        consultationId: row.id,
        patientId: row.patient_id,
        doctorId: row.doctor_id,
        status: row.status,
        doctorFullName: row.full_name,
        registrationNumber: row.registration_number,
      };
}

export async function findConsultationParties(
  db: Db,
  consultationId: string,
): Promise<{ id: string; patientId: string; doctorId: string } | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations')
    .select(['id', 'patient_id', 'doctor_id'])
    .where('id', '=', consultationId)
    .executeTakeFirst();
  return row === undefined ? undefined : { id: row.id, patientId: row.patient_id, doctorId: row.doctor_id };
}

export async function findDoctorIdentity(
  db: Db,
  doctorId: string,
): Promise<{ fullName: string; registrationNumber: string } | undefined> {
  const row = await db
    .selectFrom('telemedicine.doctors')
    .select(['full_name', 'registration_number'])
    .where('id', '=', doctorId)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : { fullName: row.full_name, registrationNumber: row.registration_number };
}

/** The patient's name as stored (encrypted), for the printed prescription. */
export async function findEncryptedPatientName(db: Db, patientId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('telemedicine.patients')
    .select('full_name')
    .where('id', '=', patientId)
    .executeTakeFirst();
  return row?.full_name;
}

function selectPrescriptions(db: Db) {
  return db
    .selectFrom('telemedicine.prescriptions as prescription')
    .leftJoin('telemedicine.prescriptions as successor', 'successor.supersedes_id', 'prescription.id')
    .select([
      'prescription.id',
      'prescription.consultation_id',
      'prescription.patient_id',
      'prescription.doctor_id',
      'prescription.version',
      'prescription.supersedes_id',
      'successor.id as superseded_by_id',
      'prescription.status',
      'prescription.content',
      'prescription.document_digest',
      'prescription.signature',
      'prescription.signing_key_id',
      'prescription.issued_at',
      'prescription.superseded_at',
    ]);
}

type PrescriptionRow = {
  id: string;
  consultation_id: string;
  patient_id: string;
  doctor_id: string;
  version: number;
  supersedes_id: string | null;
  superseded_by_id: string | null;
  status: PrescriptionStatus;
  content: string;
  document_digest: string;
  signature: string;
  signing_key_id: string;
  issued_at: Date;
  superseded_at: Date | null;
};

function toStoredPrescription(row: PrescriptionRow): StoredPrescription {
  return {
    id: row.id,
    consultationId: row.consultation_id,
    patientId: row.patient_id,
    doctorId: row.doctor_id,
    version: row.version,
    supersedesId: row.supersedes_id,
    supersededById: row.superseded_by_id,
    status: row.status,
    encryptedContent: row.content,
    documentDigest: row.document_digest,
    signature: row.signature,
    signingKeyId: row.signing_key_id,
    issuedAt: row.issued_at,
    supersededAt: row.superseded_at,
  };
}

export async function findPrescription(db: Db, id: string): Promise<StoredPrescription | undefined> {
  const row = await selectPrescriptions(db).where('prescription.id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toStoredPrescription(row);
}

/** Every version of the consultation's prescription, oldest first. */
export async function listPrescriptionsOfConsultation(
  db: Db,
  consultationId: string,
): Promise<StoredPrescription[]> {
  const rows = await selectPrescriptions(db)
    .where('prescription.consultation_id', '=', consultationId)
    .orderBy('prescription.version')
    .execute();
  return rows.map(toStoredPrescription);
}

export async function insertPrescription(
  db: Db,
  prescription: {
    id: string;
    consultationId: string;
    patientId: string;
    doctorId: string;
    version: number;
    supersedesId: string | null;
    encryptedContent: string;
    documentDigest: string;
    signature: string;
    signingKeyId: string;
    issuedAt: Date;
  },
): Promise<void> {
  await db
    .insertInto('telemedicine.prescriptions')
    .values({
      id: prescription.id,
      consultation_id: prescription.consultationId,
      patient_id: prescription.patientId,
      doctor_id: prescription.doctorId,
      version: prescription.version,
      supersedes_id: prescription.supersedesId,
      status: 'ISSUED',
      content: prescription.encryptedContent,
      document_digest: prescription.documentDigest,
      signature: prescription.signature,
      signing_key_id: prescription.signingKeyId,
      issued_at: prescription.issuedAt,
    })
    .execute();
}

/**
 * ISSUED → SUPERSEDED, only if it is still ISSUED: of several corrections of
 * one version the first to get here wins, the others find it superseded.
 * False when it was not ISSUED.
 */
export async function updatePrescriptionSuperseded(db: Db, id: string, at: Date): Promise<boolean> {
  const row = await db
    .updateTable('telemedicine.prescriptions')
    .set({ status: 'SUPERSEDED', superseded_at: at })
    .where('id', '=', id)
    .where('status', '=', 'ISSUED')
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}
