import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerReviewRoutes } from './review.routes.ts';
import { createReviewService } from './review.service.ts';

/** Builds the reviews feature and registers its routes. */
export function wireReviews(app: KeelApp, deps: TelemedicineDependencies): void {
  const reviews = createReviewService({ db: deps.db, clock: deps.clock });
  registerReviewRoutes(app, reviews);
}
