import type { Kysely, Selectable } from '@keel/platform/db';
import type { ConsultationStatus } from '../consultations/consultation.ts';
import type { ConsultationsTable, TelemedicineSchema } from '../database.ts';
import { type ConsultationRecord, NOTES_WRITABLE_STATUSES } from './clinical.ts';

// The clinical feature's reads and writes of telemedicine.consultations: the
// lifecycle columns and the clinical notes. Booking owns the rest of the row.

type Db = Kysely<TelemedicineSchema>;

const RECORD_COLUMNS = [
  'id',
  'patient_id',
  'doctor_id',
  'slot_id',
  'status',
  'starts_at',
  'ends_at',
  'fee_minor',
  'currency',
  'specialty',
  'started_at',
  'completed_at',
  'version',
  'updated_at',
] as const;

type RecordRow = Pick<Selectable<ConsultationsTable>, (typeof RECORD_COLUMNS)[number]>;

function toConsultationRecord(row: RecordRow): ConsultationRecord {
  return {
    id: row.id,
    patientId: row.patient_id,
    doctorId: row.doctor_id,
    slotId: row.slot_id,
    status: row.status,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    feeMinor: Number(row.fee_minor),
    currency: row.currency,
    specialty: row.specialty,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    version: row.version,
    updatedAt: row.updated_at,
  };
}

export async function findConsultationRecord(db: Db, id: string): Promise<ConsultationRecord | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations')
    .select(RECORD_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/**
 * Moves the consultation from `from` to `to` if it is still at `from` and at
 * `expectedVersion`: the one statement that decides between racing changes.
 * Undefined when it was not (someone else changed it first).
 */
export async function updateConsultationStatus(
  db: Db,
  change: { id: string; from: ConsultationStatus; to: ConsultationStatus; expectedVersion: number; at: Date },
): Promise<ConsultationRecord | undefined> {
  const row = await db
    .updateTable('telemedicine.consultations')
    .set((eb) => ({
      status: change.to,
      version: eb('version', '+', 1),
      updated_at: change.at,
      ...(change.to === 'IN_PROGRESS' ? { started_at: change.at } : {}),
      ...(change.to === 'COMPLETED' ? { completed_at: change.at } : {}),
    }))
    .where('id', '=', change.id)
    .where('status', '=', change.from)
    .where('version', '=', change.expectedVersion)
    .returning(RECORD_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** The encrypted notes, with the parties and status that decide who may read or write them. */
export type StoredNotes = {
  consultationId: string;
  patientId: string;
  doctorId: string;
  status: ConsultationStatus;
  encryptedNotes: string | null;
  version: number;
  updatedAt: Date;
};

export async function findStoredNotes(db: Db, id: string): Promise<StoredNotes | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations')
    .select(['id', 'patient_id', 'doctor_id', 'status', 'clinical_notes', 'version', 'updated_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : {
        consultationId: row.id,
        patientId: row.patient_id,
        doctorId: row.doctor_id,
        status: row.status,
        encryptedNotes: row.clinical_notes,
        version: row.version,
        updatedAt: row.updated_at,
      };
}

/**
 * Replaces the notes while the consultation is in a writable state (and, when
 * given, still at `expectedVersion`). Undefined when the condition failed.
 */
export async function updateClinicalNotes(
  db: Db,
  change: { id: string; encryptedNotes: string; expectedVersion: number | undefined; at: Date },
): Promise<{ version: number; updatedAt: Date } | undefined> {
  let query = db
    .updateTable('telemedicine.consultations')
    .set((eb) => ({
      clinical_notes: change.encryptedNotes,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where('status', 'in', NOTES_WRITABLE_STATUSES);
  if (change.expectedVersion !== undefined) query = query.where('version', '=', change.expectedVersion);
  const row = await query.returning(['version', 'updated_at']).executeTakeFirst();
  return row === undefined ? undefined : { version: row.version, updatedAt: row.updated_at };
}

/** What a reminder re-checks before it is sent: still booked, at the same time. */
export async function findReminderTarget(
  db: Db,
  id: string,
): Promise<{ patientId: string; doctorId: string; status: ConsultationStatus; startsAt: Date } | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations')
    .select(['patient_id', 'doctor_id', 'status', 'starts_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : { patientId: row.patient_id, doctorId: row.doctor_id, status: row.status, startsAt: row.starts_at };
}
