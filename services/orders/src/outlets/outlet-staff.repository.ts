import type { OrdersDb } from '../database.ts';
import type { OutletStaffMember } from './outlet.ts';

/** Assigns the account to the outlet; false when it already was (the first grant is kept). */
export async function insertOutletStaff(
  db: OrdersDb,
  assignment: { accountId: string; outletId: string; grantedAt: Date; grantedBy: string },
): Promise<boolean> {
  const row = await db
    .insertInto('orders.staff_outlets')
    .values({
      account_id: assignment.accountId,
      outlet_id: assignment.outletId,
      granted_at: assignment.grantedAt,
      granted_by: assignment.grantedBy,
    })
    .onConflict((conflict) => conflict.columns(['account_id', 'outlet_id']).doNothing())
    .returning('account_id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function deleteOutletStaff(db: OrdersDb, outletId: string, accountId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('orders.staff_outlets')
    .where('outlet_id', '=', outletId)
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** One page in account id order, `limit + 1` rows so the caller can tell whether another page follows. */
export async function findOutletStaffPage(
  db: OrdersDb,
  outletId: string,
  page: { limit: number; afterAccountId?: string },
): Promise<OutletStaffMember[]> {
  const { afterAccountId } = page;
  const rows = await db
    .selectFrom('orders.staff_outlets')
    .select(['account_id', 'granted_at', 'granted_by'])
    .where('outlet_id', '=', outletId)
    .$if(afterAccountId !== undefined, (query) => query.where('account_id', '>', afterAccountId ?? ''))
    .orderBy('account_id')
    .limit(page.limit + 1)
    .execute();
  return rows.map((row) => ({
    accountId: row.account_id,
    grantedAt: row.granted_at,
    grantedBy: row.granted_by,
  }));
}

/** Every account assigned to the outlet (the recipients of its alerts). */
export async function findOutletStaffAccountIds(db: OrdersDb, outletId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('orders.staff_outlets')
    .select('account_id')
    .where('outlet_id', '=', outletId)
    .orderBy('account_id')
    .execute();
  return rows.map((row) => row.account_id);
}
