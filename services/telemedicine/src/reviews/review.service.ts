import { ReviewSubmittedV1 } from '@keel/contracts';
import { isUniqueViolation } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import { emitEvent } from '@keel/platform/outbox';
import { consultationNotFound, doctorNotFound } from '../access/access.errors.ts';
import { assertCanSeeConsultation } from '../access/consultation-access.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { emitDoctorProfileChanged } from '../doctors/doctor.events.ts';
import { decodeCursor, encodeCursor } from '../doctors/doctor.ts';
import { alreadyReviewed, consultationNotCompleted } from './review.errors.ts';
import {
  findConsultationForReview,
  findDoctorStatus,
  findReviewedConsultationId,
  insertReview,
  listDoctorReviews,
  updateDoctorRating,
} from './review.repository.ts';
import type { PublishedReview, Review, ReviewInput } from './review.ts';

export type ReviewServiceDependencies = { db: TelemedicineDatabase; clock: Clock };

export type ReviewPage = { items: PublishedReview[]; nextCursor: string | null };

export type ReviewService = ReturnType<typeof createReviewService>;

const REVIEW_PRIMARY_KEY = 'reviews_pkey';

export function createReviewService(deps: ReviewServiceDependencies) {
  const { db, clock } = deps;

  return {
    /**
     * The consultation's patient rates a completed consultation, once. The
     * review, the doctor's rating and both events commit together; the
     * review's primary key settles concurrent submissions (one wins, the
     * others get `telemedicine.already_reviewed`).
     */
    async submitReview(principal: Principal, consultationId: string, input: ReviewInput): Promise<Review> {
      const now = clock.now();
      try {
        return await db.transaction(async (trx) => {
          const consultation = await findConsultationForReview(trx, consultationId);
          const relation = assertCanSeeConsultation(principal, consultation, consultationId);
          // Only the patient reviews; to anyone else it is someone else's consultation.
          if (consultation === undefined || relation !== 'patient')
            throw consultationNotFound(consultationId);
          if (consultation.status !== 'COMPLETED') throw consultationNotCompleted(consultation.status);
          if ((await findReviewedConsultationId(trx, consultationId)) !== undefined) throw alreadyReviewed();

          const review: Review = {
            consultationId,
            patientId: consultation.patientId,
            doctorId: consultation.doctorId,
            rating: input.rating,
            comment: input.comment,
            createdAt: now,
          };
          await insertReview(trx, review);
          const doctor = await updateDoctorRating(trx, review.doctorId, review.rating);
          await emitEvent(
            trx,
            {
              type: ReviewSubmittedV1.type,
              aggregateType: 'consultation',
              aggregateId: consultationId,
              occurredAt: now,
              payload: {
                consultationId,
                doctorId: review.doctorId,
                rating: review.rating,
                submittedAt: now.toISOString(),
              },
            },
            { definition: ReviewSubmittedV1 },
          );
          await emitDoctorProfileChanged(trx, doctor, 'rating', now);
          return review;
        });
      } catch (error) {
        if (isUniqueViolation(error, REVIEW_PRIMARY_KEY)) throw alreadyReviewed();
        throw error;
      }
    },

    /** A verified doctor's reviews, newest first, without who wrote them. */
    async listDoctorReviews(
      doctorId: string,
      options: { limit: number; cursor?: string },
    ): Promise<ReviewPage> {
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
      const { status, rows } = await db.run(async (kysely) => {
        const doctorStatus = await findDoctorStatus(kysely, doctorId);
        if (doctorStatus !== 'VERIFIED') return { status: doctorStatus, rows: [] };
        // One row more than asked tells whether there is a next page.
        const found = await listDoctorReviews(kysely, {
          doctorId,
          ...(after === undefined ? {} : { after }),
          limit: options.limit + 1,
        });
        return { status: doctorStatus, rows: found };
      });
      if (status !== 'VERIFIED') throw doctorNotFound(doctorId);
      const page = rows.slice(0, options.limit);
      const last = page.at(-1);
      return {
        items: page.map((row) => row.review),
        nextCursor: rows.length > options.limit && last !== undefined ? encodeCursor(last.cursor) : null,
      };
    },
  };
}
