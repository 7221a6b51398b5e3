import { sql } from '@keel/platform/db';
import type { OrdersDb } from '../database.ts';
import type { MenuComponent, MenuEntry, MenuItem, Outlet } from './outlet.ts';

const OUTLET_COLUMNS = ['id', 'name', 'currency', 'time_zone', 'is_active'] as const;

type OutletRow = { id: string; name: string; currency: string; time_zone: string; is_active: boolean };

function toOutlet(row: OutletRow): Outlet {
  return {
    id: row.id,
    name: row.name,
    currency: row.currency,
    timeZone: row.time_zone,
    isActive: row.is_active,
  };
}

export async function findActiveOutlets(db: OrdersDb): Promise<Outlet[]> {
  const rows = await db
    .selectFrom('orders.outlets')
    .select(OUTLET_COLUMNS)
    .where('is_active', '=', true)
    .orderBy('name')
    .orderBy('id')
    .execute();
  return rows.map(toOutlet);
}

export async function findOutlet(db: OrdersDb, outletId: string): Promise<Outlet | undefined> {
  const row = await db
    .selectFrom('orders.outlets')
    .select(OUTLET_COLUMNS)
    .where('id', '=', outletId)
    .executeTakeFirst();
  return row === undefined ? undefined : toOutlet(row);
}

export async function insertOutlet(
  db: OrdersDb,
  outlet: { id: string; name: string; currency: string; timeZone: string; createdAt: Date },
): Promise<Outlet> {
  const row = await db
    .insertInto('orders.outlets')
    .values({
      id: outlet.id,
      name: outlet.name,
      currency: outlet.currency,
      time_zone: outlet.timeZone,
      created_at: outlet.createdAt,
    })
    .returning(OUTLET_COLUMNS)
    .executeTakeFirstOrThrow();
  return toOutlet(row);
}

/**
 * The outlet's available menu items, each with whether it can be made now:
 * no component has less available (on hand − reserved) than one portion
 * uses. Computed in one query, so the answer is one snapshot of stock.
 */
export async function findMenu(db: OrdersDb, outletId: string): Promise<MenuEntry[]> {
  const rows = await db
    .selectFrom('orders.menu_items as m')
    .select(['m.id', 'm.name', 'm.description', 'm.price_minor', 'm.currency'])
    .select((eb) =>
      eb
        .not(
          eb.exists(
            eb
              .selectFrom('orders.menu_item_components as c')
              .innerJoin('orders.stock_items as s', 's.id', 'c.stock_item_id')
              .select(sql`1`.as('short'))
              .whereRef('c.menu_item_id', '=', 'm.id')
              .where(sql<boolean>`s.on_hand - s.reserved < c.quantity`),
          ),
        )
        .$castTo<boolean>()
        .as('is_orderable'),
    )
    .where('m.outlet_id', '=', outletId)
    .where('m.is_available', '=', true)
    .orderBy('m.name')
    .orderBy('m.id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    description: row.description,
    priceMinor: Number(row.price_minor),
    currency: row.currency,
    isOrderable: row.is_orderable,
  }));
}

/** Which of `stockItemIds` are stock items of the outlet. */
export async function findStockItemIdsOfOutlet(
  db: OrdersDb,
  outletId: string,
  stockItemIds: readonly string[],
): Promise<Set<string>> {
  if (stockItemIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('orders.stock_items')
    .select('id')
    .where('outlet_id', '=', outletId)
    .where('id', 'in', stockItemIds)
    .execute();
  return new Set(rows.map((row) => row.id));
}

const MENU_ITEM_COLUMNS = [
  'id',
  'outlet_id',
  'name',
  'description',
  'price_minor',
  'currency',
  'is_available',
  'created_at',
] as const;

type MenuItemRow = {
  id: string;
  outlet_id: string;
  name: string;
  description: string;
  price_minor: string;
  currency: string;
  is_available: boolean;
  created_at: Date;
};

function toMenuItem(row: MenuItemRow, components: MenuComponent[]): MenuItem {
  return {
    id: row.id,
    outletId: row.outlet_id,
    name: row.name,
    description: row.description,
    priceMinor: Number(row.price_minor),
    currency: row.currency,
    isAvailable: row.is_available,
    components,
    createdAt: row.created_at,
  };
}

/**
 * Inserts a menu item and its recipe. The composite foreign keys
 * (menu item, outlet) and (stock item, outlet) refuse a component of another
 * outlet even if a caller skipped the friendly check.
 */
export async function insertMenuItem(db: OrdersDb, item: MenuItem): Promise<MenuItem> {
  const row = await db
    .insertInto('orders.menu_items')
    .values({
      id: item.id,
      outlet_id: item.outletId,
      name: item.name,
      description: item.description,
      price_minor: item.priceMinor,
      currency: item.currency,
      is_available: item.isAvailable,
      created_at: item.createdAt,
    })
    .returning(MENU_ITEM_COLUMNS)
    .executeTakeFirstOrThrow();
  await db
    .insertInto('orders.menu_item_components')
    .values(
      item.components.map((component) => ({
        menu_item_id: item.id,
        stock_item_id: component.stockItemId,
        outlet_id: item.outletId,
        quantity: component.quantity,
      })),
    )
    .execute();
  return toMenuItem(row, item.components);
}

async function findComponents(db: OrdersDb, menuItemId: string): Promise<MenuComponent[]> {
  const rows = await db
    .selectFrom('orders.menu_item_components')
    .select(['stock_item_id', 'quantity'])
    .where('menu_item_id', '=', menuItemId)
    .orderBy('stock_item_id')
    .execute();
  return rows.map((row) => ({ stockItemId: row.stock_item_id, quantity: row.quantity }));
}

/** Locks the menu item for the rest of the transaction (a change and its audit record see one before-state). */
export async function lockMenuItem(
  db: OrdersDb,
  outletId: string,
  menuItemId: string,
): Promise<MenuItem | undefined> {
  const row = await db
    .selectFrom('orders.menu_items')
    .select(MENU_ITEM_COLUMNS)
    .where('id', '=', menuItemId)
    .where('outlet_id', '=', outletId)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toMenuItem(row, await findComponents(db, menuItemId));
}

export async function updateMenuItem(
  db: OrdersDb,
  menuItemId: string,
  changes: { priceMinor?: number; isAvailable?: boolean },
): Promise<MenuItem> {
  const row = await db
    .updateTable('orders.menu_items')
    .set({
      ...(changes.priceMinor === undefined ? {} : { price_minor: changes.priceMinor }),
      ...(changes.isAvailable === undefined ? {} : { is_available: changes.isAvailable }),
    })
    .where('id', '=', menuItemId)
    .returning(MENU_ITEM_COLUMNS)
    .executeTakeFirstOrThrow();
  return toMenuItem(row, await findComponents(db, menuItemId));
}
