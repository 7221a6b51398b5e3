import { randomUUID } from 'node:crypto';
import type { Clock } from '@keel/platform/module';
import { useTestApp } from '@keel/platform/testing';
import type { Response } from 'light-my-request';
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

// A clock the tests move: listing filters and pagination need distinct
// placement times without sleeping.
let nowMs = Date.now();
const clock: Clock = { now: () => new Date(nowMs) };
function advanceClock(ms = 1000): void {
  nowMs += ms;
}

const harness = useTestApp({ modules: [ordersModule], clock });

type LineInput = { menu_item_id: string; quantity: number };
type OrderBody = {
  id: string;
  outlet_id: string;
  customer_id: string;
  status: string;
  version: number;
  total_minor: number;
  lines: { line_number: number; menu_item_id: string; name: string; quantity: number }[];
  placed_at: string;
  [field: string]: unknown;
};

function inject(
  caller: OrdersCaller,
  request: { method: 'GET' | 'POST'; url: string; [key: string]: unknown },
) {
  const { headers, ...rest } = request as { headers?: Record<string, string> };
  return harness.testApp.app.inject({
    ...(rest as { method: 'GET' | 'POST'; url: string }),
    headers: { authorization: caller.authorization, ...headers },
  });
}

function placeOrder(
  caller: OrdersCaller,
  body: { outlet_id: string; lines: LineInput[]; [field: string]: unknown },
  key: string = randomUUID(),
) {
  return inject(caller, {
    method: 'POST',
    url: '/orders',
    headers: { 'idempotency-key': key },
    payload: body,
  });
}

async function placeOk(caller: OrdersCaller, outlet: TestOutlet, lines?: LineInput[]): Promise<OrderBody> {
  const response = await placeOrder(caller, {
    outlet_id: outlet.id,
    lines: lines ?? [{ menu_item_id: requireId(outlet.menu.Burger), quantity: 1 }],
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<OrderBody>();
}

function changeStatus(caller: OrdersCaller, orderId: string, status: string, ifMatch?: string) {
  return inject(caller, {
    method: 'POST',
    url: `/orders/${orderId}/status`,
    headers: ifMatch === undefined ? {} : { 'if-match': ifMatch },
    payload: { status },
  });
}

function cancelOrder(caller: OrdersCaller, orderId: string, body: object = {}, ifMatch?: string) {
  return inject(caller, {
    method: 'POST',
    url: `/orders/${orderId}/cancel`,
    headers: ifMatch === undefined ? {} : { 'if-match': ifMatch },
    payload: body,
  });
}

function getOrder(caller: OrdersCaller, orderId: string) {
  return inject(caller, { method: 'GET', url: `/orders/${orderId}` });
}

function listOrders(caller: OrdersCaller, query: string) {
  return inject(caller, { method: 'GET', url: `/orders?${query}` });
}

/** Advances an order through the statuses, as staff, checking each step succeeds. */
async function advance(staff: OrdersCaller, order: OrderBody, statuses: string[]): Promise<OrderBody> {
  let current = order;
  for (const status of statuses) {
    const response = await changeStatus(staff, current.id, status, `"${current.version}"`);
    expect(response.statusCode, response.body).toBe(200);
    current = response.json<OrderBody>();
  }
  return current;
}

function requireId(id: string | undefined): string {
  if (id === undefined) throw new Error('fixture id missing');
  return id;
}

function expectProblem(response: Response, status: number, code: string): Record<string, unknown> {
  expect({ status: response.statusCode, body: response.body }).toMatchObject({ status });
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json<Record<string, unknown>>();
  expect(problem).toMatchObject({ status, code });
  return problem;
}

type EventRow = { type: string; payload: Record<string, unknown> };

async function eventsOf(aggregateId: string): Promise<EventRow[]> {
  const result = await harness.testDb.database.pool.query<EventRow>(
    'select type, payload from platform.outbox_events where aggregate_id = $1 order by position',
    [aggregateId],
  );
  return result.rows;
}

async function reservationsOf(orderId: string) {
  const result = await harness.testDb.database.pool.query<{
    stock_item_id: string;
    quantity: number;
    settlement: string | null;
  }>(
    'select stock_item_id, quantity, settlement from orders.order_reservations where order_id = $1 order by stock_item_id',
    [orderId],
  );
  return result.rows;
}

const ALL_STEPS = ['CONFIRMED', 'PREPARING', 'READY', 'OUT_FOR_DELIVERY', 'DELIVERED'];

let customer: OrdersCaller;
let otherCustomer: OrdersCaller;
let admin: OrdersCaller;

beforeAll(async () => {
  customer = await signInCustomer(harness.testApp);
  otherCustomer = await signInCustomer(harness.testApp);
  admin = await signInOrdersAdmin(harness.testApp);
});

describe('POST /orders (placeOrder)', () => {
  it('prices the order on the server, reserves its stock and answers 201 with Location and ETag', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const burger = requireId(outlet.menu.Burger);
    const cola = requireId(outlet.menu.Cola);
    const response = await placeOrder(customer, {
      outlet_id: outlet.id,
      lines: [
        { menu_item_id: burger, quantity: 2 },
        { menu_item_id: cola, quantity: 1 },
      ],
      delivery_address: '1 Main Street\nFlat 2',
      note: 'No onions',
    });
    expect(response.statusCode, response.body).toBe(201);
    const order = response.json<OrderBody>();
    expect(order).toMatchObject({
      outlet_id: outlet.id,
      customer_id: customer.account.id,
      status: 'PLACED',
      version: 1,
      currency: 'EUR',
      total_minor: 2 * 899 + 250,
      delivery_address: '1 Main Street\nFlat 2',
      note: 'No onions',
      confirmed_at: null,
      cancelled_at: null,
      cancelled_by: null,
      lines: [
        {
          line_number: 1,
          menu_item_id: burger,
          name: 'Burger',
          quantity: 2,
          unit_price_minor: 899,
          line_total_minor: 1798,
        },
        {
          line_number: 2,
          menu_item_id: cola,
          name: 'Cola',
          quantity: 1,
          unit_price_minor: 250,
          line_total_minor: 250,
        },
      ],
    });
    expect(response.headers.location).toBe(`/orders/${order.id}`);
    expect(response.headers.etag).toBe('"1"');

    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BUN))).toEqual({
      onHand: 100,
      reserved: 2,
    });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.PATTY))).toEqual({
      onHand: 100,
      reserved: 2,
    });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.CAN))).toEqual({
      onHand: 100,
      reserved: 1,
    });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.POTATO))).toEqual({
      onHand: 100,
      reserved: 0,
    });
    expect((await reservationsOf(order.id)).map((row) => row.quantity).sort()).toEqual([1, 2, 2]);

    const fetched = await getOrder(customer, order.id);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(order);
    expect(fetched.headers.etag).toBe('"1"');
  });

  it('emits orders.order_placed.v1 for the order with its server-priced lines', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const order = await placeOk(customer, outlet, [
      { menu_item_id: requireId(outlet.menu.Fries), quantity: 3 },
    ]);
    const events = await eventsOf(order.id);
    expect(events).toEqual([
      {
        type: 'orders.order_placed.v1',
        payload: {
          orderId: order.id,
          outletId: outlet.id,
          customerId: customer.account.id,
          version: 1,
          currency: 'EUR',
          totalMinor: 3 * 349,
          lines: [{ menuItemId: outlet.menu.Fries, name: 'Fries', quantity: 3, unitPriceMinor: 349 }],
          placedAt: order.placed_at,
        },
      },
    ]);
  });

  it('replays the first response for a retried Idempotency-Key and places the order once', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const key = randomUUID();
    const body = {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: requireId(outlet.menu.Cola), quantity: 2 }],
    };
    const first = await placeOrder(customer, body, key);
    const second = await placeOrder(customer, body, key);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    expect(second.headers.location).toBe(first.headers.location);
    expect(second.headers.etag).toBe('"1"');
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.CAN))).toEqual({
      onHand: 100,
      reserved: 2,
    });
    const { rows } = await harness.testDb.database.pool.query(
      'select count(*)::int as count from orders.orders where outlet_id = $1',
      [outlet.id],
    );
    expect(rows[0].count).toBe(1);
  });

  it('emits orders.inventory_low_stock.v1 when the reservation takes an item below its threshold', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, {
      stock: [{ sku: 'CAN', onHand: 12, threshold: 10 }],
      menu: [{ name: 'Cola', priceMinor: 250, uses: { CAN: 1 } }],
    });
    const stockItemId = requireId(outlet.stock.CAN);
    await placeOk(customer, outlet, [{ menu_item_id: requireId(outlet.menu.Cola), quantity: 2 }]);
    expect(await eventsOf(stockItemId)).toEqual([]);
    await placeOk(customer, outlet, [{ menu_item_id: requireId(outlet.menu.Cola), quantity: 1 }]);
    const events = await eventsOf(stockItemId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'orders.inventory_low_stock.v1',
      payload: { stockItemId, available: 9, threshold: 10, onHand: 12, reserved: 3, cause: 'order_placed' },
    });
  });

  it('places an order that crosses one threshold once, with the alert for that item only and every reservation', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, {
      stock: [
        { sku: 'BUN', onHand: 11, threshold: 10 },
        { sku: 'PATTY', onHand: 50, threshold: 10 },
      ],
      menu: [{ name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } }],
    });
    const bun = requireId(outlet.stock.BUN);
    const patty = requireId(outlet.stock.PATTY);

    // 11 → 9 buns crosses 10; 50 → 48 patties does not.
    const order = await placeOk(customer, outlet, [
      { menu_item_id: requireId(outlet.menu.Burger), quantity: 2 },
    ]);

    expect((await eventsOf(bun)).map((event) => event.type)).toEqual(['orders.inventory_low_stock.v1']);
    expect(await eventsOf(patty)).toEqual([]);
    expect((await eventsOf(order.id)).map((event) => event.type)).toEqual(['orders.order_placed.v1']);
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 11, reserved: 2 });
    expect(await readStock(harness.testDb.database, patty)).toEqual({ onHand: 50, reserved: 2 });
    const { rows } = await harness.testDb.database.pool.query(
      'select count(*)::int as count from orders.orders where outlet_id = $1',
      [outlet.id],
    );
    expect(rows[0].count).toBe(1);
  });

  it('refuses with 409 orders.out_of_stock naming the short stock and menu items, reserving nothing', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, {
      stock: [
        { sku: 'BUN', onHand: 100 },
        { sku: 'PATTY', onHand: 3 },
      ],
      menu: [{ name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } }],
    });
    const response = await placeOrder(customer, {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: requireId(outlet.menu.Burger), quantity: 5 }],
    });
    const problem = expectProblem(response, 409, 'orders.out_of_stock');
    expect(problem.short_items).toEqual([
      {
        stock_item_id: outlet.stock.PATTY,
        sku: 'PATTY',
        requested: 5,
        available: 3,
        menu_items: [{ menu_item_id: outlet.menu.Burger, name: 'Burger' }],
      },
    ]);
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BUN))).toEqual({
      onHand: 100,
      reserved: 0,
    });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.PATTY))).toEqual({
      onHand: 3,
      reserved: 0,
    });
  });

  it('refuses an orders admin with 403: admins run outlets, they do not order', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const response = await placeOrder(admin, {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: requireId(outlet.menu.Burger), quantity: 1 }],
    });
    expectProblem(response, 403, 'auth.forbidden');
  });
});

describe('POST /orders/:orderId/status (updateOrderStatus)', () => {
  it('walks an order to DELIVERED one step at a time, setting each timestamp and a new ETag', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const placed = await placeOk(customer, outlet);
    let current = placed;
    const timestamps = ['confirmed_at', 'preparing_at', 'ready_at', 'out_for_delivery_at', 'delivered_at'];
    for (const [index, status] of ALL_STEPS.entries()) {
      advanceClock();
      const response = await changeStatus(staff, current.id, status, `"${current.version}"`);
      expect(response.statusCode, response.body).toBe(200);
      const next = response.json<OrderBody>();
      expect(next.status).toBe(status);
      expect(next.version).toBe(current.version + 1);
      expect(response.headers.etag).toBe(`"${next.version}"`);
      expect(next[timestamps[index] as string]).toBe(new Date(nowMs).toISOString());
      expect(next.updated_at).toBe(new Date(nowMs).toISOString());
      expect(next.lines).toEqual(placed.lines);
      current = next;
    }
    const fetched = await getOrder(customer, placed.id);
    expect(fetched.json()).toEqual(current);
  });

  it('consumes the reserved stock when the order goes out for delivery, not before', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const bun = requireId(outlet.stock.BUN);
    const order = await placeOk(customer, outlet, [
      { menu_item_id: requireId(outlet.menu.Burger), quantity: 2 },
    ]);
    const ready = await advance(staff, order, ['CONFIRMED', 'PREPARING', 'READY']);
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 100, reserved: 2 });
    const out = await advance(staff, ready, ['OUT_FOR_DELIVERY']);
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 98, reserved: 0 });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.PATTY))).toEqual({
      onHand: 98,
      reserved: 0,
    });
    expect((await reservationsOf(order.id)).map((row) => row.settlement)).toEqual(['consumed', 'consumed']);
    await advance(staff, out, ['DELIVERED']);
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 98, reserved: 0 });
  });

  it('emits orders.order_status_changed.v1 for every step, in order, after order_placed', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const order = await placeOk(customer, outlet);
    await advance(staff, order, ALL_STEPS);
    const events = await eventsOf(order.id);
    expect(events.map((event) => event.type)).toEqual([
      'orders.order_placed.v1',
      ...ALL_STEPS.map(() => 'orders.order_status_changed.v1'),
    ]);
    expect(
      events.slice(1).map((event) => [event.payload.from, event.payload.to, event.payload.version]),
    ).toEqual([
      ['PLACED', 'CONFIRMED', 2],
      ['CONFIRMED', 'PREPARING', 3],
      ['PREPARING', 'READY', 4],
      ['READY', 'OUT_FOR_DELIVERY', 5],
      ['OUT_FOR_DELIVERY', 'DELIVERED', 6],
    ]);
    expect(events[1]?.payload).toMatchObject({
      orderId: order.id,
      outletId: outlet.id,
      customerId: customer.account.id,
      changedBy: staff.account.id,
      placedAt: order.placed_at,
    });
  });

  it.each([
    [[], 'READY'],
    [[], 'DELIVERED'],
    [['CONFIRMED'], 'CONFIRMED'],
    [ALL_STEPS, 'CONFIRMED'],
  ])('after %j refuses %s with 409 orders.invalid_transition and changes nothing', async (done, to) => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const order = await advance(staff, await placeOk(customer, outlet), done);
    const response = await changeStatus(staff, order.id, to, `"${order.version}"`);
    const problem = expectProblem(response, 409, 'orders.invalid_transition');
    expect(problem).toMatchObject({ from: order.status, to });
    expect((await getOrder(staff, order.id)).json()).toEqual(order);
  });

  it('refuses a stale If-Match with 412 orders.version_mismatch and changes nothing', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const confirmed = await advance(staff, await placeOk(customer, outlet), ['CONFIRMED']);
    const response = await changeStatus(staff, confirmed.id, 'PREPARING', '"1"');
    const problem = expectProblem(response, 412, 'orders.version_mismatch');
    expect(problem.current_version).toBe(2);
    expect(response.headers.etag).toBe('"2"');
    expect((await getOrder(staff, confirmed.id)).json()).toEqual(confirmed);
  });

  it('requires If-Match: 400 orders.precondition_required without it, orders.invalid_if_match for junk', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const order = await placeOk(customer, outlet);
    expectProblem(await changeStatus(staff, order.id, 'CONFIRMED'), 400, 'orders.precondition_required');
    expectProblem(await changeStatus(staff, order.id, 'CONFIRMED', '*'), 400, 'orders.invalid_if_match');
    expect((await getOrder(staff, order.id)).json()).toMatchObject({ status: 'PLACED', version: 1 });
  });

  it('answers 404 to staff of another outlet, exactly as for a missing order', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const elsewhere = await createTestOutlet(harness.testDb.database);
    const foreignStaff = await signInStaff(harness.testApp, harness.testDb.database, [elsewhere.id]);
    const order = await placeOk(customer, outlet);
    expectProblem(
      await changeStatus(foreignStaff, order.id, 'CONFIRMED', '"1"'),
      404,
      'orders.order_not_found',
    );
    expectProblem(
      await changeStatus(foreignStaff, randomUUID(), 'CONFIRMED', '"1"'),
      404,
      'orders.order_not_found',
    );
    expect((await getOrder(customer, order.id)).json()).toMatchObject({ status: 'PLACED', version: 1 });
  });

  it('refuses customers with 403: they hold no orders:update_status', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const order = await placeOk(customer, outlet);
    expectProblem(await changeStatus(customer, order.id, 'CONFIRMED', '"1"'), 403, 'auth.forbidden');
    expect((await getOrder(customer, order.id)).json()).toMatchObject({ status: 'PLACED', version: 1 });
  });

  it('lets an orders admin move an order of any outlet', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const order = await placeOk(customer, outlet);
    const response = await changeStatus(admin, order.id, 'CONFIRMED', '"1"');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ status: 'CONFIRMED', version: 2 });
  });
});

describe('POST /orders/:orderId/cancel (cancelOrder)', () => {
  it('lets the customer cancel a PLACED order, returning its stock and emitting order_cancelled', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const bun = requireId(outlet.stock.BUN);
    const order = await placeOk(customer, outlet, [
      { menu_item_id: requireId(outlet.menu.Burger), quantity: 3 },
    ]);
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 100, reserved: 3 });
    advanceClock();
    const response = await cancelOrder(customer, order.id, { reason: 'Changed my mind' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers.etag).toBe('"2"');
    expect(response.json()).toMatchObject({
      status: 'CANCELLED',
      version: 2,
      cancelled_by: 'customer',
      cancel_reason: 'Changed my mind',
      cancelled_at: new Date(nowMs).toISOString(),
    });
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 100, reserved: 0 });
    expect((await reservationsOf(order.id)).map((row) => row.settlement)).toEqual(['released', 'released']);
    const events = await eventsOf(order.id);
    expect(events.map((event) => event.type)).toEqual([
      'orders.order_placed.v1',
      'orders.order_cancelled.v1',
    ]);
    expect(events[1]?.payload).toMatchObject({
      from: 'PLACED',
      version: 2,
      cancelledBy: 'customer',
      reason: 'Changed my mind',
      totalMinor: 3 * 899,
      releasedStock: expect.arrayContaining([
        { stockItemId: bun, quantity: 3 },
        { stockItemId: outlet.stock.PATTY, quantity: 3 },
      ]),
    });
  });

  it('lets the customer cancel a CONFIRMED order with a bare POST (no body)', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const confirmed = await advance(staff, await placeOk(customer, outlet), ['CONFIRMED']);
    const response = await harness.testApp.app.inject({
      method: 'POST',
      url: `/orders/${confirmed.id}/cancel`,
      headers: { authorization: customer.authorization },
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'CANCELLED',
      cancelled_by: 'customer',
      cancel_reason: null,
    });
  });

  it('tells the customer 409 orders.cancel_window_closed once the kitchen started; staff may still cancel', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const bun = requireId(outlet.stock.BUN);
    const preparing = await advance(staff, await placeOk(customer, outlet), ['CONFIRMED', 'PREPARING']);
    expectProblem(await cancelOrder(customer, preparing.id), 409, 'orders.cancel_window_closed');
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 100, reserved: 1 });
    const ready = await advance(staff, preparing, ['READY']);
    const response = await cancelOrder(staff, ready.id, { reason: 'Out of buns' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'CANCELLED',
      cancelled_by: 'staff',
      cancel_reason: 'Out of buns',
    });
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 100, reserved: 0 });
  });

  it('refuses everyone once the order is out for delivery, with 409 orders.invalid_transition', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const out = await advance(staff, await placeOk(customer, outlet), ALL_STEPS.slice(0, 4));
    for (const caller of [customer, staff, admin]) {
      const problem = expectProblem(await cancelOrder(caller, out.id), 409, 'orders.invalid_transition');
      expect(problem).toMatchObject({ from: 'OUT_FOR_DELIVERY', to: 'CANCELLED' });
    }
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BUN))).toEqual({
      onHand: 99,
      reserved: 0,
    });
  });

  it('refuses a second cancellation with 409 orders.invalid_transition and returns the stock once', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const order = await placeOk(customer, outlet);
    expect((await cancelOrder(customer, order.id)).statusCode).toBe(200);
    const problem = expectProblem(await cancelOrder(admin, order.id), 409, 'orders.invalid_transition');
    expect(problem).toMatchObject({ from: 'CANCELLED', to: 'CANCELLED' });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BUN))).toEqual({
      onHand: 100,
      reserved: 0,
    });
    expect(
      (await eventsOf(order.id)).filter((event) => event.type === 'orders.order_cancelled.v1'),
    ).toHaveLength(1);
  });

  it('answers 404 to another customer and to staff of another outlet', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const elsewhere = await createTestOutlet(harness.testDb.database);
    const foreignStaff = await signInStaff(harness.testApp, harness.testDb.database, [elsewhere.id]);
    const order = await placeOk(customer, outlet);
    expectProblem(await cancelOrder(otherCustomer, order.id), 404, 'orders.order_not_found');
    expectProblem(await cancelOrder(foreignStaff, order.id), 404, 'orders.order_not_found');
    expect((await getOrder(customer, order.id)).json()).toMatchObject({ status: 'PLACED' });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BUN))).toEqual({
      onHand: 100,
      reserved: 1,
    });
  });

  it('honours If-Match when given: a stale one gets 412 and cancels nothing', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const confirmed = await advance(staff, await placeOk(customer, outlet), ['CONFIRMED']);
    expectProblem(await cancelOrder(customer, confirmed.id, {}, '"1"'), 412, 'orders.version_mismatch');
    expect((await getOrder(customer, confirmed.id)).json()).toMatchObject({ status: 'CONFIRMED' });
    const response = await cancelOrder(customer, confirmed.id, {}, '"2"');
    expect(response.statusCode, response.body).toBe(200);
  });
});

describe('GET /orders/:orderId (getOrder)', () => {
  it('shows the order to its customer, staff of its outlet and admins, with its ETag', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const order = await placeOk(customer, outlet);
    for (const caller of [customer, staff, admin]) {
      const response = await getOrder(caller, order.id);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toEqual(order);
      expect(response.headers.etag).toBe('"1"');
    }
  });

  it('answers 404 orders.order_not_found to another customer and to staff of another outlet, as for a missing id', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const elsewhere = await createTestOutlet(harness.testDb.database);
    const foreignStaff = await signInStaff(harness.testApp, harness.testDb.database, [elsewhere.id]);
    const order = await placeOk(customer, outlet);
    const missing = expectProblem(await getOrder(customer, randomUUID()), 404, 'orders.order_not_found');
    for (const caller of [otherCustomer, foreignStaff]) {
      const problem = expectProblem(await getOrder(caller, order.id), 404, 'orders.order_not_found');
      expect(Object.keys(problem).sort()).toEqual(Object.keys(missing).sort());
    }
  });

  it('answers 401 without credentials', async () => {
    const response = await harness.testApp.app.inject({ method: 'GET', url: `/orders/${randomUUID()}` });
    expectProblem(response, 401, 'auth.unauthenticated');
  });
});

describe('GET /orders (listOrders)', () => {
  it("pages through a customer's orders newest first, without duplicates or gaps", async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const pager = await signInCustomer(harness.testApp);
    const placed: string[] = [];
    for (let index = 0; index < 7; index += 1) {
      advanceClock();
      placed.push((await placeOk(pager, outlet)).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `limit=3${cursor === null ? '' : `&cursor=${cursor}`}`;
      const response = await listOrders(pager, query);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json<{ items: OrderBody[]; next_cursor: string | null }>();
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((item) => item.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...placed].reverse());
  });

  it('breaks ties of the same placement time by id, still without duplicates or gaps', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const pager = await signInCustomer(harness.testApp);
    advanceClock();
    const placed: string[] = [];
    for (let index = 0; index < 5; index += 1) placed.push((await placeOk(pager, outlet)).id);
    const first = (await listOrders(pager, 'limit=2')).json<{ items: OrderBody[]; next_cursor: string }>();
    const second = (await listOrders(pager, `limit=2&cursor=${first.next_cursor}`)).json<{
      items: OrderBody[];
      next_cursor: string;
    }>();
    const third = (await listOrders(pager, `limit=2&cursor=${second.next_cursor}`)).json<{
      items: OrderBody[];
      next_cursor: string | null;
    }>();
    const ids = [...first.items, ...second.items, ...third.items].map((item) => item.id);
    expect(third.next_cursor).toBeNull();
    expect(ids).toEqual([...placed].sort().reverse());
  });

  it('shows customers only their own orders', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const mine = await signInCustomer(harness.testApp);
    const theirs = await signInCustomer(harness.testApp);
    const own = await placeOk(mine, outlet);
    await placeOk(theirs, outlet);
    const response = await listOrders(mine, `outlet_id=${outlet.id}`);
    expect(response.json().items.map((item: OrderBody) => item.id)).toEqual([own.id]);
  });

  it('filters by several statuses and by a placed_after (inclusive) / placed_before (exclusive) window', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const filterer = await signInCustomer(harness.testApp);
    const orders: OrderBody[] = [];
    for (let index = 0; index < 4; index += 1) {
      advanceClock();
      orders.push(await placeOk(filterer, outlet));
    }
    const [first, second, third, fourth] = orders as [OrderBody, OrderBody, OrderBody, OrderBody];
    await advance(staff, second, ['CONFIRMED']);
    expect((await cancelOrder(filterer, third.id)).statusCode).toBe(200);

    const byStatus = await listOrders(filterer, 'status=CONFIRMED&status=CANCELLED');
    expect(byStatus.json().items.map((item: OrderBody) => item.id)).toEqual([third.id, second.id]);
    const placedOnly = await listOrders(filterer, 'status=PLACED');
    expect(placedOnly.json().items.map((item: OrderBody) => item.id)).toEqual([fourth.id, first.id]);

    const window = await listOrders(
      filterer,
      `placed_after=${encodeURIComponent(second.placed_at)}&placed_before=${encodeURIComponent(fourth.placed_at)}`,
    );
    expect(window.json().items.map((item: OrderBody) => item.id)).toEqual([third.id, second.id]);
  });

  it("lists an outlet's orders for its staff, and all of their outlets without outlet_id", async () => {
    const outletA = await createTestOutlet(harness.testDb.database);
    const outletB = await createTestOutlet(harness.testDb.database);
    const outletC = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outletA.id, outletB.id]);
    advanceClock();
    const inA = await placeOk(customer, outletA);
    advanceClock();
    const inB = await placeOk(otherCustomer, outletB);
    advanceClock();
    await placeOk(customer, outletC);

    const onlyA = await listOrders(staff, `outlet_id=${outletA.id}`);
    expect(onlyA.json().items.map((item: OrderBody) => item.id)).toEqual([inA.id]);
    const both = await listOrders(staff, 'limit=100');
    expect(both.json().items.map((item: OrderBody) => item.id)).toEqual([inB.id, inA.id]);
  });

  it('answers 404 orders.outlet_not_found to staff asking for an outlet that is not theirs', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const elsewhere = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [elsewhere.id]);
    await placeOk(customer, outlet);
    expectProblem(await listOrders(staff, `outlet_id=${outlet.id}`), 404, 'orders.outlet_not_found');
  });

  it('lets admins list any outlet', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const order = await placeOk(customer, outlet);
    const response = await listOrders(admin, `outlet_id=${outlet.id}`);
    expect(response.json().items.map((item: OrderBody) => item.id)).toEqual([order.id]);
  });

  it.each([
    ['a tampered cursor', 'cursor=eyJwIjoieCJ9', 'orders.invalid_cursor'],
    ['garbage as cursor', 'cursor=%25%25%25', 'orders.invalid_cursor'],
    ['limit 0', 'limit=0', 'request.invalid'],
    ['limit 101', 'limit=101', 'request.invalid'],
    ['an unknown status', 'status=LOST', 'request.invalid'],
    ['an unknown parameter', 'sort=asc', 'request.invalid'],
    ['a malformed outlet id', 'outlet_id=abc', 'request.invalid'],
  ])('refuses %s with 400 %s', async (_label, query, code) => {
    expectProblem(await listOrders(customer, query), 400, code);
  });
});
