import type { AppError } from '../errors/index.ts';
import type { Principal } from '../http/index.ts';

export type BolaOutcome = 'owner' | 'privileged' | 'denied';

/**
 * Object-level authorisation (OWASP API1): may this principal act on this
 * object? `owner` when `isOwner` says so, `privileged` when the principal
 * holds `anyPermission` (staff reading any order), `denied` otherwise.
 */
export function isOwner<T>(
  object: T,
  principal: Principal,
  rule: { isOwner: (object: T, principal: Principal) => boolean; anyPermission?: string },
): BolaOutcome {
  if (rule.isOwner(object, principal)) return 'owner';
  if (rule.anyPermission !== undefined && principal.permissions.has(rule.anyPermission)) return 'privileged';
  return 'denied';
}

/**
 * Returns the object when the principal may act on it; otherwise throws the
 * service's not-found error, the same one a missing object gets, so that a
 * caller cannot tell another person's object from one that does not exist.
 *
 * @example
 * const order = assertOwnership(await findOrder(db, id), principal, {
 *   isOwner: (order, caller) => order.customerId === caller.id,
 *   anyPermission: 'orders:read_any',
 *   notFound: () => orderNotFound(id),
 * });
 */
export function assertOwnership<T>(
  object: T | undefined,
  principal: Principal,
  rule: {
    isOwner: (object: T, principal: Principal) => boolean;
    anyPermission?: string;
    notFound: () => AppError;
  },
): T {
  if (object === undefined || isOwner(object, principal, rule) === 'denied') throw rule.notFound();
  return object;
}
