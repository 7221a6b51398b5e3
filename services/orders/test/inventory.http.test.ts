import { randomUUID } from 'node:crypto';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import {
  createTestOutlet,
  type OrdersCaller,
  readStock,
  signInCustomer,
  signInOrdersAdmin,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

// The limiter is tested elsewhere; the concurrency test fires 50 requests as one caller.
const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const pool = () => harness.testDb.database.pool;

let outlet: TestOutlet;
let otherOutlet: TestOutlet;
let staff: OrdersCaller;
let otherStaff: OrdersCaller;
let customer: OrdersCaller;
let admin: OrdersCaller;

beforeAll(async () => {
  const { testApp, testDb } = harness;
  outlet = await createTestOutlet(testDb.database);
  otherOutlet = await createTestOutlet(testDb.database);
  staff = await signInStaff(testApp, testDb.database, [outlet.id]);
  otherStaff = await signInStaff(testApp, testDb.database, [otherOutlet.id]);
  customer = await signInCustomer(testApp);
  admin = await signInOrdersAdmin(testApp);
});

/** A fresh outlet with one stock item, so tests never share stock. */
async function outletWithStock(stock: { onHand: number; threshold?: number; reserved?: number }) {
  const created = await createTestOutlet(harness.testDb.database, {
    stock: [{ sku: 'BUN', onHand: stock.onHand, threshold: stock.threshold ?? 0 }],
    menu: [],
  });
  const stockItemId = created.stock.BUN as string;
  if (stock.reserved !== undefined) {
    await pool().query('update orders.stock_items set reserved = $2 where id = $1', [
      stockItemId,
      stock.reserved,
    ]);
  }
  const caller = await signInStaff(harness.testApp, harness.testDb.database, [created.id]);
  return { outlet: created, stockItemId, caller };
}

function adjust(
  caller: { authorization: string } | undefined,
  outletId: string,
  stockItemId: string,
  payload: object,
  headers: Record<string, string> = {},
) {
  return inject({
    method: 'POST',
    url: `/orders/outlets/${outletId}/inventory/${stockItemId}/adjustments`,
    payload,
    headers: { ...(caller === undefined ? {} : { authorization: caller.authorization }), ...headers },
  });
}

function listInventory(caller: { authorization: string } | undefined, outletId: string, query = '') {
  return inject({
    method: 'GET',
    url: `/orders/outlets/${outletId}/inventory${query}`,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

async function countAdjustments(stockItemId: string): Promise<number> {
  const result = await pool().query<{ count: string }>(
    'select count(*) from orders.inventory_adjustments where stock_item_id = $1',
    [stockItemId],
  );
  return Number(result.rows[0]?.count);
}

async function auditEventsFor(stockItemId: string) {
  const result = await pool().query<{
    actor_id: string;
    actor_type: string;
    changes: Record<string, unknown>;
  }>(
    `select actor_id, actor_type, changes from platform.audit_events
     where action = 'orders.inventory_adjusted' and resource_type = 'stock_item' and resource_id = $1
     order by id`,
    [stockItemId],
  );
  return result.rows;
}

describe('POST /orders/outlets/:outletId/inventory/:stockItemId/adjustments (adjustInventory)', () => {
  it('adds a delivery, bumps the version, returns the item with its ETag and records adjustment and audit', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 100 });
    const response = await adjust(caller, own.id, stockItemId, {
      delta: 50,
      reason: 'delivery',
      note: 'Tuesday bakery run',
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers.etag).toBe('"2"');
    expect(response.json()).toEqual({
      id: stockItemId,
      outlet_id: own.id,
      sku: 'BUN',
      name: 'bun',
      unit: 'each',
      on_hand: 150,
      reserved: 0,
      available: 150,
      low_stock_threshold: 0,
      is_low: false,
      version: 2,
      updated_at: expect.any(String),
    });
    expect(await readStock(harness.testDb.database, stockItemId)).toEqual({ onHand: 150, reserved: 0 });

    const adjustments = await pool().query(
      'select delta, reason, note, on_hand_after, adjusted_by, outlet_id from orders.inventory_adjustments where stock_item_id = $1',
      [stockItemId],
    );
    expect(adjustments.rows).toEqual([
      {
        delta: 50,
        reason: 'delivery',
        note: 'Tuesday bakery run',
        on_hand_after: 150,
        adjusted_by: caller.account.id,
        outlet_id: own.id,
      },
    ]);
    expect(await auditEventsFor(stockItemId)).toEqual([
      {
        actor_id: caller.account.id,
        actor_type: 'user',
        changes: { on_hand: { from: 100, to: 150 }, delta: 50, reason: 'delivery', outlet_id: own.id },
      },
    ]);
  });

  it('removes waste down to exactly what is reserved', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 40, reserved: 10 });
    const response = await adjust(caller, own.id, stockItemId, { delta: -30, reason: 'waste' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ on_hand: 10, reserved: 10, available: 0, version: 2 });
    expect(await auditEventsFor(stockItemId)).toHaveLength(1);
  });

  it('refuses with 409 orders.stock_would_go_negative naming what is available, and changes nothing', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 30, reserved: 20 });
    const response = await adjust(caller, own.id, stockItemId, { delta: -15, reason: 'count_correction' });
    expect(response.statusCode).toBe(409);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      code: 'orders.stock_would_go_negative',
      available: 10,
      on_hand: 30,
      reserved: 20,
    });
    const row = await pool().query(
      'select on_hand, reserved, version from orders.stock_items where id = $1',
      [stockItemId],
    );
    expect(row.rows).toEqual([{ on_hand: 30, reserved: 20, version: 1 }]);
    expect(await countAdjustments(stockItemId)).toBe(0);
    expect(await auditEventsFor(stockItemId)).toEqual([]);
  });

  it('refuses with 409 orders.stock_would_exceed_maximum past ten million on hand', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 9_999_990 });
    const response = await adjust(caller, own.id, stockItemId, { delta: 11, reason: 'delivery' });
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('orders.stock_would_exceed_maximum');
    expect(await readStock(harness.testDb.database, stockItemId)).toEqual({ onHand: 9_999_990, reserved: 0 });
  });

  it('lets exactly as many of 50 parallel −1 adjustments succeed as there is stock, never going negative', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 30 });
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => adjust(caller, own.id, stockItemId, { delta: -1, reason: 'waste' })),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 200)).toHaveLength(30);
    expect(statuses.filter((status) => status === 409)).toHaveLength(20);
    for (const refused of responses.filter((response) => response.statusCode === 409)) {
      expect(refused.json().code).toBe('orders.stock_would_go_negative');
    }
    const row = await pool().query('select on_hand, version from orders.stock_items where id = $1', [
      stockItemId,
    ]);
    expect(row.rows).toEqual([{ on_hand: 0, version: 31 }]);
    expect(await countAdjustments(stockItemId)).toBe(30);
    const onHandAfter = await pool().query<{ on_hand_after: number }>(
      'select on_hand_after from orders.inventory_adjustments where stock_item_id = $1 order by on_hand_after desc',
      [stockItemId],
    );
    // Every success saw a distinct stock level: 29 down to 0, none skipped or repeated.
    expect(onHandAfter.rows.map((adjustment) => adjustment.on_hand_after)).toEqual(
      Array.from({ length: 30 }, (_, index) => 29 - index),
    );
  });

  it('answers 412 orders.stock_item_changed for a stale If-Match, and applies a current one', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 100 });
    const first = await adjust(
      caller,
      own.id,
      stockItemId,
      { delta: 5, reason: 'delivery' },
      { 'if-match': '"1"' },
    );
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe('"2"');

    const stale = await adjust(
      caller,
      own.id,
      stockItemId,
      { delta: 5, reason: 'delivery' },
      { 'if-match': '"1"' },
    );
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toMatchObject({ code: 'orders.stock_item_changed', current_version: 2 });
    expect(await readStock(harness.testDb.database, stockItemId)).toEqual({ onHand: 105, reserved: 0 });
    expect(await countAdjustments(stockItemId)).toBe(1);

    const current = await adjust(
      caller,
      own.id,
      stockItemId,
      { delta: -5, reason: 'waste' },
      { 'if-match': '"2"' },
    );
    expect(current.statusCode).toBe(200);
    expect(current.json()).toMatchObject({ on_hand: 100, version: 3 });

    const any = await adjust(caller, own.id, stockItemId, { delta: 1, reason: 'other' }, { 'if-match': '*' });
    expect(any.statusCode).toBe(200);
  });

  it('refuses a malformed If-Match with 400 orders.invalid_if_match', async () => {
    const { outlet: own, stockItemId, caller } = await outletWithStock({ onHand: 100 });
    const response = await adjust(
      caller,
      own.id,
      stockItemId,
      { delta: 1, reason: 'delivery' },
      { 'if-match': 'two' },
    );
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('orders.invalid_if_match');
    expect(await countAdjustments(stockItemId)).toBe(0);
  });

  it.each([
    ['a zero delta', { delta: 0, reason: 'delivery' }],
    ['a delta past the bound', { delta: 100_001, reason: 'delivery' }],
    ['a fractional delta', { delta: 1.5, reason: 'delivery' }],
    ['a delta sent as a string', { delta: '5', reason: 'delivery' }],
    ['an unknown reason', { delta: 1, reason: 'theft' }],
    ['a missing reason', { delta: 1 }],
    ['an unknown property', { delta: 1, reason: 'delivery', on_hand: 1000 }],
    ['a note over 500 characters', { delta: 1, reason: 'delivery', note: 'x'.repeat(501) }],
  ])('refuses %s with 400 problem+json', async (_label, payload) => {
    const response = await adjust(staff, outlet.id, outlet.stock.BUN as string, payload);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().errors?.length).toBeGreaterThan(0);
  });

  it('answers 404 orders.stock_item_not_found for an unknown item and for another outlet’s item', async () => {
    const unknown = await adjust(staff, outlet.id, randomUUID(), { delta: 1, reason: 'delivery' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('orders.stock_item_not_found');

    // The admin may act for both outlets, but the item must belong to the outlet in the path.
    const foreign = await adjust(admin, outlet.id, otherOutlet.stock.BUN as string, {
      delta: 1,
      reason: 'delivery',
    });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe('orders.stock_item_not_found');
    expect(await readStock(harness.testDb.database, otherOutlet.stock.BUN as string)).toEqual({
      onHand: 100,
      reserved: 0,
    });
  });

  it('answers staff of another outlet 404 orders.outlet_not_found and changes nothing', async () => {
    const response = await adjust(otherStaff, outlet.id, outlet.stock.CAN as string, {
      delta: -1,
      reason: 'waste',
    });
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('orders.outlet_not_found');
    expect(await readStock(harness.testDb.database, outlet.stock.CAN as string)).toEqual({
      onHand: 100,
      reserved: 0,
    });
  });

  it('refuses a customer with 403 and an anonymous caller with 401', async () => {
    const asCustomer = await adjust(customer, outlet.id, outlet.stock.CAN as string, {
      delta: 1,
      reason: 'delivery',
    });
    expect(asCustomer.statusCode).toBe(403);
    expect(asCustomer.json().code).toBe('auth.forbidden');
    const anonymous = await adjust(undefined, outlet.id, outlet.stock.CAN as string, {
      delta: 1,
      reason: 'delivery',
    });
    expect(anonymous.statusCode).toBe(401);
    expect(await readStock(harness.testDb.database, outlet.stock.CAN as string)).toEqual({
      onHand: 100,
      reserved: 0,
    });
  });

  it('lets an orders admin adjust any outlet', async () => {
    const { outlet: own, stockItemId } = await outletWithStock({ onHand: 10 });
    const response = await adjust(admin, own.id, stockItemId, { delta: 3, reason: 'count_correction' });
    expect(response.statusCode).toBe(200);
    expect(response.json().on_hand).toBe(13);
    expect((await auditEventsFor(stockItemId))[0]?.actor_id).toBe(admin.account.id);
  });
});

describe('GET /orders/outlets/:outletId/inventory (listInventory)', () => {
  let listed: TestOutlet;
  let caller: OrdersCaller;

  beforeAll(async () => {
    listed = await createTestOutlet(harness.testDb.database, {
      stock: [
        { sku: 'BUN', name: 'Brioche bun', onHand: 100, threshold: 10 },
        { sku: 'BUN_SEEDED', name: 'Seeded bun', onHand: 5, threshold: 10 },
        { sku: 'CHEESE', name: 'Cheddar slice', onHand: 50, threshold: 60 },
        { sku: 'PATTY-BEEF', name: 'Beef patty', onHand: 80, threshold: 10 },
        { sku: 'PATTY-VEG', name: 'Bean patty', onHand: 20, threshold: 10 },
      ],
      menu: [],
    });
    // Reserved stock counts against availability: 20 on hand, 15 held, 5 available < 10.
    await pool().query('update orders.stock_items set reserved = 15 where id = $1', [
      listed.stock['PATTY-VEG'],
    ]);
    caller = await signInStaff(harness.testApp, harness.testDb.database, [listed.id]);
  });

  const skusOf = (body: { items: { sku: string }[] }) => body.items.map((item) => item.sku);

  it('lists every item in sku order with availability and low flags', async () => {
    const response = await listInventory(caller, listed.id);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(skusOf(body)).toEqual(['BUN', 'BUN_SEEDED', 'CHEESE', 'PATTY-BEEF', 'PATTY-VEG']);
    expect(body.next_cursor).toBeNull();
    expect(body.items[4]).toEqual({
      id: listed.stock['PATTY-VEG'],
      outlet_id: listed.id,
      sku: 'PATTY-VEG',
      name: 'Bean patty',
      unit: 'each',
      on_hand: 20,
      reserved: 15,
      available: 5,
      low_stock_threshold: 10,
      is_low: true,
      version: 1,
      updated_at: expect.any(String),
    });
  });

  it('filters to low items with low_only=true', async () => {
    const response = await listInventory(caller, listed.id, '?low_only=true');
    expect(skusOf(response.json())).toEqual(['BUN_SEEDED', 'CHEESE', 'PATTY-VEG']);
    expect(response.json().items.every((item: { is_low: boolean }) => item.is_low)).toBe(true);
  });

  it('filters by sku prefix, treating _ as a literal character', async () => {
    expect(skusOf((await listInventory(caller, listed.id, '?sku=PATTY')).json())).toEqual([
      'PATTY-BEEF',
      'PATTY-VEG',
    ]);
    expect(skusOf((await listInventory(caller, listed.id, '?sku=BUN_')).json())).toEqual(['BUN_SEEDED']);
  });

  it('searches names case-insensitively with q, combined with the other filters', async () => {
    expect(skusOf((await listInventory(caller, listed.id, '?q=BUN')).json())).toEqual(['BUN', 'BUN_SEEDED']);
    expect(skusOf((await listInventory(caller, listed.id, '?q=patty&low_only=true')).json())).toEqual([
      'PATTY-VEG',
    ]);
    expect(skusOf((await listInventory(caller, listed.id, '?q=%25')).json())).toEqual([]);
  });

  it('pages through with the cursor, each item exactly once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const response = await listInventory(caller, listed.id, query);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...skusOf(body));
      cursor = body.next_cursor;
      pages += 1;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual(['BUN', 'BUN_SEEDED', 'CHEESE', 'PATTY-BEEF', 'PATTY-VEG']);
  });

  it('refuses a forged cursor, an unknown filter and a bad limit with 400', async () => {
    const forged = await listInventory(caller, listed.id, '?cursor=bm90LWEtY3Vyc29y');
    expect(forged.statusCode).toBe(400);
    expect(forged.json().code).toBe('orders.invalid_cursor');
    expect((await listInventory(caller, listed.id, '?outlet=all')).statusCode).toBe(400);
    expect((await listInventory(caller, listed.id, '?limit=0')).statusCode).toBe(400);
    expect((await listInventory(caller, listed.id, '?sku=%25')).statusCode).toBe(400);
  });

  it('answers staff of another outlet and an unknown outlet 404 orders.outlet_not_found', async () => {
    const foreign = await listInventory(otherStaff, listed.id);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe('orders.outlet_not_found');
    const unknown = await listInventory(admin, randomUUID());
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('orders.outlet_not_found');
  });

  it('refuses a customer with 403 and an anonymous caller with 401, and lets an admin list any outlet', async () => {
    expect((await listInventory(customer, listed.id)).statusCode).toBe(403);
    expect((await listInventory(undefined, listed.id)).statusCode).toBe(401);
    const asAdmin = await listInventory(admin, listed.id);
    expect(asAdmin.statusCode).toBe(200);
    expect(asAdmin.json().items).toHaveLength(5);
  });
});
