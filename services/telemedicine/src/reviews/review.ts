/**
 * A patient's review of a completed consultation (one per consultation; the
 * consultation id is the review's key). Reviews are published anonymously:
 * `patientId` never leaves the service.
 */
export type Review = {
  consultationId: string;
  patientId: string;
  doctorId: string;
  rating: number;
  comment: string;
  createdAt: Date;
};

export type ReviewInput = { rating: number; comment: string };

/** What anyone may read of a review. */
export type PublishedReview = { rating: number; comment: string; createdAt: Date };
