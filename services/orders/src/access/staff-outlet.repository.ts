import type { OrdersDb } from '../database.ts';

export type StaffAssignment = {
  accountId: string;
  outletId: string;
  grantedAt: Date;
  grantedBy: string | null;
};

export async function findStaffAssignment(
  db: OrdersDb,
  accountId: string,
  outletId: string,
): Promise<StaffAssignment | undefined> {
  const row = await db
    .selectFrom('orders.staff_outlets')
    .select(['account_id', 'outlet_id', 'granted_at', 'granted_by'])
    .where('account_id', '=', accountId)
    .where('outlet_id', '=', outletId)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : {
        accountId: row.account_id,
        outletId: row.outlet_id,
        grantedAt: row.granted_at,
        grantedBy: row.granted_by,
      };
}

export async function findOutletIdsOfStaff(db: OrdersDb, accountId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('orders.staff_outlets')
    .select('outlet_id')
    .where('account_id', '=', accountId)
    .orderBy('outlet_id')
    .execute();
  return rows.map((row) => row.outlet_id);
}
