import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';
import { benchUser, signInAdminOnce } from './credentials.ts';
import { eventLagAfterDrain, scrapeMetrics } from './metrics.ts';
import type { PreparedScenario, Scenario, ScenarioContext } from './scenarios.ts';

// The orders scenarios: a chain of outlets with deep stock, customers placing
// three-line orders, staff moving orders through their lifecycle. Orders are
// spread over OUTLETS outlets and their menus, as a chain's traffic is: every
// order of one item locks that item's stock row, so a single-outlet,
// single-item run would measure one row lock, not the service.

const OUTLETS = 20;
const MENU_ITEMS_PER_OUTLET = 8;
const CUSTOMERS = 40;
const SEEDED_ORDERS = 2000;
const SEED_CONCURRENCY = 20;
// The most an outlet may hold of an item; no run sells it out (out-of-stock answers would be 409s, not load).
const STOCK_ON_HAND = 10_000_000;
const PASSWORD = 'bench password that is long enough';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
const NEXT_STATUS: Record<string, string | undefined> = {
  PLACED: 'CONFIRMED',
  CONFIRMED: 'PREPARING',
  PREPARING: 'READY',
  READY: 'OUT_FOR_DELIVERY',
  OUT_FOR_DELIVERY: 'DELIVERED',
};

type Outlet = { id: string; menuItemIds: string[]; staffAuthorization: string };
type Customer = { authorization: string };
type TrackedOrder = { id: string; outletId: string; customer: Customer; version: number; status: string };
type World = { outlets: Outlet[]; customers: Customer[]; prefix: string };
type PlacementContext = { placed?: { outlet: Outlet; customer: Customer } };
type MixedContext = PlacementContext & { inFlight?: TrackedOrder };

async function call(
  baseUrl: string,
  method: string,
  url: string,
  authorization: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}${url}`, {
    method,
    headers: {
      ...(body === undefined ? { accept: 'application/json' } : JSON_HEADERS),
      authorization,
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: response.status,
    body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
  };
}

async function expectStatus(
  label: string,
  result: Promise<{ status: number; body: Record<string, unknown> }>,
  expected: number[],
) {
  const { status, body } = await result;
  if (!expected.includes(status)) throw new Error(`${label} failed: ${status} ${String(body.code ?? '')}`);
  return body;
}

async function login(baseUrl: string, email: string): Promise<string> {
  const response = await fetch(`${baseUrl}/auth/login`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || body.access_token === undefined) {
    throw new Error(`login of ${email} failed: ${response.status}`);
  }
  return `Bearer ${body.access_token}`;
}

async function accountId(baseUrl: string, authorization: string): Promise<string> {
  const me = await expectStatus('GET /auth/me', call(baseUrl, 'GET', '/auth/me', authorization), [200]);
  return String(me.id);
}

let world: Promise<World> | undefined;

/** Outlets, menus, staff and customers, created once per bench run through the public API. */
function prepareWorld(baseUrl: string, context: ScenarioContext): Promise<World> {
  world ??= (async () => {
    const prefix = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const admin = `Bearer ${await signInAdminOnce(baseUrl, context.adminFile)}`;
    // The bench admin runs the chain too; role changes apply to its current token on the next request.
    await expectStatus(
      'granting orders:admin',
      call(baseUrl, 'POST', `/admin/users/${await accountId(baseUrl, admin)}/roles`, admin, {
        role: 'orders:admin',
      }),
      [200, 409],
    );
    const outlets: Outlet[] = [];
    for (let index = 0; index < OUTLETS; index += 1) {
      const outlet = await expectStatus(
        'POST /orders/outlets',
        call(baseUrl, 'POST', '/orders/outlets', admin, {
          name: `Bench kitchen ${prefix} ${index}`,
          currency: 'EUR',
          time_zone: 'Europe/Berlin',
        }),
        [201],
      );
      const outletId = String(outlet.id);
      const stockIds: string[] = [];
      for (let item = 0; item < MENU_ITEMS_PER_OUTLET; item += 1) {
        const stock = await expectStatus(
          'POST stock-items',
          call(baseUrl, 'POST', `/orders/outlets/${outletId}/stock-items`, admin, {
            sku: `SKU-${item}`,
            name: `Ingredient ${item}`,
            unit: 'each',
            on_hand: STOCK_ON_HAND,
            low_stock_threshold: 0,
          }),
          [201],
        );
        stockIds.push(String(stock.id));
      }
      const menuItemIds: string[] = [];
      for (let item = 0; item < MENU_ITEMS_PER_OUTLET; item += 1) {
        // Each dish uses two ingredients, so a three-line order reserves up to six stock rows.
        const components = [item, (item + 1) % MENU_ITEMS_PER_OUTLET].map((stock) => ({
          stock_item_id: stockIds[stock],
          quantity: 1,
        }));
        const menu = await expectStatus(
          'POST menu-items',
          call(baseUrl, 'POST', `/orders/outlets/${outletId}/menu-items`, admin, {
            name: `Dish ${item}`,
            description: 'bench dish',
            price_minor: 500 + item * 100,
            components,
          }),
          [201],
        );
        menuItemIds.push(String(menu.id));
      }
      const staffEmail = `bench-staff-${prefix}-${index}@example.com`;
      await benchUser(baseUrl, context.adminFile, {
        email: staffEmail,
        password: PASSWORD,
        roles: ['orders:staff'],
      });
      const staffAuthorization = await login(baseUrl, staffEmail);
      await expectStatus(
        'assigning staff',
        call(
          baseUrl,
          'PUT',
          `/orders/outlets/${outletId}/staff/${await accountId(baseUrl, staffAuthorization)}`,
          admin,
        ),
        [200, 204],
      );
      outlets.push({ id: outletId, menuItemIds, staffAuthorization });
    }
    const customers: Customer[] = [];
    for (let index = 0; index < CUSTOMERS; index += 1) {
      const email = `bench-customer-${prefix}-${index}@example.com`;
      await benchUser(baseUrl, context.adminFile, { email, password: PASSWORD, roles: ['orders:customer'] });
      customers.push({ authorization: await login(baseUrl, email) });
    }
    return { outlets, customers, prefix };
  })();
  return world;
}

/** The server's metrics once the seeding's events are delivered: the baseline of a scenario's lag. */
async function settledMetrics(baseUrl: string): Promise<string> {
  await eventLagAfterDrain(baseUrl);
  return scrapeMetrics(baseUrl);
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

/** Three distinct dishes of one outlet, one of each. */
function orderBody(outlet: Outlet): string {
  const dishes = [...outlet.menuItemIds].sort(() => Math.random() - 0.5).slice(0, 3);
  return JSON.stringify({
    outlet_id: outlet.id,
    lines: dishes.map((menuItemId) => ({ menu_item_id: menuItemId, quantity: 1 })),
  });
}

type Placement = {
  setup: (request: autocannon.Request, context: object) => autocannon.Request;
  onResponse: (status: number, body: string, context: object) => void;
};

function createPlacement(
  data: World,
  keys: { next: () => string },
  onPlaced: (order: TrackedOrder) => void,
): Placement {
  // autocannon's context is per connection: what this connection's request in flight was for.
  return {
    setup: (request, context) => {
      const outlet = pick(data.outlets);
      const customer = pick(data.customers);
      (context as PlacementContext).placed = { outlet, customer };
      return {
        ...request,
        method: 'POST',
        path: '/orders',
        headers: { ...JSON_HEADERS, authorization: customer.authorization, 'idempotency-key': keys.next() },
        body: orderBody(outlet),
      };
    },
    onResponse: (status, body, context) => {
      const placed = (context as PlacementContext).placed;
      if (status !== 201 || placed === undefined) return;
      const order = JSON.parse(body) as { id: string; version: number; status: string };
      onPlaced({
        id: order.id,
        outletId: placed.outlet.id,
        customer: placed.customer,
        version: order.version,
        status: order.status,
      });
    },
  };
}

function keySource(prefix: string): { next: () => string; count: () => number } {
  let sequence = 0;
  return {
    next: () => {
      sequence += 1;
      return `bench-${prefix}-${sequence}`;
    },
    count: () => sequence,
  };
}

async function seedOrders(baseUrl: string, data: World, count: number): Promise<TrackedOrder[]> {
  const keys = keySource(`seed-${data.prefix}-${randomBytes(3).toString('hex')}`);
  const orders: TrackedOrder[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const outlet = pick(data.outlets);
      const customer = pick(data.customers);
      const body = await expectStatus(
        'seeding an order',
        call(baseUrl, 'POST', '/orders', customer.authorization, JSON.parse(orderBody(outlet)), {
          'idempotency-key': keys.next(),
        }),
        [201],
      );
      orders.push({
        id: String(body.id),
        outletId: outlet.id,
        customer,
        version: Number(body.version),
        status: String(body.status),
      });
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  return orders;
}

const ordersPlace: Scenario = {
  name: 'orders-place',
  description:
    `POST /orders as ${CUSTOMERS} signed-in customers over ${OUTLETS} outlets: three distinct dishes (two stock items ` +
    'each) per order and a unique Idempotency-Key. One transaction per order: claim, menu read, locked conditional ' +
    'stock reservation, order + lines + reservations, outbox event and deliveries, claim completion.',
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    const data = await prepareWorld(baseUrl, context);
    const keys = keySource(`place-${data.prefix}-${randomBytes(3).toString('hex')}`);
    let placed = 0;
    // Lag is measured over this scenario's events only, not the seeding's.
    const baseline = await settledMetrics(baseUrl);
    return {
      requests: [
        (() => {
          const placement = createPlacement(data, keys, () => (placed += 1));
          return {
            method: 'POST',
            path: '/orders',
            setupRequest: placement.setup,
            onResponse: placement.onResponse,
          };
        })(),
      ],
      observations: async () => ({
        ordersPlaced: placed,
        ...(await eventLagAfterDrain(baseUrl, { baseline })),
      }),
    };
  },
};

const ordersGet: Scenario = {
  name: 'orders-get',
  description:
    `Seeds ${SEEDED_ORDERS} orders, then GET /orders/{id} by the customer who placed it (token check, session ` +
    'check, order + lines read, ownership check).',
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    const data = await prepareWorld(baseUrl, context);
    const orders = await seedOrders(baseUrl, data, SEEDED_ORDERS);
    return {
      requests: [
        {
          method: 'GET',
          path: `/orders/${orders[0]?.id}`,
          setupRequest: (request) => {
            const order = pick(orders);
            return {
              ...request,
              method: 'GET',
              path: `/orders/${order.id}`,
              headers: { accept: 'application/json', authorization: order.customer.authorization },
            };
          },
        },
      ],
      observations: () => ({ seededOrders: orders.length }),
    };
  },
};

const ordersMixed: Scenario = {
  name: 'orders-mixed',
  description:
    `Seeds ${SEEDED_ORDERS} orders, then 70% GET /orders/{id} (customer), 25% POST /orders/{id}/status one step ` +
    "forward with If-Match (the outlet's staff), 5% POST /orders. An order is never changed by two requests at " +
    'once, so every status change is expected to succeed.',
  async prepare(baseUrl, context): Promise<PreparedScenario> {
    const data = await prepareWorld(baseUrl, context);
    const seeded = await seedOrders(baseUrl, data, SEEDED_ORDERS);
    const readable = [...seeded];
    // Orders with a step left and no status change in flight.
    const idle: TrackedOrder[] = [...seeded];
    const staffOf = new Map(data.outlets.map((outlet) => [outlet.id, outlet.staffAuthorization]));
    const keys = keySource(`mixed-${data.prefix}-${randomBytes(3).toString('hex')}`);
    const baseline = await settledMetrics(baseUrl);
    const counts = { reads: 0, statusChanges: 0, placements: 0, statusConflicts: 0, idleStarved: 0 };
    const place = createPlacement(data, keys, (order) => {
      readable.push(order);
      idle.push(order);
    });
    const request: autocannon.Request = {
      method: 'GET',
      path: '/orders',
      setupRequest: (base, context) => {
        const connection = context as MixedContext;
        const roll = Math.random();
        connection.inFlight = undefined;
        connection.placed = undefined;
        if (roll < 0.05) {
          counts.placements += 1;
          return place.setup(base, context);
        }
        if (roll < 0.3 && idle.length > 0) {
          const order = idle.splice(Math.floor(Math.random() * idle.length), 1)[0] as TrackedOrder;
          connection.inFlight = order;
          counts.statusChanges += 1;
          return {
            ...base,
            method: 'POST',
            path: `/orders/${order.id}/status`,
            headers: {
              ...JSON_HEADERS,
              authorization: staffOf.get(order.outletId) ?? '',
              'if-match': `"${order.version}"`,
            },
            body: JSON.stringify({ status: NEXT_STATUS[order.status] }),
          };
        }
        if (roll < 0.3) counts.idleStarved += 1;
        counts.reads += 1;
        const order = pick(readable);
        return {
          ...base,
          method: 'GET',
          path: `/orders/${order.id}`,
          headers: { accept: 'application/json', authorization: order.customer.authorization },
        };
      },
      onResponse: (status, body, context) => {
        const connection = context as MixedContext;
        const order = connection.inFlight;
        if (order === undefined) {
          place.onResponse(status, body, context);
          return;
        }
        connection.inFlight = undefined;
        if (status === 200) {
          const updated = JSON.parse(body) as { version: number; status: string };
          order.version = updated.version;
          order.status = updated.status;
        } else {
          counts.statusConflicts += 1;
        }
        if (NEXT_STATUS[order.status] !== undefined) idle.push(order);
      },
    };
    return {
      requests: [request],
      observations: async () => ({ ...counts, ...(await eventLagAfterDrain(baseUrl, { baseline })) }),
    };
  },
};

export const orderScenarios: readonly Scenario[] = [ordersPlace, ordersGet, ordersMixed];
