import type { ConsultationStatus } from '@keel/contracts';
import { sql } from '@keel/platform/db';
import type { DoctorStatus, TelemedicineDb } from '../database.ts';
import type { KeysetCursor } from '../doctors/doctor.ts';
import type { PublishedReview, Review } from './review.ts';

export type ReviewedConsultation = {
  id: string;
  patientId: string;
  doctorId: string;
  status: ConsultationStatus;
};

export async function findConsultationForReview(
  db: TelemedicineDb,
  consultationId: string,
): Promise<ReviewedConsultation | undefined> {
  const row = await db
    .selectFrom('telemedicine.consultations')
    .select(['id', 'patient_id', 'doctor_id', 'status'])
    .where('id', '=', consultationId)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : { id: row.id, patientId: row.patient_id, doctorId: row.doctor_id, status: row.status };
}

export async function findReviewedConsultationId(
  db: TelemedicineDb,
  consultationId: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('telemedicine.reviews')
    .select('consultation_id')
    .where('consultation_id', '=', consultationId)
    .executeTakeFirst();
  return row?.consultation_id;
}

/** The primary key (one review per consultation) refuses a second one with 23505. */
export async function insertReview(trx: TelemedicineDb, review: Review): Promise<void> {
  await trx
    .insertInto('telemedicine.reviews')
    .values({
      consultation_id: review.consultationId,
      patient_id: review.patientId,
      doctor_id: review.doctorId,
      rating: review.rating,
      comment: review.comment,
      created_at: review.createdAt,
    })
    .execute();
}

/**
 * Adds one rating to the doctor's running sum and count (the average is a
 * generated column). Leaves `version` alone: it guards the doctor's own
 * profile edits, which a patient's review must not make stale.
 */
export async function updateDoctorRating(
  trx: TelemedicineDb,
  doctorId: string,
  rating: number,
): Promise<{ id: string; status: DoctorStatus }> {
  return trx
    .updateTable('telemedicine.doctors')
    .set((eb) => ({
      rating_sum: eb('rating_sum', '+', rating),
      rating_count: eb('rating_count', '+', 1),
    }))
    .where('id', '=', doctorId)
    .returning(['id', 'status'])
    .executeTakeFirstOrThrow();
}

export async function findDoctorStatus(
  db: TelemedicineDb,
  doctorId: string,
): Promise<DoctorStatus | undefined> {
  const row = await db
    .selectFrom('telemedicine.doctors')
    .select('status')
    .where('id', '=', doctorId)
    .executeTakeFirst();
  return row?.status;
}

export type PublishedReviewRow = { review: PublishedReview; cursor: KeysetCursor };

/** Newest first, keyset-paginated on (created_at desc, consultation_id desc). */
export async function listDoctorReviews(
  db: TelemedicineDb,
  filter: { doctorId: string; after?: KeysetCursor; limit: number },
): Promise<PublishedReviewRow[]> {
  let query = db
    .selectFrom('telemedicine.reviews')
    .select(['consultation_id', 'rating', 'comment', 'created_at'])
    .select(
      sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
        'cursor_created_at',
      ),
    )
    .where('doctor_id', '=', filter.doctorId);
  if (filter.after !== undefined) {
    const { at, id } = filter.after;
    query = query.where(sql<boolean>`(created_at, consultation_id) < (${at}::timestamptz, ${id}::uuid)`);
  }
  const rows = await query
    .orderBy('created_at', 'desc')
    .orderBy('consultation_id', 'desc')
    .limit(filter.limit)
    .execute();
  return rows.map((row) => ({
    review: { rating: row.rating, comment: row.comment, createdAt: row.created_at },
    cursor: { at: row.cursor_created_at, id: row.consultation_id },
  }));
}
