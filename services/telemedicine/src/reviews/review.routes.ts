import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import {
  ConsultationIdParams,
  ListReviewsQuery,
  ReviewDoctorIdParams,
  ReviewPageResponse,
  ReviewResponse,
  SubmitReviewBody,
} from './review.schemas.ts';
import type { ReviewService } from './review.service.ts';
import type { Review } from './review.ts';

const TAGS = ['reviews'];
const SECURITY = [{ bearerAuth: [] }];

export function toReviewResponse(review: Review): Static<typeof ReviewResponse> {
  return {
    consultation_id: review.consultationId,
    doctor_id: review.doctorId,
    rating: review.rating,
    comment: review.comment,
    created_at: review.createdAt.toISOString(),
  };
}

function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('reviews route reached without a principal');
  return principal;
}

export function registerReviewRoutes(app: KeelApp, reviews: ReviewService): void {
  app.post(
    '/consultations/:consultationId/review',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.review },
      schema: {
        operationId: 'submitReview',
        tags: TAGS,
        summary: 'Review a completed consultation',
        security: SECURITY,
        description:
          'The consultation’s patient rates it once it is COMPLETED (409 ' +
          '`telemedicine.consultation_not_completed` before), once (409 `telemedicine.already_reviewed`). ' +
          'The doctor’s rating moves with it. Reviews are published without the patient’s identity. ' +
          'Anyone else’s consultation does not exist (404 `telemedicine.consultation_not_found`).',
        params: ConsultationIdParams,
        body: SubmitReviewBody,
        response: {
          201: ReviewResponse,
          ...problemResponses(400, 401, 403, 404, 409, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const review = await reviews.submitReview(principalOf(request), request.params.consultationId, {
        rating: request.body.rating,
        comment: request.body.comment ?? '',
      });
      return reply.code(201).send(toReviewResponse(review));
    },
  );

  app.get(
    '/doctors/:doctorId/reviews',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'listDoctorReviews',
        tags: TAGS,
        summary: 'A verified doctor’s reviews, newest first',
        description:
          'Public and anonymous: rating, comment and date only. Keyset-paginated: pass `next_cursor` back ' +
          'as `cursor`. Doctors that are not verified do not exist here (404 `telemedicine.doctor_not_found`).',
        params: ReviewDoctorIdParams,
        querystring: ListReviewsQuery,
        response: { 200: ReviewPageResponse, ...problemResponses(400, 404, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await reviews.listDoctorReviews(request.params.doctorId, {
        limit: query.limit,
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return {
        items: page.items.map((review) => ({
          rating: review.rating,
          comment: review.comment,
          created_at: review.createdAt.toISOString(),
        })),
        next_cursor: page.nextCursor,
      };
    },
  );
}
