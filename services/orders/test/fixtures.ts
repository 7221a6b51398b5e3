import { randomUUID } from 'node:crypto';
import type { AnyTransaction, Database } from '@keel/platform/db';
import type { BatchEventHandler, Subscription } from '@keel/platform/outbox';
import {
  createTestAccount,
  type SignedIn,
  signIn,
  type TestAccount,
  type TestApp,
} from '@keel/platform/testing';
import type { OrdersSchema } from '../src/database.ts';

// Test data for the orders service, written straight to its tables (the
// catalogue's own routes are tested in catalogue.http.test.ts; other tests
// need a menu, not a tour of the admin API).

export type StockSpec = { sku: string; onHand: number; threshold?: number; name?: string };
export type MenuSpec = {
  name: string;
  priceMinor: number;
  uses: Record<string, number>;
  isAvailable?: boolean;
};

export type TestOutlet = {
  id: string;
  currency: string;
  /** Stock item id by sku. */
  stock: Record<string, string>;
  /** Menu item id by name. */
  menu: Record<string, string>;
};

/**
 * An outlet with stock and a menu. Defaults to a burger (bun + patty), fries
 * (potato) and a cola (can), 100 of each stock item, threshold 10.
 *
 * @example
 * const outlet = await createTestOutlet(testDb.database, { stock: [{ sku: 'BUN', onHand: 5 }], menu: [...] });
 */
export async function createTestOutlet(
  database: Database,
  spec: { name?: string; currency?: string; stock?: StockSpec[]; menu?: MenuSpec[] } = {},
): Promise<TestOutlet> {
  const db = database.typed<OrdersSchema>();
  const currency = spec.currency ?? 'EUR';
  const stockSpecs = spec.stock ?? [
    { sku: 'BUN', onHand: 100, threshold: 10 },
    { sku: 'PATTY', onHand: 100, threshold: 10 },
    { sku: 'POTATO', onHand: 100, threshold: 10 },
    { sku: 'CAN', onHand: 100, threshold: 10 },
  ];
  const menuSpecs = spec.menu ?? [
    { name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } },
    { name: 'Fries', priceMinor: 349, uses: { POTATO: 1 } },
    { name: 'Cola', priceMinor: 250, uses: { CAN: 1 } },
  ];
  const outlet: TestOutlet = { id: randomUUID(), currency, stock: {}, menu: {} };
  await db.transaction(async (trx) => {
    await trx
      .insertInto('orders.outlets')
      .values({ id: outlet.id, name: spec.name ?? `Outlet ${outlet.id.slice(0, 8)}`, currency })
      .execute();
    for (const stock of stockSpecs) {
      const id = randomUUID();
      outlet.stock[stock.sku] = id;
      await trx
        .insertInto('orders.stock_items')
        .values({
          id,
          outlet_id: outlet.id,
          sku: stock.sku,
          name: stock.name ?? stock.sku.toLowerCase(),
          on_hand: stock.onHand,
          low_stock_threshold: stock.threshold ?? 0,
        })
        .execute();
    }
    for (const menu of menuSpecs) {
      const id = randomUUID();
      outlet.menu[menu.name] = id;
      await trx
        .insertInto('orders.menu_items')
        .values({
          id,
          outlet_id: outlet.id,
          name: menu.name,
          price_minor: menu.priceMinor,
          currency,
          is_available: menu.isAvailable ?? true,
        })
        .execute();
      for (const [sku, quantity] of Object.entries(menu.uses)) {
        const stockItemId = outlet.stock[sku];
        if (stockItemId === undefined)
          throw new Error(`createTestOutlet: menu ${menu.name} uses unknown sku ${sku}`);
        await trx
          .insertInto('orders.menu_item_components')
          .values({ menu_item_id: id, stock_item_id: stockItemId, outlet_id: outlet.id, quantity })
          .execute();
      }
    }
  });
  return outlet;
}

/** Assigns an account to an outlet as staff (the role must be granted separately). */
export async function assignStaff(database: Database, accountId: string, outletId: string): Promise<void> {
  await database
    .typed<OrdersSchema>()
    .run((db) =>
      db.insertInto('orders.staff_outlets').values({ account_id: accountId, outlet_id: outletId }).execute(),
    );
}

/** The stock row as the database holds it now. */
export async function readStock(
  database: Database,
  stockItemId: string,
): Promise<{ onHand: number; reserved: number }> {
  const row = await database
    .typed<OrdersSchema>()
    .run((db) =>
      db
        .selectFrom('orders.stock_items')
        .select(['on_hand', 'reserved'])
        .where('id', '=', stockItemId)
        .executeTakeFirstOrThrow(),
    );
  return { onHand: row.on_hand, reserved: row.reserved };
}

export type OrdersCaller = { account: TestAccount; session: SignedIn; authorization: string };

/** A signed-in customer (`orders:customer`). */
export async function signInCustomer(testApp: TestApp): Promise<OrdersCaller> {
  return signInWithRoles(testApp, ['orders:customer']);
}

/** A signed-in staff member of the given outlets (`orders:staff` + assignments). */
export async function signInStaff(
  testApp: TestApp,
  database: Database,
  outletIds: string[],
): Promise<OrdersCaller> {
  const caller = await signInWithRoles(testApp, ['orders:staff']);
  for (const outletId of outletIds) await assignStaff(database, caller.account.id, outletId);
  return caller;
}

/** A signed-in orders admin (MFA completed by `signIn`). */
export async function signInOrdersAdmin(testApp: TestApp): Promise<OrdersCaller> {
  return signInWithRoles(testApp, ['orders:admin']);
}

async function signInWithRoles(testApp: TestApp, roles: string[]): Promise<OrdersCaller> {
  const account = await createTestAccount(testApp, { roles });
  const session = await signIn(testApp, account);
  return { account, session, authorization: session.authorization };
}

/** A subscription's `handleBatch`, which the test needs it to have. */
export function batchHandlerOf(subscription: Subscription): BatchEventHandler {
  if (subscription.handleBatch === undefined) throw new Error(`${subscription.name} has no handleBatch`);
  return subscription.handleBatch;
}

/** `trx` with a count of the statements run through it (pg-boss's insert included). */
export function countingStatements(trx: AnyTransaction): { trx: AnyTransaction; statements: () => number } {
  let statements = 0;
  const counted = trx.withPlugin({
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => {
      statements += 1;
      return result;
    },
  });
  return { trx: counted, statements: () => statements };
}
