import type { TelemedicineDb } from '../database.ts';
import type { SealedPatientFields, Sex, StoredPatient } from './patient.ts';

const PATIENT_COLUMNS = [
  'id',
  'full_name',
  'date_of_birth',
  'sex',
  'phone',
  'emergency_contact',
  'allergies',
  'version',
  'created_at',
  'updated_at',
] as const;

type PatientRow = {
  id: string;
  full_name: string;
  date_of_birth: string;
  sex: Sex;
  phone: string | null;
  emergency_contact: string | null;
  allergies: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
};

function toStoredPatient(row: PatientRow): StoredPatient {
  return {
    id: row.id,
    full_name: row.full_name,
    date_of_birth: row.date_of_birth,
    sex: row.sex,
    phone: row.phone,
    emergency_contact: row.emergency_contact,
    allergies: row.allergies,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function findPatientById(db: TelemedicineDb, id: string): Promise<StoredPatient | undefined> {
  const row = await db
    .selectFrom('telemedicine.patients')
    .select(PATIENT_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toStoredPatient(row);
}

/** The profile row, locked until the transaction ends (replacing a profile reads its version first). */
export async function lockPatient(trx: TelemedicineDb, id: string): Promise<StoredPatient | undefined> {
  const row = await trx
    .selectFrom('telemedicine.patients')
    .select(PATIENT_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toStoredPatient(row);
}

export type PatientWrite = { id: string; sex: Sex; fields: SealedPatientFields; now: Date };

/** Inserts version 1; undefined when a concurrent request created the profile first. */
export async function insertPatient(
  trx: TelemedicineDb,
  write: PatientWrite,
): Promise<StoredPatient | undefined> {
  const row = await trx
    .insertInto('telemedicine.patients')
    .values({
      id: write.id,
      ...write.fields,
      sex: write.sex,
      version: 1,
      created_at: write.now,
      updated_at: write.now,
    })
    .onConflict((conflict) => conflict.column('id').doNothing())
    .returning(PATIENT_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toStoredPatient(row);
}

/** Replaces the profile if it is still at `expectedVersion`; undefined otherwise. */
export async function updatePatient(
  trx: TelemedicineDb,
  write: PatientWrite & { expectedVersion: number },
): Promise<StoredPatient | undefined> {
  const row = await trx
    .updateTable('telemedicine.patients')
    .set((eb) => ({
      ...write.fields,
      sex: write.sex,
      version: eb('version', '+', 1),
      updated_at: write.now,
    }))
    .where('id', '=', write.id)
    .where('version', '=', write.expectedVersion)
    .returning(PATIENT_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toStoredPatient(row);
}

/**
 * A consultation that makes `doctorId` this patient's treating doctor: one
 * that is booked and paid, running or done (not pending payment, cancelled,
 * expired or missed).
 */
export async function findTreatingConsultationId(
  db: TelemedicineDb,
  relation: { doctorId: string; patientId: string },
): Promise<string | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations')
    .select('id')
    .where('doctor_id', '=', relation.doctorId)
    .where('patient_id', '=', relation.patientId)
    .where('status', 'in', ['SCHEDULED', 'IN_PROGRESS', 'COMPLETED'])
    .orderBy('starts_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.id;
}
