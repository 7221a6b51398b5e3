import { InventoryLowStockV1 } from '@keel/contracts';
import type { AnyTransaction } from '@keel/platform/db';
import { emitEvent } from '@keel/platform/outbox';

/** A stock item as a conditional update left it (RETURNING), with how much that update took away. */
export type StockAfterChange = {
  id: string;
  outletId: string;
  sku: string;
  name: string;
  onHand: number;
  reserved: number;
  lowStockThreshold: number;
  /** How much the change reduced the available quantity (on hand − reserved); 0 or negative when it rose. */
  availableDecrease: number;
};

/**
 * True when this change took the available quantity from at or above the
 * threshold to below it. Changes to one stock item are serialised by its row
 * lock, so exactly one change sees each crossing: an alert fires once per
 * crossing, not on every order placed while stock stays low, and fires again
 * after a restock lifted it back over.
 */
export function hasCrossedBelowThreshold(item: StockAfterChange): boolean {
  if (item.availableDecrease <= 0) return false;
  const after = item.onHand - item.reserved;
  const before = after + item.availableDecrease;
  return after < item.lowStockThreshold && before >= item.lowStockThreshold;
}

/**
 * Emits `orders.inventory_low_stock.v1` in the caller's transaction for every
 * item whose change crossed its threshold. Call it with the RETURNING rows of
 * the conditional update, inside the same transaction.
 */
export async function emitLowStockCrossings(
  trx: AnyTransaction,
  items: readonly StockAfterChange[],
  cause: 'order_placed' | 'adjustment',
  now: Date,
): Promise<number> {
  let emitted = 0;
  for (const item of items) {
    if (!hasCrossedBelowThreshold(item)) continue;
    await emitEvent(
      trx,
      {
        type: InventoryLowStockV1.type,
        aggregateType: 'stock_item',
        aggregateId: item.id,
        occurredAt: now,
        payload: {
          stockItemId: item.id,
          outletId: item.outletId,
          sku: item.sku,
          name: item.name,
          available: item.onHand - item.reserved,
          threshold: item.lowStockThreshold,
          onHand: item.onHand,
          reserved: item.reserved,
          cause,
          detectedAt: now.toISOString(),
        },
      },
      { definition: InventoryLowStockV1 },
    );
    emitted += 1;
  }
  return emitted;
}
