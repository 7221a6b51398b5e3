import { sql } from '@keel/platform/db';
import type { OrdersDb } from '../database.ts';
import { type AdjustmentReason, type InventoryFilters, isLowStock, type StockItem } from './inventory.ts';

const STOCK_ITEM_COLUMNS = [
  'id',
  'outlet_id',
  'sku',
  'name',
  'unit',
  'on_hand',
  'reserved',
  'low_stock_threshold',
  'version',
  'updated_at',
] as const;

type StockItemRow = {
  id: string;
  outlet_id: string;
  sku: string;
  name: string;
  unit: string;
  on_hand: number;
  reserved: number;
  low_stock_threshold: number;
  version: number;
  updated_at: Date;
};

export function toStockItem(row: StockItemRow): StockItem {
  const stock = {
    onHand: row.on_hand,
    reserved: row.reserved,
    lowStockThreshold: row.low_stock_threshold,
  };
  return {
    id: row.id,
    outletId: row.outlet_id,
    sku: row.sku,
    name: row.name,
    unit: row.unit,
    ...stock,
    available: stock.onHand - stock.reserved,
    isLow: isLowStock(stock),
    version: row.version,
    updatedAt: row.updated_at,
  };
}

export type NewStockItem = {
  id: string;
  outletId: string;
  sku: string;
  name: string;
  unit: string;
  onHand: number;
  lowStockThreshold: number;
  createdAt: Date;
};

/**
 * Inserts a stock item; undefined when the outlet already has its sku. ON
 * CONFLICT on the (outlet, sku) key rather than catching the violation keeps
 * the caller's transaction usable.
 */
export async function insertStockItem(db: OrdersDb, item: NewStockItem): Promise<StockItem | undefined> {
  const row = await db
    .insertInto('orders.stock_items')
    .values({
      id: item.id,
      outlet_id: item.outletId,
      sku: item.sku,
      name: item.name,
      unit: item.unit,
      on_hand: item.onHand,
      low_stock_threshold: item.lowStockThreshold,
      updated_at: item.createdAt,
    })
    .onConflict((conflict) => conflict.columns(['outlet_id', 'sku']).doNothing())
    .returning(STOCK_ITEM_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toStockItem(row);
}

export async function findStockItem(
  db: OrdersDb,
  outletId: string,
  stockItemId: string,
): Promise<StockItem | undefined> {
  const row = await db
    .selectFrom('orders.stock_items')
    .select(STOCK_ITEM_COLUMNS)
    .where('id', '=', stockItemId)
    .where('outlet_id', '=', outletId)
    .executeTakeFirst();
  return row === undefined ? undefined : toStockItem(row);
}

/** One page in sku order, `limit + 1` rows so the caller can tell whether another page follows. */
export async function findStockItemsPage(
  db: OrdersDb,
  outletId: string,
  filters: InventoryFilters,
  page: { limit: number; afterSku?: string },
): Promise<StockItem[]> {
  const { skuPrefix, nameContains } = filters;
  const { afterSku } = page;
  const rows = await db
    .selectFrom('orders.stock_items')
    .select(STOCK_ITEM_COLUMNS)
    .where('outlet_id', '=', outletId)
    .$if(filters.isLowOnly, (query) => query.where(sql<boolean>`on_hand - reserved < low_stock_threshold`))
    // starts_with and strpos take the filter as a value, so `_` and `%` in it
    // are literal characters, not LIKE wildcards.
    .$if(skuPrefix !== undefined, (query) => query.where(sql<boolean>`starts_with(sku, ${skuPrefix})`))
    .$if(nameContains !== undefined, (query) =>
      query.where(sql<boolean>`strpos(lower(name), lower(${nameContains})) > 0`),
    )
    .$if(afterSku !== undefined, (query) => query.where('sku', '>', afterSku ?? ''))
    .orderBy('sku')
    .limit(page.limit + 1)
    .execute();
  return rows.map(toStockItem);
}

export type OnHandChange = {
  outletId: string;
  stockItemId: string;
  delta: number;
  /** Only change the row while it still has this version (If-Match). */
  expectedVersion?: number;
  maximumOnHand: number;
  now: Date;
};

/**
 * Moves on hand by `delta` in one conditional statement: the row lock it
 * takes serialises concurrent adjustments and orders, and the WHERE clause is
 * re-checked against the latest row after waiting, so no interleaving can
 * take stock below what open orders reserve. Undefined when the item is not
 * this outlet's, the version is stale, or the change breaks a bound; the
 * caller reads the row to tell which.
 */
export async function updateStockOnHand(db: OrdersDb, change: OnHandChange): Promise<StockItem | undefined> {
  const { delta, expectedVersion } = change;
  const row = await db
    .updateTable('orders.stock_items')
    .set((eb) => ({
      on_hand: eb('on_hand', '+', delta),
      version: eb('version', '+', 1),
      updated_at: change.now,
    }))
    .where('id', '=', change.stockItemId)
    .where('outlet_id', '=', change.outletId)
    .where((eb) => eb(eb('on_hand', '+', delta), '>=', eb.ref('reserved')))
    .where((eb) => eb(eb('on_hand', '+', delta), '<=', change.maximumOnHand))
    .$if(expectedVersion !== undefined, (query) => query.where('version', '=', expectedVersion ?? 0))
    .returning(STOCK_ITEM_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toStockItem(row);
}

export async function insertInventoryAdjustment(
  db: OrdersDb,
  adjustment: {
    id: string;
    stockItemId: string;
    outletId: string;
    delta: number;
    reason: AdjustmentReason;
    note: string | null;
    onHandAfter: number;
    adjustedBy: string;
    adjustedAt: Date;
  },
): Promise<void> {
  await db
    .insertInto('orders.inventory_adjustments')
    .values({
      id: adjustment.id,
      stock_item_id: adjustment.stockItemId,
      outlet_id: adjustment.outletId,
      delta: adjustment.delta,
      reason: adjustment.reason,
      note: adjustment.note,
      on_hand_after: adjustment.onHandAfter,
      adjusted_by: adjustment.adjustedBy,
      adjusted_at: adjustment.adjustedAt,
    })
    .execute();
}

export async function findOutletExists(db: OrdersDb, outletId: string): Promise<boolean> {
  const row = await db
    .selectFrom('orders.outlets')
    .select('id')
    .where('id', '=', outletId)
    .executeTakeFirst();
  return row !== undefined;
}
