import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { OrdersDatabase, OrdersSchema } from '../database.ts';
import { findStockItemsPage, insertStockItem, updateStockOnHand } from './inventory.repository.ts';
import { MAX_ON_HAND } from './inventory.ts';

let testDb: TestDatabase;
let db: OrdersDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  db = testDb.database.typed<OrdersSchema>();
});

afterAll(async () => {
  await testDb?.drop();
});

async function createOutletWithItem(stock: { onHand: number; reserved?: number }) {
  const outletId = randomUUID();
  const stockItemId = randomUUID();
  await db.run((handle) =>
    handle.insertInto('orders.outlets').values({ id: outletId, name: 'Repo', currency: 'EUR' }).execute(),
  );
  await db.run((handle) =>
    insertStockItem(handle, {
      id: stockItemId,
      outletId,
      sku: 'BUN',
      name: 'Bun',
      unit: 'each',
      onHand: stock.onHand,
      lowStockThreshold: 5,
      createdAt: new Date(),
    }),
  );
  if (stock.reserved !== undefined) {
    await testDb.database.pool.query('update orders.stock_items set reserved = $2 where id = $1', [
      stockItemId,
      stock.reserved,
    ]);
  }
  return { outletId, stockItemId };
}

const change = (
  target: { outletId: string; stockItemId: string },
  delta: number,
  expectedVersion?: number,
) => ({
  ...target,
  delta,
  ...(expectedVersion === undefined ? {} : { expectedVersion }),
  maximumOnHand: MAX_ON_HAND,
  now: new Date(),
});

describe('insertStockItem', () => {
  it('returns undefined instead of failing when the outlet already has the sku', async () => {
    const { outletId } = await createOutletWithItem({ onHand: 1 });
    const again = await db.run((handle) =>
      insertStockItem(handle, {
        id: randomUUID(),
        outletId,
        sku: 'BUN',
        name: 'Bun',
        unit: 'each',
        onHand: 1,
        lowStockThreshold: 0,
        createdAt: new Date(),
      }),
    );
    expect(again).toBeUndefined();
  });
});

describe('updateStockOnHand', () => {
  it('applies the delta and bumps the version', async () => {
    const target = await createOutletWithItem({ onHand: 10 });
    const updated = await db.run((handle) => updateStockOnHand(handle, change(target, -4)));
    expect(updated).toMatchObject({ onHand: 6, available: 6, version: 2, isLow: false });
  });

  it('writes nothing when the result would fall below reserved', async () => {
    const target = await createOutletWithItem({ onHand: 10, reserved: 8 });
    expect(await db.run((handle) => updateStockOnHand(handle, change(target, -3)))).toBeUndefined();
    const exact = await db.run((handle) => updateStockOnHand(handle, change(target, -2)));
    expect(exact).toMatchObject({ onHand: 8, reserved: 8, available: 0, isLow: true });
  });

  it('writes nothing past the maximum on hand', async () => {
    const target = await createOutletWithItem({ onHand: MAX_ON_HAND - 1 });
    expect(await db.run((handle) => updateStockOnHand(handle, change(target, 2)))).toBeUndefined();
    expect(await db.run((handle) => updateStockOnHand(handle, change(target, 1)))).toMatchObject({
      onHand: MAX_ON_HAND,
    });
  });

  it('writes nothing for a stale expected version or another outlet', async () => {
    const target = await createOutletWithItem({ onHand: 10 });
    expect(await db.run((handle) => updateStockOnHand(handle, change(target, 1, 2)))).toBeUndefined();
    expect(
      await db.run((handle) => updateStockOnHand(handle, change({ ...target, outletId: randomUUID() }, 1))),
    ).toBeUndefined();
    expect(await db.run((handle) => updateStockOnHand(handle, change(target, 1, 1)))).toMatchObject({
      onHand: 11,
      version: 2,
    });
  });
});

describe('findStockItemsPage', () => {
  it('reads one row past the limit so the caller knows another page follows', async () => {
    const { outletId } = await createOutletWithItem({ onHand: 1 });
    for (const sku of ['CAN', 'PATTY']) {
      await db.run((handle) =>
        insertStockItem(handle, {
          id: randomUUID(),
          outletId,
          sku,
          name: sku,
          unit: 'each',
          onHand: 1,
          lowStockThreshold: 0,
          createdAt: new Date(),
        }),
      );
    }
    const page = await db.run((handle) =>
      findStockItemsPage(handle, outletId, { isLowOnly: false }, { limit: 2 }),
    );
    expect(page.map((item) => item.sku)).toEqual(['BUN', 'CAN', 'PATTY']);
    const after = await db.run((handle) =>
      findStockItemsPage(handle, outletId, { isLowOnly: false }, { limit: 2, afterSku: 'CAN' }),
    );
    expect(after.map((item) => item.sku)).toEqual(['PATTY']);
  });
});
