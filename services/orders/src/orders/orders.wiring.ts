import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import { registerOrderRoutes } from './order.routes.ts';
import { createOrderService } from './order.service.ts';

/** Builds the orders feature and registers its routes, subscriptions and jobs. */
export function wireOrders(app: KeelApp, deps: OrdersDependencies): void {
  const orders = createOrderService({ db: deps.db, clock: deps.clock, ids: deps.ids, access: deps.access });
  registerOrderRoutes(app, orders);
}
