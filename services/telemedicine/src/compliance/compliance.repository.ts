import { sql } from '@keel/platform/db';
import type { TelemedicineDb } from '../database.ts';
import type { Consent, ConsentCursor, DataExport } from './compliance.ts';

// All SQL of the compliance feature. Every read is scoped to one patient id:
// the service passes the caller's own id, never one from the request.

/** A timestamptz as UTC text with microseconds: a JavaScript Date would repeat or skip rows sharing a millisecond. */
function utcText(column: string) {
  return sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

const DATA_EXPORT_COLUMNS = [
  'id',
  'patient_id',
  'status',
  'requested_at',
  'completed_at',
  'expires_at',
] as const;

type DataExportRow = {
  id: string;
  patient_id: string;
  status: DataExport['status'];
  requested_at: Date;
  completed_at: Date | null;
  expires_at: Date | null;
};

function toDataExport(row: DataExportRow): DataExport {
  return {
    id: row.id,
    patientId: row.patient_id,
    status: row.status,
    requestedAt: row.requested_at,
    completedAt: row.completed_at,
    expiresAt: row.expires_at,
  };
}

/**
 * Locks the patient's row for the rest of the transaction: export requests of
 * one patient queue here, which is what keeps them to one export at a time.
 * NO KEY UPDATE, so rows that merely reference the patient (a booking) are
 * not held up. False when the patient has no profile.
 */
export async function lockPatient(trx: TelemedicineDb, patientId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('telemedicine.patients')
    .select('id')
    .where('id', '=', patientId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The export a new request should answer with instead of starting another:
 * the pending one, or a READY one requested at or after `recentSince` whose
 * archive has not expired. A FAILED export never blocks a new request.
 */
export async function findReusableDataExport(
  db: TelemedicineDb,
  patientId: string,
  { now, recentSince }: { now: Date; recentSince: Date },
): Promise<DataExport | undefined> {
  const row = await db
    .selectFrom('telemedicine.data_exports')
    .select(DATA_EXPORT_COLUMNS)
    .where('patient_id', '=', patientId)
    .where((eb) =>
      eb.or([
        eb('status', '=', 'PENDING'),
        eb.and([
          eb('status', '=', 'READY'),
          eb('requested_at', '>=', recentSince),
          eb('expires_at', '>', now),
        ]),
      ]),
    )
    .orderBy('requested_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? undefined : toDataExport(row);
}

export async function insertDataExport(
  trx: TelemedicineDb,
  dataExport: { id: string; patientId: string; requestedAt: Date },
): Promise<DataExport> {
  const row = await trx
    .insertInto('telemedicine.data_exports')
    .values({
      id: dataExport.id,
      patient_id: dataExport.patientId,
      status: 'PENDING',
      requested_at: dataExport.requestedAt,
    })
    .returning(DATA_EXPORT_COLUMNS)
    .executeTakeFirstOrThrow();
  return toDataExport(row);
}

/** The export, only when it is `patientId`'s. */
export async function findDataExportOfPatient(
  db: TelemedicineDb,
  id: string,
  patientId: string,
): Promise<DataExport | undefined> {
  const row = await db
    .selectFrom('telemedicine.data_exports')
    .select(DATA_EXPORT_COLUMNS)
    .where('id', '=', id)
    .where('patient_id', '=', patientId)
    .executeTakeFirst();
  return row === undefined ? undefined : toDataExport(row);
}

/** The export with its (encrypted) archive, only when it is `patientId`'s. */
export async function findDataExportArchive(
  db: TelemedicineDb,
  id: string,
  patientId: string,
): Promise<{ dataExport: DataExport; archive: string | null } | undefined> {
  const row = await db
    .selectFrom('telemedicine.data_exports')
    .select([...DATA_EXPORT_COLUMNS, 'archive'])
    .where('id', '=', id)
    .where('patient_id', '=', patientId)
    .executeTakeFirst();
  return row === undefined ? undefined : { dataExport: toDataExport(row), archive: row.archive };
}

/** For the export job, which has no caller to scope by. */
export async function findDataExport(db: TelemedicineDb, id: string): Promise<DataExport | undefined> {
  const row = await db
    .selectFrom('telemedicine.data_exports')
    .select(DATA_EXPORT_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toDataExport(row);
}

/** PENDING → READY with its archive. False when it was no longer PENDING (another run finished it). */
export async function updateDataExportReady(
  trx: TelemedicineDb,
  id: string,
  ready: { archive: string; completedAt: Date; expiresAt: Date },
): Promise<boolean> {
  const result = await trx
    .updateTable('telemedicine.data_exports')
    .set({
      status: 'READY',
      archive: ready.archive,
      completed_at: ready.completedAt,
      expires_at: ready.expiresAt,
    })
    .where('id', '=', id)
    .where('status', '=', 'PENDING')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** PENDING → FAILED. A READY export stays READY (a late failure of its notification changes nothing). */
export async function updateDataExportFailed(
  db: TelemedicineDb,
  id: string,
  completedAt: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('telemedicine.data_exports')
    .set({ status: 'FAILED', completed_at: completedAt })
    .where('id', '=', id)
    .where('status', '=', 'PENDING')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Erases the archives of expired exports (the rows stay, so their status still reads EXPIRED). */
export async function deleteExpiredArchives(db: TelemedicineDb, now: Date): Promise<number> {
  const result = await db
    .updateTable('telemedicine.data_exports')
    .set({ archive: null })
    .where('status', '=', 'READY')
    .where('expires_at', '<=', now)
    .where('archive', 'is not', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

type ConsentRow = {
  id: string;
  consultation_id: string;
  kind: Consent['kind'];
  version: string;
  given_at: Date;
};

function toConsent(row: ConsentRow): Consent {
  return {
    id: row.id,
    consultationId: row.consultation_id,
    kind: row.kind,
    version: row.version,
    givenAt: row.given_at,
  };
}

/** Newest first, strictly after `after` in (given_at desc, id desc) order. */
export async function findConsentsPage(
  db: TelemedicineDb,
  patientId: string,
  after: ConsentCursor | undefined,
  limit: number,
): Promise<{ consent: Consent; cursor: ConsentCursor }[]> {
  let query = db
    .selectFrom('telemedicine.consents')
    .select(['id', 'consultation_id', 'kind', 'version', 'given_at', utcText('given_at').as('cursor_time')])
    .where('patient_id', '=', patientId);
  if (after !== undefined) {
    query = query.where(sql<boolean>`(given_at, id) < (${after.givenAt}::timestamptz, ${after.id}::uuid)`);
  }
  const rows = await query.orderBy('given_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({ consent: toConsent(row), cursor: { givenAt: row.cursor_time, id: row.id } }));
}
