import type { Clock } from '@keel/platform/module';
import type { OrdersDatabase } from '../database.ts';
import { outletNotFound, staffAssignmentNotFound } from './outlet.errors.ts';
import { findOutlet } from './outlet.repository.ts';
import { type Actor, recordCatalogueAudit } from './outlet.service.ts';
import type { OutletStaffMember } from './outlet.ts';
import { deleteOutletStaff, findOutletStaffPage, insertOutletStaff } from './outlet-staff.repository.ts';

export type OutletStaffService = ReturnType<typeof createOutletStaffService>;

/**
 * Which accounts work at which outlet. An assignment scopes the
 * `orders:staff` role to the outlet; it does not grant the role (that is the
 * platform's `/admin/users/:id/roles`). The orders schema does not see the
 * platform's accounts, so any account id can be assigned: without the role,
 * the assignment grants nothing.
 */
export function createOutletStaffService(deps: { db: OrdersDatabase; clock: Clock }) {
  const { db } = deps;
  return {
    /** Idempotent: assigning an assigned account changes nothing and records no second audit event. */
    async assignStaff(actor: Actor, outletId: string, accountId: string): Promise<void> {
      await db.transaction(async (trx) => {
        if ((await findOutlet(trx, outletId)) === undefined) throw outletNotFound(outletId);
        const now = deps.clock.now();
        const isAssigned = await insertOutletStaff(trx, {
          accountId,
          outletId,
          grantedAt: now,
          grantedBy: actor.principal.id,
        });
        if (!isAssigned) return;
        await recordCatalogueAudit(trx, actor, {
          action: 'orders.staff_assigned',
          resourceType: 'outlet',
          resourceId: outletId,
          changes: { account_id: accountId },
          occurredAt: now,
        });
      });
    },

    async unassignStaff(actor: Actor, outletId: string, accountId: string): Promise<void> {
      await db.transaction(async (trx) => {
        if (!(await deleteOutletStaff(trx, outletId, accountId))) {
          if ((await findOutlet(trx, outletId)) === undefined) throw outletNotFound(outletId);
          throw staffAssignmentNotFound(accountId);
        }
        await recordCatalogueAudit(trx, actor, {
          action: 'orders.staff_unassigned',
          resourceType: 'outlet',
          resourceId: outletId,
          changes: { account_id: accountId },
          occurredAt: deps.clock.now(),
        });
      });
    },

    async listOutletStaff(
      outletId: string,
      page: { limit: number; afterAccountId?: string },
    ): Promise<{ staff: OutletStaffMember[]; nextCursor: string | null }> {
      if ((await db.run((handle) => findOutlet(handle, outletId))) === undefined) {
        throw outletNotFound(outletId);
      }
      const rows = await db.run((handle) => findOutletStaffPage(handle, outletId, page));
      const staff = rows.slice(0, page.limit);
      return {
        staff,
        nextCursor: rows.length > page.limit ? (staff.at(-1)?.accountId ?? null) : null,
      };
    },
  };
}
