import { type Insertable, type Selectable, sql } from '@keel/platform/db';
import type {
  CancelledBy,
  ConsultationStatusColumn,
  ConsultationsTable,
  TelemedicineDb,
} from '../database.ts';
import type { ConsultationCursor, ConsultationRecord, ConsultationStatus } from './consultation.ts';

const TABLE = 'telemedicine.consultations';

// Every column but clinical_notes, which belongs to the clinical feature and
// is never read on the booking path.
const COLUMNS = [
  'id',
  'patient_id',
  'doctor_id',
  'slot_id',
  'status',
  'starts_at',
  'ends_at',
  'hold_expires_at',
  'fee_minor',
  'currency',
  'specialty',
  'reason',
  'consent_version',
  'consented_at',
  'rescheduled_from_slot_id',
  'started_at',
  'completed_at',
  'cancelled_at',
  'cancelled_by',
  'cancel_reason',
  'expired_reason',
  'version',
  'created_at',
  'updated_at',
] as const;

type ConsultationRow = Pick<Selectable<ConsultationsTable>, (typeof COLUMNS)[number]>;

function toConsultationRecord(row: ConsultationRow): ConsultationRecord {
  return {
    id: row.id,
    patientId: row.patient_id,
    doctorId: row.doctor_id,
    slotId: row.slot_id,
    status: row.status,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    holdExpiresAt: row.hold_expires_at,
    feeMinor: Number(row.fee_minor),
    currency: row.currency,
    specialty: row.specialty,
    encryptedReason: row.reason,
    consentVersion: row.consent_version,
    consentedAt: row.consented_at,
    rescheduledFromSlotId: row.rescheduled_from_slot_id,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    cancelledAt: row.cancelled_at,
    cancelledBy: row.cancelled_by,
    cancelReason: row.cancel_reason,
    expiredReason: row.expired_reason,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function findConsultationById(
  db: TelemedicineDb,
  id: string,
): Promise<ConsultationRecord | undefined> {
  const row = await db.selectFrom(TABLE).select(COLUMNS).where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** The consultation, row-locked until the transaction ends. Every writer locks the consultation before its slot. */
export async function lockConsultation(
  trx: TelemedicineDb,
  id: string,
): Promise<ConsultationRecord | undefined> {
  const row = await trx.selectFrom(TABLE).select(COLUMNS).where('id', '=', id).forUpdate().executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** The consultation holding the slot (the partial unique index allows at most one). */
export async function findLiveConsultationOnSlot(
  db: TelemedicineDb,
  slotId: string,
): Promise<ConsultationRecord | undefined> {
  const row = await db
    .selectFrom(TABLE)
    .select(COLUMNS)
    .where('slot_id', '=', slotId)
    .where('status', 'in', ['PENDING_PAYMENT', 'SCHEDULED', 'IN_PROGRESS', 'COMPLETED', 'NO_SHOW'])
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** The row that stores a new consultation (the booking inserts it with its payment and consents). */
export function toConsultationInsert(record: ConsultationRecord) {
  return {
    id: record.id,
    patient_id: record.patientId,
    doctor_id: record.doctorId,
    slot_id: record.slotId,
    status: record.status,
    starts_at: record.startsAt,
    ends_at: record.endsAt,
    hold_expires_at: record.holdExpiresAt,
    fee_minor: record.feeMinor,
    currency: record.currency,
    specialty: record.specialty,
    reason: record.encryptedReason,
    consent_version: record.consentVersion,
    consented_at: record.consentedAt,
    version: record.version,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  } satisfies Insertable<ConsultationsTable>;
}

/** PENDING_PAYMENT → SCHEDULED: paid, the hold becomes a booking. Undefined if it was no longer pending. */
export async function updateConsultationScheduled(
  trx: TelemedicineDb,
  change: { id: string; at: Date },
): Promise<ConsultationRecord | undefined> {
  const row = await trx
    .updateTable(TABLE)
    .set((eb) => ({
      status: 'SCHEDULED',
      hold_expires_at: null,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where('status', '=', 'PENDING_PAYMENT')
    .returning(COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** PENDING_PAYMENT → EXPIRED. Undefined if it was no longer pending. */
export async function updateConsultationExpired(
  trx: TelemedicineDb,
  change: { id: string; reason: 'payment_failed' | 'hold_expired'; at: Date },
): Promise<ConsultationRecord | undefined> {
  const row = await trx
    .updateTable(TABLE)
    .set((eb) => ({
      status: 'EXPIRED',
      hold_expires_at: null,
      expired_reason: change.reason,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where('status', '=', 'PENDING_PAYMENT')
    .returning(COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/**
 * Cancels the consultation if it is still in `from` at `version`: of
 * concurrent cancellations exactly one matches, the others get undefined.
 */
export async function updateConsultationCancelled(
  trx: TelemedicineDb,
  change: {
    id: string;
    from: readonly ConsultationStatus[];
    version: number;
    by: CancelledBy;
    reason: string | null;
    at: Date;
  },
): Promise<ConsultationRecord | undefined> {
  const row = await trx
    .updateTable(TABLE)
    .set((eb) => ({
      status: 'CANCELLED',
      hold_expires_at: null,
      cancelled_at: change.at,
      cancelled_by: change.by,
      cancel_reason: change.reason,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where('status', 'in', change.from as ConsultationStatusColumn[])
    .where('version', '=', change.version)
    .returning(COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** Moves a SCHEDULED consultation to another slot. Undefined if it changed since `version`. */
export async function updateConsultationRescheduled(
  trx: TelemedicineDb,
  change: {
    id: string;
    version: number;
    fromSlotId: string;
    toSlot: { id: string; startsAt: Date; endsAt: Date };
    at: Date;
  },
): Promise<ConsultationRecord | undefined> {
  const row = await trx
    .updateTable(TABLE)
    .set((eb) => ({
      slot_id: change.toSlot.id,
      starts_at: change.toSlot.startsAt,
      ends_at: change.toSlot.endsAt,
      rescheduled_from_slot_id: change.fromSlotId,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where('status', '=', 'SCHEDULED')
    .where('slot_id', '=', change.fromSlotId)
    .where('version', '=', change.version)
    .returning(COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toConsultationRecord(row);
}

/** Ids of pending consultations whose hold ran out by `now`, oldest first (consultations_pending_idx). */
export async function findOverdueHolds(db: TelemedicineDb, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom(TABLE)
    .select('id')
    .where('status', '=', 'PENDING_PAYMENT')
    .where('hold_expires_at', '<=', now)
    .orderBy('hold_expires_at')
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

export type ConsultationListFilter = {
  /** A participant's scope: consultations where they are the patient or the doctor. */
  participantId?: string;
  statuses?: readonly ConsultationStatus[];
  startsFrom?: Date;
  startsBefore?: Date;
  after?: ConsultationCursor;
  limit: number;
};

export type ConsultationListRow = { consultation: ConsultationRecord; cursor: ConsultationCursor };

/** Newest start first, keyset-paginated on (starts_at, id). */
export async function listConsultations(
  db: TelemedicineDb,
  filter: ConsultationListFilter,
): Promise<ConsultationListRow[]> {
  let query = db
    .selectFrom(TABLE)
    .select(COLUMNS)
    .select(
      sql<string>`to_char(starts_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
        'cursor_starts_at',
      ),
    );
  const { participantId, statuses, startsFrom, startsBefore, after } = filter;
  if (participantId !== undefined) {
    // Two indexed arms (consultations_patient_idx, consultations_doctor_idx), OR-ed by the planner.
    query = query.where((eb) =>
      eb.or([eb('patient_id', '=', participantId), eb('doctor_id', '=', participantId)]),
    );
  }
  if (statuses !== undefined) query = query.where('status', 'in', statuses as ConsultationStatusColumn[]);
  if (startsFrom !== undefined) query = query.where('starts_at', '>=', startsFrom);
  if (startsBefore !== undefined) query = query.where('starts_at', '<', startsBefore);
  if (after !== undefined) {
    query = query.where(sql<boolean>`(starts_at, id) < (${after.startsAt}::timestamptz, ${after.id}::uuid)`);
  }
  const rows = await query.orderBy('starts_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
  return rows.map((row) => ({
    consultation: toConsultationRecord(row),
    cursor: { startsAt: row.cursor_starts_at, id: row.id },
  }));
}
