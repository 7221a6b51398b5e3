import { type AuditEventInput, recordAuditEvent } from '@keel/platform/audit';
import type { RequestOrigin } from '@keel/platform/auth';
import type { AnyTransaction } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { Clock, IdGenerator } from '@keel/platform/module';
import type { OrdersDatabase, OrdersDb } from '../database.ts';
import { insertStockItem } from '../inventory/inventory.repository.ts';
import type { StockItem } from '../inventory/inventory.ts';
import {
  duplicateComponents,
  invalidComponents,
  invalidTimeZone,
  menuItemNotFound,
  outletNotFound,
  skuTaken,
} from './outlet.errors.ts';
import {
  findActiveOutlets,
  findMenu,
  findOutlet,
  findStockItemIdsOfOutlet,
  insertMenuItem,
  insertOutlet,
  lockMenuItem,
  updateMenuItem,
} from './outlet.repository.ts';
import {
  findRepeatedComponents,
  isKnownTimeZone,
  type MenuEntry,
  type MenuItem,
  type MenuItemChanges,
  type NewMenuItemInput,
  type NewOutletInput,
  type NewStockItemInput,
  normaliseName,
  type Outlet,
} from './outlet.ts';

export type CatalogueServiceDependencies = { db: OrdersDatabase; clock: Clock; ids: IdGenerator };

export type CatalogueService = ReturnType<typeof createCatalogueService>;

/** Who did it and from where: what every catalogue audit event records. */
export type Actor = { principal: Principal; origin: RequestOrigin };

export async function recordCatalogueAudit(
  trx: AnyTransaction,
  actor: Actor,
  event: Pick<AuditEventInput, 'action' | 'resourceType' | 'resourceId' | 'changes' | 'occurredAt'>,
): Promise<void> {
  await recordAuditEvent(trx, {
    actorType: actor.principal.kind,
    actorId: actor.principal.id,
    outcome: 'success',
    requestId: actor.origin.requestId,
    ip: actor.origin.ip,
    userAgent: actor.origin.userAgent,
    ...event,
  });
}

/**
 * Outlets, their stock items and menus. Reads are public; writes are the
 * admin's (the route's permission) and are audited in their own transaction.
 */
export function createCatalogueService(deps: CatalogueServiceDependencies) {
  const { db } = deps;

  /** The outlet, for writes; 404 when it does not exist. */
  async function getOutlet(handle: OrdersDb, outletId: string): Promise<Outlet> {
    const outlet = await findOutlet(handle, outletId);
    if (outlet === undefined) throw outletNotFound(outletId);
    return outlet;
  }

  return {
    listOutlets: (): Promise<Outlet[]> => db.run((handle) => findActiveOutlets(handle)),

    /** The menu of an active outlet; an inactive one is as absent as a missing one. */
    async getMenu(outletId: string): Promise<{ outlet: Outlet; items: MenuEntry[] }> {
      const outlet = await db.run((handle) => findOutlet(handle, outletId));
      if (outlet === undefined || !outlet.isActive) throw outletNotFound(outletId);
      return { outlet, items: await db.run((handle) => findMenu(handle, outletId)) };
    },

    async createOutlet(actor: Actor, input: NewOutletInput): Promise<Outlet> {
      const name = normaliseName(input.name, '/body/name');
      if (!isKnownTimeZone(input.timeZone)) throw invalidTimeZone();
      return db.transaction(async (trx) => {
        const now = deps.clock.now();
        const outlet = await insertOutlet(trx, {
          id: deps.ids.uuid(),
          name,
          currency: input.currency,
          timeZone: input.timeZone,
          createdAt: now,
        });
        await recordCatalogueAudit(trx, actor, {
          action: 'orders.outlet_created',
          resourceType: 'outlet',
          resourceId: outlet.id,
          changes: { name, currency: outlet.currency, time_zone: outlet.timeZone },
          occurredAt: now,
        });
        return outlet;
      });
    },

    async createStockItem(actor: Actor, outletId: string, input: NewStockItemInput): Promise<StockItem> {
      const name = normaliseName(input.name, '/body/name');
      return db.transaction(async (trx) => {
        await getOutlet(trx, outletId);
        const now = deps.clock.now();
        const item = await insertStockItem(trx, {
          id: deps.ids.uuid(),
          outletId,
          sku: input.sku,
          name,
          unit: input.unit.trim() || 'each',
          onHand: input.onHand,
          lowStockThreshold: input.lowStockThreshold,
          createdAt: now,
        });
        if (item === undefined) throw skuTaken(input.sku);
        await recordCatalogueAudit(trx, actor, {
          action: 'orders.stock_item_created',
          resourceType: 'stock_item',
          resourceId: item.id,
          changes: {
            outlet_id: outletId,
            sku: item.sku,
            on_hand: item.onHand,
            low_stock_threshold: item.lowStockThreshold,
          },
          occurredAt: now,
        });
        return item;
      });
    },

    /**
     * Adds a menu item with its recipe, in the outlet's currency. Every
     * component must be one of the outlet's stock items (422
     * `orders.invalid_component` names the ones that are not); the item and
     * its recipe are written together or not at all.
     */
    async createMenuItem(actor: Actor, outletId: string, input: NewMenuItemInput): Promise<MenuItem> {
      const name = normaliseName(input.name, '/body/name');
      const repeated = findRepeatedComponents(input.components);
      if (repeated.length > 0) throw duplicateComponents(repeated);
      return db.transaction(async (trx) => {
        const outlet = await getOutlet(trx, outletId);
        const owned = await findStockItemIdsOfOutlet(
          trx,
          outletId,
          input.components.map((component) => component.stockItemId),
        );
        const foreign = input.components.flatMap((component, index) =>
          owned.has(component.stockItemId.toLowerCase()) ? [] : [index],
        );
        if (foreign.length > 0) throw invalidComponents(foreign);
        const now = deps.clock.now();
        const item = await insertMenuItem(trx, {
          id: deps.ids.uuid(),
          outletId,
          name,
          description: input.description.trim(),
          priceMinor: input.priceMinor,
          currency: outlet.currency,
          isAvailable: input.isAvailable,
          components: input.components.map((component) => ({
            stockItemId: component.stockItemId.toLowerCase(),
            quantity: component.quantity,
          })),
          createdAt: now,
        });
        await recordCatalogueAudit(trx, actor, {
          action: 'orders.menu_item_created',
          resourceType: 'menu_item',
          resourceId: item.id,
          changes: {
            outlet_id: outletId,
            name,
            price_minor: item.priceMinor,
            currency: item.currency,
            components: item.components.map((component) => ({
              stock_item_id: component.stockItemId,
              quantity: component.quantity,
            })),
          },
          occurredAt: now,
        });
        return item;
      });
    },

    /**
     * Changes price or availability. Orders already placed keep the price
     * they were placed at (their lines carry it).
     */
    async updateMenuItem(
      actor: Actor,
      target: { outletId: string; menuItemId: string },
      changes: MenuItemChanges,
    ): Promise<MenuItem> {
      return db.transaction(async (trx) => {
        const before = await lockMenuItem(trx, target.outletId, target.menuItemId);
        if (before === undefined) throw menuItemNotFound(target.menuItemId);
        const after = await updateMenuItem(trx, target.menuItemId, changes);
        await recordCatalogueAudit(trx, actor, {
          action: 'orders.menu_item_updated',
          resourceType: 'menu_item',
          resourceId: target.menuItemId,
          changes: {
            outlet_id: target.outletId,
            ...(changes.priceMinor === undefined
              ? {}
              : { price_minor: { from: before.priceMinor, to: after.priceMinor } }),
            ...(changes.isAvailable === undefined
              ? {}
              : { is_available: { from: before.isAvailable, to: after.isAvailable } }),
          },
          occurredAt: deps.clock.now(),
        });
        return after;
      });
    },
  };
}
