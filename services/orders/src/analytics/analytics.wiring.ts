import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import type { AnalyticsSchema } from './analytics.repository.ts';
import { registerAnalyticsRoutes } from './analytics.routes.ts';
import { createAnalyticsService } from './analytics.service.ts';
import { createAnalyticsSubscription } from './on-order-event.handler.ts';

/** Builds the analytics feature and registers its routes, subscriptions and jobs. */
export function wireAnalytics(app: KeelApp, deps: OrdersDependencies): void {
  deps.background.subscribe(createAnalyticsSubscription({ clock: deps.clock }));
  const service = createAnalyticsService({
    db: deps.database.typed<AnalyticsSchema>(),
    access: deps.access,
  });
  registerAnalyticsRoutes(app, service);
}
