import type { KeelApp } from '@keel/platform/http';
import type { ServiceMountContext } from '@keel/platform/module';
import { createOutletAccess, type OutletAccess } from './access/outlet-access.ts';
import { wireAnalytics } from './analytics/analytics.wiring.ts';
import type { OrdersDatabase, OrdersSchema } from './database.ts';
import { wireInventory } from './inventory/inventory.wiring.ts';
import { wireNotifications } from './notifications/notifications.wiring.ts';
import { wireOrders } from './orders/orders.wiring.ts';
import { wireOutlets } from './outlets/outlets.wiring.ts';
import { wireTracking } from './tracking/tracking.wiring.ts';
import { wireWebhooks } from './webhooks/webhooks.wiring.ts';

/** What every orders feature is built from. */
export type OrdersDependencies = ServiceMountContext & {
  db: OrdersDatabase;
  access: OutletAccess;
};

export function createOrdersDependencies(context: ServiceMountContext): OrdersDependencies {
  const db = context.database.typed<OrdersSchema>();
  return { ...context, db, access: createOutletAccess({ db }) };
}

/**
 * The orders service's composition root. Each feature's `wire*` builds that
 * feature's objects from the shared dependencies and registers its routes,
 * event subscriptions and job queues; the order here is the order routes
 * appear in the OpenAPI document.
 */
export function registerOrdersService(app: KeelApp, context: ServiceMountContext): void {
  const deps = createOrdersDependencies(context);
  wireOutlets(app, deps);
  wireInventory(app, deps);
  wireOrders(app, deps);
  wireTracking(app, deps);
  wireAnalytics(app, deps);
  wireNotifications(app, deps);
  wireWebhooks(app, deps);
}
