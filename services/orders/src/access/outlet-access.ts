import type { AppError } from '@keel/platform/errors';
import type { Principal } from '@keel/platform/http';
import type { OrdersDatabase } from '../database.ts';
import { ORDERS_PERMISSIONS } from './orders-permissions.ts';
import { findOutletIdsOfStaff, findStaffAssignment } from './staff-outlet.repository.ts';

/** The outlets a principal may act for as staff: every one (admins), or the listed ones. */
export type OutletScope = { kind: 'all' } | { kind: 'outlets'; outletIds: readonly string[] };

/**
 * Object-level rules for outlet data (OWASP API1). The role grants the
 * permission; this decides which outlets it applies to: admins
 * (`orders:all_outlets`) act for every outlet, staff only for the outlets
 * `orders.staff_outlets` assigns them.
 */
export type OutletAccess = {
  canActForOutlet(principal: Principal, outletId: string): Promise<boolean>;
  /**
   * Throws `notFound()` unless the principal may act for the outlet: to an
   * outsider another outlet's order looks exactly like a missing one.
   */
  assertCanActForOutlet(principal: Principal, outletId: string, notFound: () => AppError): Promise<void>;
  scopeOf(principal: Principal): Promise<OutletScope>;
};

export function createOutletAccess(deps: { db: OrdersDatabase }): OutletAccess {
  const canActForOutlet = async (principal: Principal, outletId: string): Promise<boolean> => {
    if (principal.permissions.has(ORDERS_PERMISSIONS.allOutlets)) return true;
    // API keys are not people; they cannot be assigned to an outlet.
    if (principal.kind !== 'user') return false;
    return (await deps.db.run((db) => findStaffAssignment(db, principal.id, outletId))) !== undefined;
  };
  return {
    canActForOutlet,
    async assertCanActForOutlet(principal, outletId, notFound) {
      if (!(await canActForOutlet(principal, outletId))) throw notFound();
    },
    async scopeOf(principal) {
      if (principal.permissions.has(ORDERS_PERMISSIONS.allOutlets)) return { kind: 'all' };
      if (principal.kind !== 'user') return { kind: 'outlets', outletIds: [] };
      return {
        kind: 'outlets',
        outletIds: await deps.db.run((db) => findOutletIdsOfStaff(db, principal.id)),
      };
    },
  };
}
