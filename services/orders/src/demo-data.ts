import type { ServiceContext } from '@keel/platform/module';
import type { OrdersSchema } from './database.ts';

// Three kitchens with the same recipes and local prices. Every row has a fixed
// id and is inserted with ON CONFLICT DO NOTHING, so seeding twice (or after
// staff changed the stock) changes nothing.

type DemoStock = { sku: string; name: string; unit: string; onHand: number; threshold: number };
type DemoMenuItem = {
  name: string;
  description: string;
  /** Price in minor units per outlet currency. */
  prices: Record<string, number>;
  uses: Record<string, number>;
};

const DEMO_OUTLETS = [
  { name: 'Keel Kitchen Berlin Mitte', currency: 'EUR', timeZone: 'Europe/Berlin' },
  { name: 'Keel Kitchen London Shoreditch', currency: 'GBP', timeZone: 'Europe/London' },
  { name: 'Keel Kitchen New York SoHo', currency: 'USD', timeZone: 'America/New_York' },
] as const;

const DEMO_STOCK: readonly DemoStock[] = [
  { sku: 'BUN-BRIOCHE', name: 'Brioche bun', unit: 'each', onHand: 400, threshold: 60 },
  { sku: 'PATTY-BEEF', name: 'Beef patty 150 g', unit: 'each', onHand: 350, threshold: 50 },
  { sku: 'PATTY-VEG', name: 'Black bean patty', unit: 'each', onHand: 120, threshold: 20 },
  { sku: 'CHEESE-CHEDDAR', name: 'Cheddar slice', unit: 'slice', onHand: 500, threshold: 80 },
  { sku: 'FRIES-PORTION', name: 'Fries portion', unit: 'portion', onHand: 600, threshold: 100 },
  { sku: 'COLA-CAN', name: 'Cola 330 ml', unit: 'can', onHand: 240, threshold: 48 },
];

const DEMO_MENU: readonly DemoMenuItem[] = [
  {
    name: 'Classic Burger',
    description: 'Beef patty in a brioche bun',
    prices: { EUR: 890, GBP: 790, USD: 1095 },
    uses: { 'BUN-BRIOCHE': 1, 'PATTY-BEEF': 1 },
  },
  {
    name: 'Cheeseburger',
    description: 'Beef patty and cheddar in a brioche bun',
    prices: { EUR: 990, GBP: 890, USD: 1195 },
    uses: { 'BUN-BRIOCHE': 1, 'PATTY-BEEF': 1, 'CHEESE-CHEDDAR': 1 },
  },
  {
    name: 'Double Cheeseburger',
    description: 'Two beef patties, two slices of cheddar',
    prices: { EUR: 1290, GBP: 1150, USD: 1595 },
    uses: { 'BUN-BRIOCHE': 1, 'PATTY-BEEF': 2, 'CHEESE-CHEDDAR': 2 },
  },
  {
    name: 'Veggie Burger',
    description: 'Black bean patty and cheddar in a brioche bun',
    prices: { EUR: 950, GBP: 850, USD: 1150 },
    uses: { 'BUN-BRIOCHE': 1, 'PATTY-VEG': 1, 'CHEESE-CHEDDAR': 1 },
  },
  {
    name: 'Fries',
    description: 'Skin-on fries with sea salt',
    prices: { EUR: 390, GBP: 350, USD: 495 },
    uses: { 'FRIES-PORTION': 1 },
  },
  {
    name: 'Cola',
    description: 'Ice-cold, 330 ml can',
    prices: { EUR: 290, GBP: 250, USD: 325 },
    uses: { 'COLA-CAN': 1 },
  },
];

/**
 * A fixed, valid v4-shaped UUID per demo row: `kind` 1 outlets, 2 stock
 * items, 3 menu items; `outlet` and `item` number the row within its kind.
 */
export function demoId(kind: number, outlet: number, item = 0): string {
  const tail = `${String(kind).padStart(4, '0')}${String(outlet).padStart(4, '0')}${String(item).padStart(4, '0')}`;
  return `0de30000-0000-4000-8000-${tail}`;
}

/** Demo outlets, menus and stock for `npm start`; safe to run twice. */
export async function seedOrdersDemoData(context: ServiceContext): Promise<void> {
  const db = context.database.typed<OrdersSchema>();
  await db.transaction(async (trx) => {
    for (const [outletIndex, outlet] of DEMO_OUTLETS.entries()) {
      const outletId = demoId(1, outletIndex + 1);
      await trx
        .insertInto('orders.outlets')
        .values({ id: outletId, name: outlet.name, currency: outlet.currency, time_zone: outlet.timeZone })
        .onConflict((conflict) => conflict.column('id').doNothing())
        .execute();
      const stockIds = new Map<string, string>();
      for (const [stockIndex, stock] of DEMO_STOCK.entries()) {
        const stockItemId = demoId(2, outletIndex + 1, stockIndex + 1);
        stockIds.set(stock.sku, stockItemId);
        await trx
          .insertInto('orders.stock_items')
          .values({
            id: stockItemId,
            outlet_id: outletId,
            sku: stock.sku,
            name: stock.name,
            unit: stock.unit,
            on_hand: stock.onHand,
            low_stock_threshold: stock.threshold,
          })
          .onConflict((conflict) => conflict.doNothing())
          .execute();
      }
      for (const [menuIndex, item] of DEMO_MENU.entries()) {
        const menuItemId = demoId(3, outletIndex + 1, menuIndex + 1);
        const price = item.prices[outlet.currency];
        if (price === undefined)
          throw new Error(`demo menu item ${item.name} has no ${outlet.currency} price`);
        await trx
          .insertInto('orders.menu_items')
          .values({
            id: menuItemId,
            outlet_id: outletId,
            name: item.name,
            description: item.description,
            price_minor: price,
            currency: outlet.currency,
          })
          .onConflict((conflict) => conflict.column('id').doNothing())
          .execute();
        for (const [sku, quantity] of Object.entries(item.uses)) {
          const stockItemId = stockIds.get(sku);
          if (stockItemId === undefined)
            throw new Error(`demo menu item ${item.name} uses unknown sku ${sku}`);
          await trx
            .insertInto('orders.menu_item_components')
            .values({ menu_item_id: menuItemId, stock_item_id: stockItemId, outlet_id: outletId, quantity })
            .onConflict((conflict) => conflict.columns(['menu_item_id', 'stock_item_id']).doNothing())
            .execute();
        }
      }
    }
  });
  context.logger.info(
    {
      outlets: DEMO_OUTLETS.length,
      stockItemsPerOutlet: DEMO_STOCK.length,
      menuItemsPerOutlet: DEMO_MENU.length,
    },
    'orders demo data present',
  );
}
