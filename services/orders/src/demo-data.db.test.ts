import { randomUUID } from 'node:crypto';
import { useTestApp } from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { demoId, seedOrdersDemoData } from './demo-data.ts';
import { ordersModule } from './index.ts';

const harness = useTestApp({ modules: [ordersModule] });

async function seed(): Promise<void> {
  const { testApp, testDb } = harness;
  await seedOrdersDemoData({
    config: testApp.config,
    database: testDb.database,
    logger: testApp.logger,
    clock: testApp.clock,
    ids: { uuid: randomUUID },
  });
}

async function countsPerTable(): Promise<Record<string, number>> {
  const result = await harness.testDb.database.pool.query<Record<string, string>>(`
    select (select count(*) from orders.outlets) as outlets,
           (select count(*) from orders.stock_items) as stock_items,
           (select count(*) from orders.menu_items) as menu_items,
           (select count(*) from orders.menu_item_components) as components`);
  return Object.fromEntries(
    Object.entries(result.rows[0] ?? {}).map(([table, count]) => [table, Number(count)]),
  );
}

describe('seedOrdersDemoData', () => {
  it('seeds three outlets with six stock items and six menu items each, and is a no-op the second time', async () => {
    await seed();
    const first = await countsPerTable();
    expect(first).toEqual({ outlets: 3, stock_items: 18, menu_items: 18, components: 39 });

    // Staff sold some buns in between: re-seeding must not reset stock.
    await harness.testDb.database.pool.query('update orders.stock_items set on_hand = 7 where id = $1', [
      demoId(2, 1, 1),
    ]);
    await seed();
    expect(await countsPerTable()).toEqual(first);
    const bun = await harness.testDb.database.pool.query(
      'select on_hand from orders.stock_items where id = $1',
      [demoId(2, 1, 1)],
    );
    expect(bun.rows).toEqual([{ on_hand: 7 }]);
  });

  it('serves every demo outlet a menu priced in its currency, everything orderable', async () => {
    await seed();
    const outlets = (await harness.testApp.app.inject({ method: 'GET', url: '/orders/outlets' })).json()
      .outlets;
    expect(outlets.map((outlet: { currency: string }) => outlet.currency).sort()).toEqual([
      'EUR',
      'GBP',
      'USD',
    ]);
    for (const outlet of outlets as { id: string; currency: string }[]) {
      const menu = (
        await harness.testApp.app.inject({ method: 'GET', url: `/orders/outlets/${outlet.id}/menu` })
      ).json();
      expect(menu.items).toHaveLength(6);
      for (const item of menu.items) {
        expect(item).toMatchObject({ currency: outlet.currency, is_orderable: true });
      }
    }
  });
});
