import { sql } from '@keel/platform/db';
import type { OrdersDb } from '../database.ts';
import type { AlertCursor, LowStockAlert } from './inventory.ts';

type AlertRow = {
  id: string;
  outlet_id: string;
  stock_item_id: string;
  sku: string;
  name: string;
  available: number;
  threshold: number;
  raised_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
};

function toLowStockAlert(row: AlertRow): LowStockAlert {
  return {
    id: row.id,
    outletId: row.outlet_id,
    stockItemId: row.stock_item_id,
    sku: row.sku,
    name: row.name,
    available: row.available,
    threshold: row.threshold,
    raisedAt: row.raised_at,
    acknowledgedAt: row.acknowledged_at,
    acknowledgedBy: row.acknowledged_by,
  };
}

function selectAlerts(db: OrdersDb) {
  return db
    .selectFrom('orders.low_stock_alerts as a')
    .innerJoin('orders.stock_items as s', 's.id', 'a.stock_item_id')
    .select([
      'a.id',
      'a.outlet_id',
      'a.stock_item_id',
      's.sku',
      's.name',
      'a.available',
      'a.threshold',
      'a.raised_at',
      'a.acknowledged_at',
      'a.acknowledged_by',
    ]);
}

/**
 * Raises the alert for one low-stock event; false when that event already
 * raised one. The unique event id makes a redelivery a no-op on its own,
 * whatever the inbox does.
 */
export async function insertLowStockAlert(
  db: OrdersDb,
  alert: {
    id: string;
    eventId: string;
    outletId: string;
    stockItemId: string;
    available: number;
    threshold: number;
    raisedAt: Date;
  },
): Promise<boolean> {
  const row = await db
    .insertInto('orders.low_stock_alerts')
    .values({
      id: alert.id,
      event_id: alert.eventId,
      outlet_id: alert.outletId,
      stock_item_id: alert.stockItemId,
      available: alert.available,
      threshold: alert.threshold,
      raised_at: alert.raisedAt,
    })
    .onConflict((conflict) => conflict.column('event_id').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function findLowStockAlert(
  db: OrdersDb,
  outletId: string,
  alertId: string,
): Promise<LowStockAlert | undefined> {
  const row = await selectAlerts(db)
    .where('a.id', '=', alertId)
    .where('a.outlet_id', '=', outletId)
    .executeTakeFirst();
  return row === undefined ? undefined : toLowStockAlert(row);
}

/** Newest first by (raised_at, id); `limit + 1` rows so the caller can tell whether another page follows. */
export async function findLowStockAlertsPage(
  db: OrdersDb,
  outletId: string,
  filters: { isOpenOnly: boolean },
  page: { limit: number; after?: AlertCursor },
): Promise<LowStockAlert[]> {
  const { after } = page;
  const rows = await selectAlerts(db)
    .where('a.outlet_id', '=', outletId)
    .$if(filters.isOpenOnly, (query) => query.where('a.acknowledged_at', 'is', null))
    .$if(after !== undefined, (query) =>
      query.where(sql<boolean>`(a.raised_at, a.id) < (${after?.raisedAt}::timestamptz, ${after?.id}::uuid)`),
    )
    .orderBy('a.raised_at', 'desc')
    .orderBy('a.id', 'desc')
    .limit(page.limit + 1)
    .execute();
  return rows.map(toLowStockAlert);
}

/**
 * Acknowledges an open alert; false when it is not this outlet's or was
 * already acknowledged. Conditional, so two staff acknowledging at once
 * cannot both win: the first acknowledger is the one recorded.
 */
export async function updateAlertAcknowledged(
  db: OrdersDb,
  acknowledgement: { outletId: string; alertId: string; acknowledgedBy: string; acknowledgedAt: Date },
): Promise<boolean> {
  const row = await db
    .updateTable('orders.low_stock_alerts')
    .set({ acknowledged_at: acknowledgement.acknowledgedAt, acknowledged_by: acknowledgement.acknowledgedBy })
    .where('id', '=', acknowledgement.alertId)
    .where('outlet_id', '=', acknowledgement.outletId)
    .where('acknowledged_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}
