import { sql } from '@keel/platform/db';
import type { DoctorStatus, TelemedicineDb } from '../database.ts';
import type { Doctor, DoctorProfileInput, KeysetCursor } from './doctor.ts';

const DOCTOR_COLUMNS = [
  'id',
  'full_name',
  'specialties',
  'languages',
  'qualifications',
  'registration_number',
  'years_of_experience',
  'fee_minor',
  'currency',
  'bio',
  'time_zone',
  'status',
  'verified_at',
  'verified_by',
  'rating',
  'rating_count',
  'next_available_at',
  'version',
  'created_at',
  'updated_at',
] as const;

type DoctorRow = {
  id: string;
  full_name: string;
  specialties: string[];
  languages: string[];
  qualifications: string[];
  registration_number: string;
  years_of_experience: number;
  fee_minor: string;
  currency: string;
  bio: string;
  time_zone: string;
  status: DoctorStatus;
  verified_at: Date | null;
  verified_by: string | null;
  rating: string | null;
  rating_count: number;
  next_available_at: Date | null;
  version: number;
  created_at: Date;
  updated_at: Date;
};

export function toDoctor(row: DoctorRow): Doctor {
  return {
    id: row.id,
    fullName: row.full_name,
    specialties: row.specialties,
    languages: row.languages,
    qualifications: row.qualifications,
    registrationNumber: row.registration_number,
    yearsOfExperience: row.years_of_experience,
    feeMinor: Number(row.fee_minor),
    currency: row.currency,
    bio: row.bio,
    timeZone: row.time_zone,
    status: row.status,
    verifiedAt: row.verified_at,
    verifiedBy: row.verified_by,
    rating: row.rating === null ? null : Number(row.rating),
    ratingCount: row.rating_count,
    nextAvailableAt: row.next_available_at,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function findDoctorById(db: TelemedicineDb, id: string): Promise<Doctor | undefined> {
  const row = await db
    .selectFrom('telemedicine.doctors')
    .select(DOCTOR_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toDoctor(row);
}

/** The doctor row, locked until the transaction ends. */
export async function lockDoctor(trx: TelemedicineDb, id: string): Promise<Doctor | undefined> {
  const row = await trx
    .selectFrom('telemedicine.doctors')
    .select(DOCTOR_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toDoctor(row);
}

/** The id of the doctor holding a registration number, if any. */
export async function findDoctorIdByRegistrationNumber(
  db: TelemedicineDb,
  registrationNumber: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('telemedicine.doctors')
    .select('id')
    .where('registration_number', '=', registrationNumber)
    .executeTakeFirst();
  return row?.id;
}

function profileColumns(input: DoctorProfileInput) {
  return {
    full_name: input.fullName,
    specialties: input.specialties,
    languages: input.languages,
    qualifications: input.qualifications,
    registration_number: input.registrationNumber,
    years_of_experience: input.yearsOfExperience,
    fee_minor: input.feeMinor,
    currency: input.currency,
    bio: input.bio,
    time_zone: input.timeZone,
  };
}

/** Inserts a PENDING profile at version 1; undefined when a concurrent request created it first. */
export async function insertDoctor(
  trx: TelemedicineDb,
  doctor: { id: string; input: DoctorProfileInput; now: Date },
): Promise<Doctor | undefined> {
  const row = await trx
    .insertInto('telemedicine.doctors')
    .values({
      id: doctor.id,
      ...profileColumns(doctor.input),
      status: 'PENDING',
      verified_at: null,
      verified_by: null,
      version: 1,
      created_at: doctor.now,
      updated_at: doctor.now,
    })
    .onConflict((conflict) => conflict.column('id').doNothing())
    .returning(DOCTOR_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toDoctor(row);
}

/**
 * Replaces the profile fields if the row is still at `expectedVersion`.
 * `status` PENDING from VERIFIED clears the verification with it.
 */
export async function updateDoctorProfile(
  trx: TelemedicineDb,
  change: {
    id: string;
    expectedVersion: number;
    input: DoctorProfileInput;
    status: DoctorStatus;
    isVerificationCleared: boolean;
    now: Date;
  },
): Promise<Doctor | undefined> {
  const row = await trx
    .updateTable('telemedicine.doctors')
    .set((eb) => ({
      ...profileColumns(change.input),
      status: change.status,
      ...(change.isVerificationCleared ? { verified_at: null, verified_by: null } : {}),
      version: eb('version', '+', 1),
      updated_at: change.now,
    }))
    .where('id', '=', change.id)
    .where('version', '=', change.expectedVersion)
    .returning(DOCTOR_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toDoctor(row);
}

/**
 * Moves the doctor from `from` to `to` if nobody moved them meanwhile; a
 * verification stamps who and when. Undefined when the row was not in `from`.
 */
export async function updateDoctorStatus(
  trx: TelemedicineDb,
  change: {
    id: string;
    from: DoctorStatus;
    to: DoctorStatus;
    verification: { at: Date; by: string } | null;
    now: Date;
  },
): Promise<Doctor | undefined> {
  const row = await trx
    .updateTable('telemedicine.doctors')
    .set((eb) => ({
      status: change.to,
      ...(change.verification === null
        ? {}
        : { verified_at: change.verification.at, verified_by: change.verification.by }),
      version: eb('version', '+', 1),
      updated_at: change.now,
    }))
    .where('id', '=', change.id)
    .where('status', '=', change.from)
    .returning(DOCTOR_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toDoctor(row);
}

export type DoctorListRow = { doctor: Doctor; cursor: KeysetCursor };

/** Oldest first (a verification queue), keyset-paginated on (created_at, id). */
export async function listDoctors(
  db: TelemedicineDb,
  filter: { status?: DoctorStatus; after?: KeysetCursor; limit: number },
): Promise<DoctorListRow[]> {
  let query = db
    .selectFrom('telemedicine.doctors')
    .select(DOCTOR_COLUMNS)
    .select(
      sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
        'cursor_created_at',
      ),
    );
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.after !== undefined) {
    const { at, id } = filter.after;
    query = query.where(sql<boolean>`(created_at, id) > (${at}::timestamptz, ${id}::uuid)`);
  }
  const rows = await query.orderBy('created_at', 'asc').orderBy('id', 'asc').limit(filter.limit).execute();
  return rows.map((row) => ({ doctor: toDoctor(row), cursor: { at: row.cursor_created_at, id: row.id } }));
}
