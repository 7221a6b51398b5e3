import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import { registerInventoryRoutes } from './inventory.routes.ts';
import { createInventoryService } from './inventory.service.ts';
import { createLowStockAlertSubscription } from './on-inventory-low-stock.handler.ts';
import { createStockAlertService } from './stock-alert.service.ts';

/** Builds the inventory feature and registers its routes, subscriptions and jobs. */
export function wireInventory(app: KeelApp, deps: OrdersDependencies): void {
  const inventory = createInventoryService({
    db: deps.db,
    clock: deps.clock,
    ids: deps.ids,
    access: deps.access,
  });
  const alerts = createStockAlertService({
    db: deps.db,
    clock: deps.clock,
    assertOutletInScope: inventory.assertOutletInScope,
  });
  registerInventoryRoutes(app, { inventory, alerts });
  deps.background.subscribe(createLowStockAlertSubscription({ ids: deps.ids, notifier: deps.notifier }));
}
