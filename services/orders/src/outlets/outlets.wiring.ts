import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import { registerCatalogueRoutes } from './outlet.routes.ts';
import { createCatalogueService } from './outlet.service.ts';
import { registerOutletStaffRoutes } from './outlet-staff.routes.ts';
import { createOutletStaffService } from './outlet-staff.service.ts';

/** Builds the outlets feature and registers its routes, subscriptions and jobs. */
export function wireOutlets(app: KeelApp, deps: OrdersDependencies): void {
  registerCatalogueRoutes(app, createCatalogueService({ db: deps.db, clock: deps.clock, ids: deps.ids }));
  registerOutletStaffRoutes(app, createOutletStaffService({ db: deps.db, clock: deps.clock }));
}
