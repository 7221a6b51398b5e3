import { InventoryLowStockV1 } from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import type { IdGenerator } from '@keel/platform/module';
import type { Notifier } from '@keel/platform/notifier';
import type { Subscription } from '@keel/platform/outbox';
import type { OrdersSchema } from '../database.ts';
import { findOutletStaffAccountIds } from '../outlets/outlet-staff.repository.ts';
import { insertLowStockAlert } from './stock-alert.repository.ts';

export const LOW_STOCK_ALERTS_SUBSCRIBER = 'orders.low-stock-alerts';
export const LOW_STOCK_TEMPLATE = 'orders.low_stock';

/**
 * Who hears about an alert: every account assigned to the outlet, addressed
 * as `account:<id>`. The orders schema holds no emails or phone numbers; the
 * notifier adapter resolves an account address to the person's channel, so
 * contact details stay in one place (the platform's accounts).
 */
export function staffAddress(accountId: string): string {
  return `account:${accountId}`;
}

/**
 * Turns each `inventory_low_stock` event into an alert (visible at
 * listAlerts) and a notification to the outlet's staff. Ordered per stock
 * item, so alerts of one item are raised in the order they were crossed.
 */
export function createLowStockAlertSubscription(deps: {
  ids: IdGenerator;
  notifier: Notifier;
}): Subscription {
  return {
    name: LOW_STOCK_ALERTS_SUBSCRIBER,
    eventTypes: [InventoryLowStockV1.type],
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    async handler(received, trx) {
      // A malformed event throws EventValidationError: dead-lettered, never retried.
      const event = InventoryLowStockV1.parse(received);
      const { payload } = event;
      const db = asPlatformTables<OrdersSchema>(trx);
      const isRaised = await insertLowStockAlert(db, {
        id: deps.ids.uuid(),
        eventId: event.id,
        outletId: payload.outletId,
        stockItemId: payload.stockItemId,
        available: payload.available,
        threshold: payload.threshold,
        raisedAt: new Date(payload.detectedAt),
      });
      if (!isRaised) return;
      const staffIds = await findOutletStaffAccountIds(db, payload.outletId);
      // Notifications leave the process and cannot join this transaction: they
      // are sent after the alert is written but before it commits, so a failure
      // later in the delivery (or a crash before commit) rolls the alert back
      // and the retry sends again. At-least-once, which an alert tolerates; a
      // notifier that must not repeat can deduplicate on `alertEventId`.
      for (const accountId of staffIds) {
        await deps.notifier.send({
          to: staffAddress(accountId),
          template: LOW_STOCK_TEMPLATE,
          data: {
            alertEventId: event.id,
            outletId: payload.outletId,
            stockItemId: payload.stockItemId,
            sku: payload.sku,
            name: payload.name,
            available: payload.available,
            threshold: payload.threshold,
          },
        });
      }
    },
  };
}
