import { recordAuditEvent } from '@keel/platform/audit';
import type { RequestOrigin } from '@keel/platform/auth';
import type { Principal } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import type { OrdersDatabase } from '../database.ts';
import { alertNotFound } from './inventory.errors.ts';
import { type AlertPage, decodeAlertCursor, encodeAlertCursor, type LowStockAlert } from './inventory.ts';
import {
  findLowStockAlert,
  findLowStockAlertsPage,
  updateAlertAcknowledged,
} from './stock-alert.repository.ts';

export type StockAlertServiceDependencies = {
  db: OrdersDatabase;
  clock: Clock;
  /** The inventory service's outlet check: staff of the outlet or an admin, else 404. */
  assertOutletInScope: (principal: Principal, outletId: string) => Promise<void>;
};

export type StockAlertService = ReturnType<typeof createStockAlertService>;

export function createStockAlertService(deps: StockAlertServiceDependencies) {
  const { db } = deps;
  return {
    async listAlerts(
      principal: Principal,
      outletId: string,
      query: { isOpenOnly: boolean; limit: number; cursor?: string },
    ): Promise<AlertPage> {
      const after = query.cursor === undefined ? undefined : decodeAlertCursor(query.cursor);
      await deps.assertOutletInScope(principal, outletId);
      const rows = await db.run((handle) =>
        findLowStockAlertsPage(
          handle,
          outletId,
          { isOpenOnly: query.isOpenOnly },
          { limit: query.limit, ...(after === undefined ? {} : { after }) },
        ),
      );
      const alerts = rows.slice(0, query.limit);
      const last = alerts.at(-1);
      return {
        alerts,
        nextCursor:
          rows.length > query.limit && last !== undefined
            ? encodeAlertCursor({ raisedAt: last.raisedAt, id: last.id })
            : null,
      };
    },

    /**
     * Marks the alert handled. Idempotent: acknowledging an acknowledged alert
     * answers with it unchanged (the first acknowledger stays recorded), so a
     * client retrying after a lost response, or two staff clicking at once,
     * both see success.
     */
    async acknowledgeAlert(
      principal: Principal,
      target: { outletId: string; alertId: string },
      origin: RequestOrigin,
    ): Promise<LowStockAlert> {
      const { outletId, alertId } = target;
      await deps.assertOutletInScope(principal, outletId);
      return db.transaction(async (trx) => {
        const now = deps.clock.now();
        const isAcknowledgedNow = await updateAlertAcknowledged(trx, {
          outletId,
          alertId,
          acknowledgedBy: principal.id,
          acknowledgedAt: now,
        });
        const alert = await findLowStockAlert(trx, outletId, alertId);
        if (alert === undefined) throw alertNotFound(alertId);
        if (isAcknowledgedNow) {
          await recordAuditEvent(trx, {
            actorType: principal.kind,
            actorId: principal.id,
            action: 'orders.low_stock_alert_acknowledged',
            resourceType: 'low_stock_alert',
            resourceId: alertId,
            outcome: 'success',
            requestId: origin.requestId,
            ip: origin.ip,
            userAgent: origin.userAgent,
            changes: { outlet_id: outletId, stock_item_id: alert.stockItemId },
            occurredAt: now,
          });
        }
        return alert;
      });
    },
  };
}
