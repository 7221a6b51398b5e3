import { randomUUID } from 'node:crypto';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from '@keel/platform/testing';
import type { Response } from 'light-my-request';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import {
  createTestOutlet,
  type OrdersCaller,
  readStock,
  signInCustomer,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

// Real parallel requests against one app and one database; the invariants
// are checked in the database afterwards. Rate limiting is off (hundreds of
// requests per caller). The database handle is built here rather than by
// useTestApp: its pool is larger so that requests really overlap inside
// PostgreSQL, and a request may wait for a pooled connection longer than the
// test default of 1 s (pg-pool counts that wait against the connect timeout,
// and 500 requests queue behind 20 connections) without it counting as an outage.
let testDb: TestDatabase;
let testApp: TestApp;
beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'), { poolMax: 20, connectTimeoutMs: 30_000 });
  testApp = await buildTestApp({
    database: testDb.database,
    databaseUrl: testDb.url,
    modules: [ordersModule],
    env: { RATE_LIMIT_ENABLED: 'false', DATABASE_POOL_MAX: '20' },
  });
});
afterAll(async () => {
  await testApp?.close();
  await testDb?.drop();
});
const harness = {
  get testApp() {
    return testApp;
  },
  get testDb() {
    return testDb;
  },
};

type OrderBody = { id: string; status: string; version: number };

function requireId(id: string | undefined): string {
  if (id === undefined) throw new Error('fixture id missing');
  return id;
}

function placeOrder(
  caller: OrdersCaller,
  body: { outlet_id: string; lines: { menu_item_id: string; quantity: number }[] },
  key: string = randomUUID(),
) {
  return harness.testApp.app.inject({
    method: 'POST',
    url: '/orders',
    headers: { authorization: caller.authorization, 'idempotency-key': key },
    payload: body,
  });
}

async function placeOk(caller: OrdersCaller, outlet: TestOutlet, menuItem = 'Burger'): Promise<OrderBody> {
  const response = await placeOrder(caller, {
    outlet_id: outlet.id,
    lines: [{ menu_item_id: requireId(outlet.menu[menuItem]), quantity: 1 }],
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<OrderBody>();
}

function post(caller: OrdersCaller, url: string, payload: object, ifMatch?: string) {
  return harness.testApp.app.inject({
    method: 'POST',
    url,
    headers: {
      authorization: caller.authorization,
      ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }),
    },
    payload,
  });
}

function codeOf(response: Response): string {
  return response.statusCode < 300
    ? String(response.statusCode)
    : `${response.statusCode} ${response.json().code}`;
}

function tally(responses: Response[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const response of responses) counts[codeOf(response)] = (counts[codeOf(response)] ?? 0) + 1;
  return counts;
}

async function queryNumber(text: string, values: unknown[]): Promise<number> {
  const result = await harness.testDb.database.pool.query<{ value: string | number | null }>(text, values);
  return Number(result.rows[0]?.value ?? 0);
}

async function countEvents(aggregateId: string, type: string): Promise<number> {
  return queryNumber(
    'select count(*) as value from platform.outbox_events where aggregate_id = $1 and type = $2',
    [aggregateId, type],
  );
}

/** Transactions the database layer retried because PostgreSQL broke a deadlock. */
function deadlockRetries(): number {
  return harness.testApp.logs
    .lines()
    .filter(
      (line) =>
        line.msg === 'retrying database work after transient failure' &&
        (line.err as { code?: string } | undefined)?.code === '40P01',
    ).length;
}

let customers: OrdersCaller[];

beforeAll(async () => {
  customers = await Promise.all(Array.from({ length: 5 }, () => signInCustomer(harness.testApp)));
});

describe('placing orders concurrently', () => {
  it('sells exactly the 100 units in stock to 500 racing orders: 100 × 201, 400 × 409 orders.out_of_stock', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, {
      stock: [{ sku: 'CAN', onHand: 100, threshold: 10 }],
      menu: [{ name: 'Cola', priceMinor: 250, uses: { CAN: 1 } }],
    });
    const can = requireId(outlet.stock.CAN);
    const responses = await Promise.all(
      Array.from({ length: 500 }, (_, index) =>
        placeOrder(customers[index % customers.length] as OrdersCaller, {
          outlet_id: outlet.id,
          lines: [{ menu_item_id: requireId(outlet.menu.Cola), quantity: 1 }],
        }),
      ),
    );
    expect(tally(responses)).toEqual({ '201': 100, '409 orders.out_of_stock': 400 });

    expect(await readStock(harness.testDb.database, can)).toEqual({ onHand: 100, reserved: 100 });
    expect(
      await queryNumber('select count(*) as value from orders.orders where outlet_id = $1', [outlet.id]),
    ).toBe(100);
    expect(
      await queryNumber(
        'select sum(quantity) as value from orders.order_reservations where stock_item_id = $1 and settled_at is null',
        [can],
      ),
    ).toBe(100);
    expect(
      await queryNumber(
        `select count(*) as value from orders.stock_items
          where outlet_id = $1 and (reserved < 0 or on_hand < 0 or reserved > on_hand)`,
        [outlet.id],
      ),
    ).toBe(0);
    // Every placed order, and only those, announced itself; the threshold was crossed once.
    expect(
      await queryNumber(
        `select count(*) as value from platform.outbox_events
          where type = 'orders.order_placed.v1' and payload->>'outletId' = $1`,
        [outlet.id],
      ),
    ).toBe(100);
    expect(await countEvents(can, 'orders.inventory_low_stock.v1')).toBe(1);
    // No order took a line without its reservation, nor the reverse.
    expect(
      await queryNumber(
        `select count(*) as value from orders.orders o
          where o.outlet_id = $1
            and (not exists (select 1 from orders.order_lines l where l.order_id = o.id)
              or not exists (select 1 from orders.order_reservations r where r.order_id = o.id))`,
        [outlet.id],
      ),
    ).toBe(0);
  });

  it('places one order for 50 concurrent requests with the same Idempotency-Key', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const customer = customers[0] as OrdersCaller;
    const key = randomUUID();
    const body = {
      outlet_id: outlet.id,
      lines: [{ menu_item_id: requireId(outlet.menu.Burger), quantity: 2 }],
    };
    const responses = await Promise.all(Array.from({ length: 50 }, () => placeOrder(customer, body, key)));

    const created = responses.filter((response) => response.statusCode === 201);
    const others = responses.filter((response) => response.statusCode !== 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    // The rest arrived while the first was running: 409 idempotency.in_progress, to be retried.
    expect(new Set(others.map(codeOf))).toEqual(
      others.length === 0 ? new Set() : new Set(['409 idempotency.in_progress']),
    );
    expect(new Set(created.map((response) => response.body)).size).toBe(1);

    expect(
      await queryNumber('select count(*) as value from orders.orders where outlet_id = $1', [outlet.id]),
    ).toBe(1);
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BUN))).toEqual({
      onHand: 100,
      reserved: 2,
    });
    const retry = await placeOrder(customer, body, key);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toBe(created[0]?.body);
  });

  it('completes every order when orders lock the same two stock items in opposite line orders (no deadlock)', async () => {
    const outlet = await createTestOutlet(harness.testDb.database, {
      stock: [
        { sku: 'ALPHA', onHand: 1000 },
        { sku: 'BETA', onHand: 1000 },
      ],
      menu: [
        { name: 'Alpha', priceMinor: 100, uses: { ALPHA: 1 } },
        { name: 'Beta', priceMinor: 100, uses: { BETA: 1 } },
        // Recipes in both orders too: the reservation must not follow recipe order either.
        { name: 'AlphaBeta', priceMinor: 200, uses: { ALPHA: 1, BETA: 1 } },
        { name: 'BetaAlpha', priceMinor: 200, uses: { BETA: 1, ALPHA: 1 } },
      ],
    });
    const alpha = requireId(outlet.menu.Alpha);
    const beta = requireId(outlet.menu.Beta);
    const retriesBefore = deadlockRetries();
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, index) => {
        const lines =
          index % 3 === 0
            ? [
                { menu_item_id: alpha, quantity: 1 },
                { menu_item_id: beta, quantity: 1 },
              ]
            : index % 3 === 1
              ? [
                  { menu_item_id: beta, quantity: 1 },
                  { menu_item_id: alpha, quantity: 1 },
                ]
              : [
                  {
                    menu_item_id: requireId(outlet.menu[index % 2 === 0 ? 'AlphaBeta' : 'BetaAlpha']),
                    quantity: 1,
                  },
                ];
        return placeOrder(customers[index % customers.length] as OrdersCaller, {
          outlet_id: outlet.id,
          lines,
        });
      }),
    );
    expect(tally(responses)).toEqual({ '201': 200 });
    // Not even a deadlock the retry layer would have hidden.
    expect(deadlockRetries()).toBe(retriesBefore);
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.ALPHA))).toEqual({
      onHand: 1000,
      reserved: 200,
    });
    expect(await readStock(harness.testDb.database, requireId(outlet.stock.BETA))).toEqual({
      onHand: 1000,
      reserved: 200,
    });
  });
});

describe('changing one order concurrently', () => {
  it('returns the stock once and emits one order_cancelled for 20 concurrent cancellations', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const customer = customers[1] as OrdersCaller;
    const bun = requireId(outlet.stock.BUN);
    const before = await readStock(harness.testDb.database, bun);
    const order = await placeOk(customer, outlet);
    expect(await readStock(harness.testDb.database, bun)).toEqual({
      onHand: before.onHand,
      reserved: before.reserved + 1,
    });

    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        post(index % 2 === 0 ? customer : staff, `/orders/${order.id}/cancel`, {
          reason: `attempt ${index}`,
        }),
      ),
    );
    expect(tally(responses)).toEqual({ '200': 1, '409 orders.invalid_transition': 19 });
    expect(await readStock(harness.testDb.database, bun)).toEqual(before);
    expect(await countEvents(order.id, 'orders.order_cancelled.v1')).toBe(1);
    expect(
      await queryNumber(
        "select count(*) as value from orders.order_reservations where order_id = $1 and settlement = 'released'",
        [order.id],
      ),
    ).toBe(2);
  });

  it('lets exactly one of 20 concurrent status changes with the same If-Match through; the rest get 412', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await Promise.all(
      Array.from({ length: 4 }, () => signInStaff(harness.testApp, harness.testDb.database, [outlet.id])),
    );
    const order = await placeOk(customers[2] as OrdersCaller, outlet);
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        post(
          staff[index % staff.length] as OrdersCaller,
          `/orders/${order.id}/status`,
          { status: 'CONFIRMED' },
          '"1"',
        ),
      ),
    );
    expect(tally(responses)).toEqual({ '200': 1, '412 orders.version_mismatch': 19 });
    expect(await countEvents(order.id, 'orders.order_status_changed.v1')).toBe(1);
  });

  it('settles stock exactly once when a cancellation races the dispatch of the same order', async () => {
    const outlet = await createTestOutlet(harness.testDb.database);
    const staff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    const bun = requireId(outlet.stock.BUN);
    const rounds = 10;
    const orders: OrderBody[] = [];
    for (let round = 0; round < rounds; round += 1) {
      let order = await placeOk(customers[3] as OrdersCaller, outlet);
      for (const status of ['CONFIRMED', 'PREPARING', 'READY']) {
        const response = await post(staff, `/orders/${order.id}/status`, { status }, `"${order.version}"`);
        expect(response.statusCode, response.body).toBe(200);
        order = response.json<OrderBody>();
      }
      orders.push(order);
    }
    const responses = await Promise.all(
      orders.flatMap((order) => [
        post(staff, `/orders/${order.id}/status`, { status: 'OUT_FOR_DELIVERY' }, `"${order.version}"`),
        post(staff, `/orders/${order.id}/cancel`, {}),
      ]),
    );
    expect(responses.every((response) => response.statusCode < 500)).toBe(true);
    let dispatched = 0;
    for (const [index, order] of orders.entries()) {
      const [dispatch, cancel] = [responses[2 * index], responses[2 * index + 1]] as [Response, Response];
      // One wins; the loser sees the winner's version or status.
      expect([dispatch.statusCode, cancel.statusCode].filter((status) => status === 200)).toHaveLength(1);
      const settlements = await harness.testDb.database.pool.query<{ settlement: string }>(
        'select settlement from orders.order_reservations where order_id = $1',
        [order.id],
      );
      const expected = dispatch.statusCode === 200 ? 'consumed' : 'released';
      expect(settlements.rows.map((row) => row.settlement)).toEqual([expected, expected]);
      if (dispatch.statusCode === 200) dispatched += 1;
    }
    expect(await readStock(harness.testDb.database, bun)).toEqual({ onHand: 100 - dispatched, reserved: 0 });
  });
});
