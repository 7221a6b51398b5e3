import { Type } from 'typebox';

// Comments may span lines; still no other control characters.
const PRINTABLE_MULTILINE = '^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const Rating = Type.Integer({ minimum: 1, maximum: 5, description: '1 (poor) to 5 (excellent)' });

export const ConsultationIdParams = Type.Object({ consultationId: Uuid }, { additionalProperties: false });

export const ReviewDoctorIdParams = Type.Object({ doctorId: Uuid }, { additionalProperties: false });

export const SubmitReviewBody = Type.Object(
  {
    rating: Rating,
    comment: Type.Optional(Type.String({ maxLength: 2000, pattern: PRINTABLE_MULTILINE })),
  },
  { additionalProperties: false },
);

export const ReviewResponse = Type.Object(
  {
    consultation_id: Uuid,
    doctor_id: Uuid,
    rating: Rating,
    comment: Type.String(),
    created_at: Timestamp,
  },
  { additionalProperties: false, description: 'Your review' },
);

export const ListReviewsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

/** A published review: anonymous, so nothing here names or links to the patient. */
export const PublishedReviewResponse = Type.Object(
  { rating: Rating, comment: Type.String(), created_at: Timestamp },
  { additionalProperties: false },
);

export const ReviewPageResponse = Type.Object(
  {
    items: Type.Array(PublishedReviewResponse),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as cursor for the next page; null on the last page',
    }),
  },
  { additionalProperties: false },
);
