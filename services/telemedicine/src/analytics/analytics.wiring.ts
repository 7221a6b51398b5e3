import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerAnalyticsRoutes } from './analytics.routes.ts';
import { createAnalyticsService } from './analytics.service.ts';
import { createAnalyticsSubscription } from './on-telemedicine-event.handler.ts';

/** Builds the analytics feature: the rollup's subscriber and the admin report route. */
export function wireAnalytics(app: KeelApp, deps: TelemedicineDependencies): void {
  deps.background.subscribe(createAnalyticsSubscription());
  registerAnalyticsRoutes(app, createAnalyticsService({ db: deps.db, clock: deps.clock }));
}
