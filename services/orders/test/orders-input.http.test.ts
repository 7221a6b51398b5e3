import { randomUUID } from 'node:crypto';
import { useTestApp } from '@keel/platform/testing';
import type { Response } from 'light-my-request';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OrdersSchema } from '../src/database.ts';
import { ordersModule } from '../src/index.ts';
import {
  createTestOutlet,
  type OrdersCaller,
  signInCustomer,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

// Bad input never reaches the stock: after every refused request the outlet's
// stock is exactly what it was, and no order exists for it.
const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });

function requireId(id: string | undefined): string {
  if (id === undefined) throw new Error('fixture id missing');
  return id;
}

function placeRaw(caller: OrdersCaller, payload: unknown, headers: Record<string, string> = {}) {
  return harness.testApp.app.inject({
    method: 'POST',
    url: '/orders',
    headers: { authorization: caller.authorization, 'idempotency-key': randomUUID(), ...headers },
    payload: payload as object,
  });
}

function expectProblem(response: Response, status: number, code: string): Record<string, unknown> {
  expect({ status: response.statusCode, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json<Record<string, unknown>>();
  expect(problem).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+/);
  return problem;
}

type StockSnapshot = { id: string; on_hand: number; reserved: number; version: number }[];

async function snapshotStock(outlet: TestOutlet): Promise<StockSnapshot> {
  return harness.testDb.database
    .typed<OrdersSchema>()
    .run((db) =>
      db
        .selectFrom('orders.stock_items')
        .select(['id', 'on_hand', 'reserved', 'version'])
        .where('outlet_id', '=', outlet.id)
        .orderBy('id')
        .execute(),
    );
}

async function countOrders(outlet: TestOutlet): Promise<number> {
  const result = await harness.testDb.database.pool.query<{ count: number }>(
    'select count(*)::int as count from orders.orders where outlet_id = $1',
    [outlet.id],
  );
  return result.rows[0]?.count ?? -1;
}

let customer: OrdersCaller;
let outlet: TestOutlet;
let otherOutlet: TestOutlet;
let stockBefore: StockSnapshot;
let ordersBefore: number;
let burger: string;

beforeAll(async () => {
  customer = await signInCustomer(harness.testApp);
  outlet = await createTestOutlet(harness.testDb.database, {
    menu: [
      { name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } },
      { name: 'Fries', priceMinor: 349, uses: { POTATO: 1 } },
      { name: 'Seasonal', priceMinor: 499, uses: { POTATO: 1 }, isAvailable: false },
    ],
  });
  otherOutlet = await createTestOutlet(harness.testDb.database);
  burger = requireId(outlet.menu.Burger);
});

// Every test in the placement block must leave the stock as it found it.
beforeEach(async () => {
  stockBefore = await snapshotStock(outlet);
  ordersBefore = await countOrders(outlet);
});

async function expectNothingPlaced(): Promise<void> {
  expect(await snapshotStock(outlet)).toEqual(stockBefore);
  expect(await countOrders(outlet)).toBe(ordersBefore);
}

describe('placeOrder refuses bad input and touches no stock', () => {
  it('refuses an unknown menu item with 422 orders.unknown_menu_item, pointing at the line', async () => {
    const unknown = randomUUID();
    const response = await placeRaw(customer, {
      outlet_id: outlet.id,
      lines: [
        { menu_item_id: burger, quantity: 1 },
        { menu_item_id: unknown, quantity: 1 },
      ],
    });
    const problem = expectProblem(response, 422, 'orders.unknown_menu_item');
    expect(problem.menu_item_ids).toEqual([unknown]);
    expect(problem.errors).toEqual([{ pointer: '/body/lines/1/menu_item_id', detail: expect.any(String) }]);
    await expectNothingPlaced();
  });

  it("refuses another outlet's menu item as unknown (422 orders.unknown_menu_item)", async () => {
    const foreign = requireId(otherOutlet.menu.Burger);
    const response = await placeRaw(customer, {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: foreign, quantity: 1 }],
    });
    expect(expectProblem(response, 422, 'orders.unknown_menu_item').menu_item_ids).toEqual([foreign]);
    await expectNothingPlaced();
    expect((await snapshotStock(otherOutlet)).map((row) => row.reserved)).toEqual([0, 0, 0, 0]);
  });

  it('refuses an unavailable menu item with 422 orders.menu_item_unavailable', async () => {
    const response = await placeRaw(customer, {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: requireId(outlet.menu.Seasonal), quantity: 1 }],
    });
    expectProblem(response, 422, 'orders.menu_item_unavailable');
    await expectNothingPlaced();
  });

  it('refuses an unknown outlet with 404 orders.outlet_not_found', async () => {
    const response = await placeRaw(customer, {
      outlet_id: randomUUID(),
      lines: [{ menu_item_id: burger, quantity: 1 }],
    });
    expectProblem(response, 404, 'orders.outlet_not_found');
    await expectNothingPlaced();
  });

  it('refuses an inactive outlet with 422 orders.outlet_inactive', async () => {
    const closed = await createTestOutlet(harness.testDb.database);
    await harness.testDb.database.pool.query('update orders.outlets set is_active = false where id = $1', [
      closed.id,
    ]);
    const before = await snapshotStock(closed);
    const response = await placeRaw(customer, {
      outlet_id: closed.id,
      lines: [{ menu_item_id: requireId(closed.menu.Burger), quantity: 1 }],
    });
    expectProblem(response, 422, 'orders.outlet_inactive');
    expect(await snapshotStock(closed)).toEqual(before);
    expect(await countOrders(closed)).toBe(0);
  });

  it.each([
    ['zero', 0],
    ['negative', -1],
    ['fractional', 1.5],
    ['above 100', 101],
    ['a billion', 1_000_000_000],
    ['beyond 2^53', 2 ** 60],
    ['a string', '2'],
    ['null', null],
  ])('refuses a %s quantity with 400 request.invalid at the line', async (_label, quantity) => {
    const response = await placeRaw(customer, {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: burger, quantity }],
    });
    const problem = expectProblem(response, 400, 'request.invalid');
    expect(problem.errors).toContainEqual({ pointer: '/body/lines/0/quantity', detail: expect.any(String) });
    await expectNothingPlaced();
  });

  it.each([
    ['no lines', { lines: [] }],
    ['51 lines', { lines: Array.from({ length: 51 }, () => ({ menu_item_id: randomUUID(), quantity: 1 })) }],
    ['lines missing', { lines: undefined }],
    ['a malformed menu item id', { lines: [{ menu_item_id: 'burger', quantity: 1 }] }],
    ['a malformed outlet id', { outlet_id: 'outlet-1' }],
    ['a note over 500 characters', { note: 'x'.repeat(501) }],
    ['a control character in the note', { note: 'hi\u0000there' }],
    ['an empty delivery address', { delivery_address: '' }],
  ])('refuses %s with 400 request.invalid', async (_label, overrides) => {
    const response = await placeRaw(customer, {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: burger, quantity: 1 }],
      ...overrides,
    });
    expectProblem(response, 400, 'request.invalid');
    await expectNothingPlaced();
  });

  it('refuses the same menu item on two lines with 400 orders.duplicate_menu_item', async () => {
    const response = await placeRaw(customer, {
      outlet_id: outlet.id,
      lines: [
        { menu_item_id: burger, quantity: 1 },
        { menu_item_id: burger, quantity: 2 },
      ],
    });
    const problem = expectProblem(response, 400, 'orders.duplicate_menu_item');
    expect(problem.errors).toEqual([{ pointer: '/body/lines/1/menu_item_id', detail: expect.any(String) }]);
    await expectNothingPlaced();
  });

  it.each([
    ['a line price', { lines: [{ menu_item_id: 'BURGER', quantity: 1, price: 1 }] }, '/body/lines/0/price'],
    [
      'a line unit_price_minor',
      { lines: [{ menu_item_id: 'BURGER', quantity: 1, unit_price_minor: 1 }] },
      '/body/lines/0/unit_price_minor',
    ],
    ['an order total', { total_minor: 1 }, '/body/total_minor'],
    ['a status', { status: 'DELIVERED' }, '/body/status'],
  ])(
    'refuses a client-supplied %s with 400 request.invalid: prices are the server’s',
    async (_label, extra, pointer) => {
      const body = JSON.parse(
        JSON.stringify({
          outlet_id: outlet.id,
          lines: [{ menu_item_id: burger, quantity: 1 }],
          ...extra,
        }).replace('BURGER', burger),
      );
      const response = await placeRaw(customer, body);
      const problem = expectProblem(response, 400, 'request.invalid');
      expect(problem.errors).toContainEqual({ pointer, detail: 'is not an allowed property' });
      await expectNothingPlaced();
    },
  );

  it('refuses malformed JSON with 400 request.malformed_json', async () => {
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/orders',
      headers: {
        authorization: customer.authorization,
        'idempotency-key': randomUUID(),
        'content-type': 'application/json',
      },
      body: `{"outlet_id": "${outlet.id}", "lines": [`,
    });
    expectProblem(response, 400, 'request.malformed_json');
    await expectNothingPlaced();
  });

  it('refuses a non-JSON content type with 415', async () => {
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/orders',
      headers: {
        authorization: customer.authorization,
        'idempotency-key': randomUUID(),
        'content-type': 'text/plain',
      },
      body: 'one burger please',
    });
    expectProblem(response, 415, 'request.unsupported_media_type');
    await expectNothingPlaced();
  });

  it('requires an Idempotency-Key: 400 idempotency.key_required without one', async () => {
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: '/orders',
      headers: { authorization: customer.authorization },
      payload: { outlet_id: outlet.id, lines: [{ menu_item_id: burger, quantity: 1 }] },
    });
    expectProblem(response, 400, 'idempotency.key_required');
    await expectNothingPlaced();
  });

  it('refuses an Idempotency-Key with control characters: 400 idempotency.key_invalid', async () => {
    const response = await placeRaw(
      customer,
      { outlet_id: outlet.id, lines: [{ menu_item_id: burger, quantity: 1 }] },
      { 'idempotency-key': 'key with spaces' },
    );
    expectProblem(response, 400, 'idempotency.key_invalid');
    await expectNothingPlaced();
  });

  it('refuses a reused Idempotency-Key with a different body: 422 idempotency.key_reused, no second order', async () => {
    const key = randomUUID();
    const scratch = await createTestOutlet(harness.testDb.database);
    const first = await placeRaw(
      customer,
      { outlet_id: scratch.id, lines: [{ menu_item_id: requireId(scratch.menu.Burger), quantity: 1 }] },
      { 'idempotency-key': key },
    );
    expect(first.statusCode).toBe(201);
    const second = await placeRaw(
      customer,
      { outlet_id: outlet.id, lines: [{ menu_item_id: burger, quantity: 1 }] },
      { 'idempotency-key': key },
    );
    expectProblem(second, 422, 'idempotency.key_reused');
    await expectNothingPlaced();
  });

  it('refuses more than the stock with 409 orders.out_of_stock and reserves none of the other items', async () => {
    const small = await createTestOutlet(harness.testDb.database, {
      stock: [
        { sku: 'BUN', onHand: 2 },
        { sku: 'PATTY', onHand: 5 },
        { sku: 'POTATO', onHand: 50 },
      ],
      menu: [
        { name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } },
        { name: 'Fries', priceMinor: 349, uses: { POTATO: 1 } },
      ],
    });
    const before = await snapshotStock(small);
    const response = await placeRaw(customer, {
      outlet_id: small.id,
      lines: [
        { menu_item_id: requireId(small.menu.Fries), quantity: 1 },
        { menu_item_id: requireId(small.menu.Burger), quantity: 3 },
      ],
    });
    const problem = expectProblem(response, 409, 'orders.out_of_stock');
    expect(problem.short_items).toEqual([
      {
        stock_item_id: small.stock.BUN,
        sku: 'BUN',
        requested: 3,
        available: 2,
        menu_items: [{ menu_item_id: small.menu.Burger, name: 'Burger' }],
      },
    ]);
    // The potatoes and patties, which were there, were not reserved either.
    expect(await snapshotStock(small)).toEqual(before);
    expect(await countOrders(small)).toBe(0);
  });
});

describe('foreign and malformed order ids', () => {
  let order: { id: string };
  let otherCustomer: OrdersCaller;

  beforeAll(async () => {
    const scratch = await createTestOutlet(harness.testDb.database);
    const response = await placeRaw(customer, {
      outlet_id: scratch.id,
      lines: [{ menu_item_id: requireId(scratch.menu.Burger), quantity: 1 }],
    });
    expect(response.statusCode).toBe(201);
    order = response.json();
    otherCustomer = await signInCustomer(harness.testApp);
  });

  it("answers 404 orders.order_not_found to another customer's fetch and cancel", async () => {
    const fetched = await harness.testApp.app.inject({
      method: 'GET',
      url: `/orders/${order.id}`,
      headers: { authorization: otherCustomer.authorization },
    });
    expectProblem(fetched, 404, 'orders.order_not_found');
    const cancelled = await harness.testApp.app.inject({
      method: 'POST',
      url: `/orders/${order.id}/cancel`,
      headers: { authorization: otherCustomer.authorization },
      payload: {},
    });
    expectProblem(cancelled, 404, 'orders.order_not_found');
    const own = await harness.testApp.app.inject({
      method: 'GET',
      url: `/orders/${order.id}`,
      headers: { authorization: customer.authorization },
    });
    expect(own.json()).toMatchObject({ status: 'PLACED' });
  });

  it.each([
    ['GET', '/orders/not-a-uuid'],
    ['POST', '/orders/not-a-uuid/cancel'],
    ['GET', "/orders/1' or '1'='1"],
  ] as const)('refuses %s %s with 400 request.invalid', async (method, url) => {
    const response = await harness.testApp.app.inject({
      method,
      url,
      headers: { authorization: customer.authorization },
      ...(method === 'POST' ? { payload: {} } : {}),
    });
    expectProblem(response, 400, 'request.invalid');
  });

  it('refuses a cancel reason that is not a string, or too long, with 400 request.invalid', async () => {
    for (const body of [{ reason: 42 }, { reason: 'x'.repeat(501) }, { reason: 'ok', extra: true }]) {
      const response = await harness.testApp.app.inject({
        method: 'POST',
        url: `/orders/${order.id}/cancel`,
        headers: { authorization: customer.authorization },
        payload: body,
      });
      expectProblem(response, 400, 'request.invalid');
    }
  });

  it('refuses an unknown status value with 400 request.invalid, before any access check', async () => {
    const staff = await signInStaff(harness.testApp, harness.testDb.database, []);
    for (const status of ['PLACED', 'CANCELLED', 'LOST', 3]) {
      const response = await harness.testApp.app.inject({
        method: 'POST',
        url: `/orders/${order.id}/status`,
        headers: { authorization: staff.authorization, 'if-match': '"1"' },
        payload: { status },
      });
      expectProblem(response, 400, 'request.invalid');
    }
  });
});
