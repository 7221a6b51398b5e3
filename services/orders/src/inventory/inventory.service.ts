import { recordAuditEvent } from '@keel/platform/audit';
import type { RequestOrigin } from '@keel/platform/auth';
import type { Principal } from '@keel/platform/http';
import type { Clock, IdGenerator } from '@keel/platform/module';
import type { OutletAccess } from '../access/outlet-access.ts';
import type { OrdersDatabase } from '../database.ts';
import {
  outletNotFound,
  stockItemChanged,
  stockItemNotFound,
  stockWouldExceedMaximum,
  stockWouldGoNegative,
} from './inventory.errors.ts';
import {
  findOutletExists,
  findStockItem,
  findStockItemsPage,
  insertInventoryAdjustment,
  updateStockOnHand,
} from './inventory.repository.ts';
import {
  type AdjustmentInput,
  decodeSkuCursor,
  encodeSkuCursor,
  type InventoryFilters,
  type InventoryPage,
  MAX_ON_HAND,
  type StockItem,
} from './inventory.ts';
import { emitLowStockCrossings } from './low-stock.ts';

export type InventoryServiceDependencies = {
  db: OrdersDatabase;
  clock: Clock;
  ids: IdGenerator;
  access: OutletAccess;
};

export type InventoryService = ReturnType<typeof createInventoryService>;

export function createInventoryService(deps: InventoryServiceDependencies) {
  const { db, access } = deps;

  /** Staff of the outlet or an admin; anyone else (and a missing outlet) sees 404. */
  async function assertOutletInScope(principal: Principal, outletId: string): Promise<void> {
    await access.assertCanActForOutlet(principal, outletId, () => outletNotFound(outletId));
    // Admins pass the scope check for any id, so the outlet may still not exist.
    if (!(await db.run((handle) => findOutletExists(handle, outletId)))) throw outletNotFound(outletId);
  }

  return {
    assertOutletInScope,

    async listInventory(
      principal: Principal,
      outletId: string,
      query: InventoryFilters & { limit: number; cursor?: string },
    ): Promise<InventoryPage> {
      const afterSku = query.cursor === undefined ? undefined : decodeSkuCursor(query.cursor);
      await assertOutletInScope(principal, outletId);
      const rows = await db.run((handle) =>
        findStockItemsPage(handle, outletId, query, {
          limit: query.limit,
          ...(afterSku === undefined ? {} : { afterSku }),
        }),
      );
      const items = rows.slice(0, query.limit);
      const last = items.at(-1);
      return {
        items,
        nextCursor: rows.length > query.limit && last !== undefined ? encodeSkuCursor(last.sku) : null,
      };
    },

    /**
     * Adds `delta` to on hand (a delivery, waste, a count). The stock change,
     * its adjustment row, the audit event and a low-stock event (when this
     * change crossed the threshold) commit together or not at all.
     */
    async adjustInventory(
      principal: Principal,
      target: { outletId: string; stockItemId: string; expectedVersion?: number },
      input: AdjustmentInput,
      origin: RequestOrigin,
    ): Promise<StockItem> {
      const { outletId, stockItemId, expectedVersion } = target;
      await access.assertCanActForOutlet(principal, outletId, () => outletNotFound(outletId));
      return db.transaction(async (trx) => {
        const now = deps.clock.now();
        const updated = await updateStockOnHand(trx, {
          outletId,
          stockItemId,
          delta: input.delta,
          ...(expectedVersion === undefined ? {} : { expectedVersion }),
          maximumOnHand: MAX_ON_HAND,
          now,
        });
        if (updated === undefined) {
          // Only explains the refusal: nothing is written from this read.
          const current = await findStockItem(trx, outletId, stockItemId);
          if (current === undefined) throw stockItemNotFound(stockItemId);
          if (expectedVersion !== undefined && current.version !== expectedVersion) {
            throw stockItemChanged(current.version);
          }
          if (current.onHand + input.delta > MAX_ON_HAND) {
            throw stockWouldExceedMaximum({
              onHand: current.onHand,
              delta: input.delta,
              maximum: MAX_ON_HAND,
            });
          }
          throw stockWouldGoNegative({
            onHand: current.onHand,
            reserved: current.reserved,
            delta: input.delta,
          });
        }
        const onHandBefore = updated.onHand - input.delta;
        await insertInventoryAdjustment(trx, {
          id: deps.ids.uuid(),
          stockItemId,
          outletId,
          delta: input.delta,
          reason: input.reason,
          note: input.note ?? null,
          onHandAfter: updated.onHand,
          adjustedBy: principal.id,
          adjustedAt: now,
        });
        await recordAuditEvent(trx, {
          actorType: principal.kind,
          actorId: principal.id,
          action: 'orders.inventory_adjusted',
          resourceType: 'stock_item',
          resourceId: stockItemId,
          outcome: 'success',
          requestId: origin.requestId,
          ip: origin.ip,
          userAgent: origin.userAgent,
          changes: {
            on_hand: { from: onHandBefore, to: updated.onHand },
            delta: input.delta,
            reason: input.reason,
            outlet_id: outletId,
          },
          occurredAt: now,
        });
        await emitLowStockCrossings(
          trx,
          [
            {
              id: updated.id,
              outletId: updated.outletId,
              sku: updated.sku,
              name: updated.name,
              onHand: updated.onHand,
              reserved: updated.reserved,
              lowStockThreshold: updated.lowStockThreshold,
              // Reserved does not move here, so availability falls by exactly what on hand does.
              availableDecrease: -input.delta,
            },
          ],
          'adjustment',
          now,
        );
        return updated;
      });
    },
  };
}
