import { randomUUID } from 'node:crypto';
import {
  type AccessMatrixCell,
  createTestAccount,
  createTestApiKey,
  describeMismatches,
  expectationFor,
  findMatrixGaps,
  type MatrixCaller,
  type MatrixObject,
  type MatrixRoute,
  runAccessMatrix,
  signIn,
  useTestApp,
} from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersSchema } from '../src/database.ts';
import { ordersModule } from '../src/index.ts';
import {
  assignStaff,
  createTestOutlet,
  type OrdersCaller,
  signInCustomer,
  signInOrdersAdmin,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

// Every route of the orders service, called as every kind of caller. The
// route's permission decides who gets in; then the object rules decide what
// they may touch: a customer their own orders, staff the outlets they are
// assigned to (outlet A here, never B), admins every outlet, API keys no
// order or outlet at all (they are neither customers nor staff). Callers who
// get in send a valid request and expect an exact answer, so a route that
// lets them in but then fails for another reason shows up too.

const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });

const CUSTOMER_PERMISSIONS = ['orders:place', 'orders:read', 'orders:cancel'];
const STAFF_PERMISSIONS = [
  'orders:read',
  'orders:cancel',
  'orders:update_status',
  'orders:stream_outlet',
  'orders:manage_inventory',
  'orders:read_alerts',
  'orders:read_analytics',
];
// Every orders permission but placing orders: admins run the chain, they do not eat there.
const ADMIN_PERMISSIONS = [
  ...STAFF_PERMISSIONS,
  'orders:manage_catalogue',
  'orders:manage_staff',
  'orders:manage_webhooks',
  'orders:all_outlets',
];
const KEY_PERMISSIONS = ['orders:read'];
const ORIGIN = { requestId: null, ip: null, userAgent: null };

const orderNotFound = { status: 404, code: 'orders.order_not_found' };
const outletNotFound = { status: 404, code: 'orders.outlet_not_found' };

// Set in beforeAll.
const callers: MatrixCaller[] = [];
/** Staff and the customer act on outlet A; the other customer's orders and nobody's staff live at B. */
let outletA: TestOutlet;
let outletB: TestOutlet;
let customer: OrdersCaller;
let otherCustomer: OrdersCaller;
let admin: OrdersCaller;
/** The customer's order at outlet A, and the other customer's at outlet B, for the cells that only read. */
let ownOrderId: string;
let othersOrderId: string;
let webhookId: string;

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const database = () => harness.testDb.database;
const ordersDb = () => database().typed<OrdersSchema>();

beforeAll(async () => {
  const { testApp } = harness;
  outletA = await createTestOutlet(database(), { name: 'Matrix A' });
  outletB = await createTestOutlet(database(), { name: 'Matrix B' });
  customer = await signInCustomer(testApp);
  otherCustomer = await signInCustomer(testApp);
  const staff = await signInStaff(testApp, database(), [outletA.id]);
  admin = await signInOrdersAdmin(testApp);
  const noRoles = await createTestAccount(testApp);

  // An admin whose session never passed a second factor: it began before the
  // role was granted, so the role's permissions are withheld until MFA.
  const unverified = await createTestAccount(testApp);
  const unverifiedSession = await signIn(testApp, unverified);
  await testApp.security.identity.accounts.grantRole(
    { id: admin.account.id },
    unverified.id,
    'orders:admin',
    ORIGIN,
  );

  callers.push(
    { name: 'anonymous' },
    {
      name: 'no-roles',
      authorization: (await signIn(testApp, noRoles)).authorization,
      kind: 'user',
      permissions: [],
      id: noRoles.id,
    },
    {
      name: 'customer',
      authorization: customer.authorization,
      kind: 'user',
      permissions: CUSTOMER_PERMISSIONS,
      id: customer.account.id,
    },
    {
      name: 'staff',
      authorization: staff.authorization,
      kind: 'user',
      permissions: STAFF_PERMISSIONS,
      id: staff.account.id,
    },
    {
      name: 'admin',
      authorization: admin.authorization,
      kind: 'user',
      permissions: ADMIN_PERMISSIONS,
      id: admin.account.id,
    },
    {
      name: 'admin-without-mfa',
      authorization: unverifiedSession.authorization,
      kind: 'user',
      permissions: [],
      id: unverified.id,
    },
    {
      name: 'key',
      authorization: await createTestApiKey(testApp, KEY_PERMISSIONS),
      kind: 'api_key',
      permissions: KEY_PERMISSIONS,
    },
  );

  ownOrderId = await placeOrder(customer, outletA);
  othersOrderId = await placeOrder(otherCustomer, outletB);
  webhookId = await createWebhookEndpoint();
});

function callerNamed(name: string): MatrixCaller {
  const caller = callers.find((candidate) => candidate.name === name);
  if (caller === undefined) throw new Error(`no caller ${name}`);
  return caller;
}

/** Places a one-burger order through the API, as the customer would. */
async function placeOrder(by: OrdersCaller, outlet: TestOutlet): Promise<string> {
  const response = await inject({
    method: 'POST',
    url: '/orders',
    headers: { authorization: by.authorization, 'idempotency-key': randomUUID() },
    payload: { outlet_id: outlet.id, lines: [{ menu_item_id: outlet.menu.Burger, quantity: 1 }] },
  });
  if (response.statusCode !== 201) throw new Error(`could not place an order: ${response.body}`);
  return response.json<{ id: string }>().id;
}

async function createWebhookEndpoint(): Promise<string> {
  const response = await inject({
    method: 'POST',
    url: '/orders/webhooks',
    headers: { authorization: admin.authorization },
    payload: { url: 'https://hooks.example.test/orders', event_types: ['orders.order_placed.v1'] },
  });
  if (response.statusCode !== 201) throw new Error(`could not create a webhook endpoint: ${response.body}`);
  return response.json<{ id: string }>().id;
}

/** Outlet A is the staff member's own; B is nobody's in this matrix but the admins'. */
const outletFor = (object: MatrixObject) => (object === 'other' ? outletB : outletA);

/** A fresh PLACED order: the customer's at outlet A (own) or the other customer's at outlet B (other). */
const freshOrderFor = (object: MatrixObject) =>
  object === 'other' ? placeOrder(otherCustomer, outletB) : placeOrder(customer, outletA);

/** A fresh stock item at the outlet, so no cell's adjustment depends on another's. */
async function insertStockItem(outletId: string): Promise<string> {
  const id = randomUUID();
  await ordersDb().run((db) =>
    db
      .insertInto('orders.stock_items')
      .values({
        id,
        outlet_id: outletId,
        sku: `M-${id.slice(0, 8)}`,
        name: 'matrix stock',
        on_hand: 50,
        low_stock_threshold: 5,
      })
      .execute(),
  );
  return id;
}

/** A fresh open low-stock alert at the outlet, as the low-stock subscriber would record it. */
async function insertOpenAlert(outlet: TestOutlet): Promise<string> {
  const id = randomUUID();
  await ordersDb().run((db) =>
    db
      .insertInto('orders.low_stock_alerts')
      .values({
        id,
        event_id: randomUUID(),
        outlet_id: outlet.id,
        stock_item_id: outlet.stock.BUN as string,
        available: 4,
        threshold: 10,
        raised_at: new Date(),
      })
      .execute(),
  );
  return id;
}

// One day of analytics; the range is valid whatever the rollup holds.
const ANALYTICS_RANGE = 'from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z&granularity=hour';

const routes: MatrixRoute[] = [
  // Public catalogue reads: everyone gets the same answer, credentials or not.
  { method: 'GET', path: '/orders/outlets', access: 'public', allowed: 200 },
  {
    method: 'GET',
    path: '/orders/outlets/:outletId/menu',
    access: 'public',
    request: () => ({ url: `/orders/outlets/${outletA.id}/menu` }),
    allowed: 200,
  },

  // Catalogue and staff writes: admins only, chain-wide (no outlet scope).
  {
    method: 'POST',
    path: '/orders/outlets',
    access: 'orders:manage_catalogue',
    request: () => ({ url: '/orders/outlets', payload: { name: 'Matrix outlet', currency: 'EUR' } }),
    allowed: 201,
  },
  {
    method: 'POST',
    path: '/orders/outlets/:outletId/stock-items',
    access: 'orders:manage_catalogue',
    request: () => ({
      url: `/orders/outlets/${outletA.id}/stock-items`,
      payload: {
        sku: `S-${randomUUID().slice(0, 8)}`,
        name: 'matrix sauce',
        on_hand: 10,
        low_stock_threshold: 2,
      },
    }),
    allowed: 201,
  },
  {
    method: 'POST',
    path: '/orders/outlets/:outletId/menu-items',
    access: 'orders:manage_catalogue',
    request: () => ({
      url: `/orders/outlets/${outletA.id}/menu-items`,
      payload: {
        name: `Matrix special ${randomUUID().slice(0, 8)}`,
        price_minor: 500,
        components: [{ stock_item_id: outletA.stock.BUN, quantity: 1 }],
      },
    }),
    allowed: 201,
  },
  {
    method: 'PATCH',
    path: '/orders/outlets/:outletId/menu-items/:menuItemId',
    access: 'orders:manage_catalogue',
    // Sets what is already there, so the menu the other cells order from stays as it was.
    request: () => ({
      url: `/orders/outlets/${outletA.id}/menu-items/${outletA.menu.Burger}`,
      payload: { is_available: true },
    }),
    allowed: 200,
  },
  {
    method: 'PUT',
    path: '/orders/outlets/:outletId/staff/:accountId',
    access: 'orders:manage_staff',
    // A fresh account id: assigning the staff caller to B would spoil the matrix's "other" outlet.
    request: () => ({ url: `/orders/outlets/${outletA.id}/staff/${randomUUID()}` }),
    allowed: 204,
  },
  {
    method: 'DELETE',
    path: '/orders/outlets/:outletId/staff/:accountId',
    access: 'orders:manage_staff',
    request: async () => {
      const accountId = randomUUID();
      await assignStaff(database(), accountId, outletA.id);
      return { url: `/orders/outlets/${outletA.id}/staff/${accountId}` };
    },
    allowed: 204,
  },
  {
    method: 'GET',
    path: '/orders/outlets/:outletId/staff',
    access: 'orders:manage_staff',
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/orders/outlets/${outletFor(object).id}/staff` }),
    allowed: 200,
  },

  // Stock and alerts: staff of the outlet and admins; another outlet does not exist for staff.
  {
    method: 'GET',
    path: '/orders/outlets/:outletId/inventory',
    access: 'orders:manage_inventory',
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/orders/outlets/${outletFor(object).id}/inventory` }),
    allowed: 200,
    othersObject: outletNotFound,
    expect: { admin: 200 },
  },
  {
    method: 'POST',
    path: '/orders/outlets/:outletId/inventory/:stockItemId/adjustments',
    access: 'orders:manage_inventory',
    objects: ['own', 'other'],
    request: async ({ object }) => {
      const outletId = outletFor(object).id;
      return {
        url: `/orders/outlets/${outletId}/inventory/${await insertStockItem(outletId)}/adjustments`,
        payload: { delta: 5, reason: 'delivery' },
      };
    },
    allowed: 200,
    othersObject: outletNotFound,
    expect: { admin: 200 },
  },
  {
    method: 'GET',
    path: '/orders/outlets/:outletId/alerts',
    access: 'orders:read_alerts',
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/orders/outlets/${outletFor(object).id}/alerts` }),
    allowed: 200,
    othersObject: outletNotFound,
    expect: { admin: 200 },
  },
  {
    method: 'POST',
    path: '/orders/outlets/:outletId/alerts/:alertId/acknowledge',
    access: 'orders:manage_inventory',
    objects: ['own', 'other'],
    request: async ({ object }) => {
      const outlet = outletFor(object);
      return { url: `/orders/outlets/${outlet.id}/alerts/${await insertOpenAlert(outlet)}/acknowledge` };
    },
    allowed: 200,
    othersObject: outletNotFound,
    expect: { admin: 200 },
  },
  {
    method: 'GET',
    path: '/orders/analytics',
    access: 'orders:read_analytics',
    // None: the whole chain, which only callers scoped to every outlet may read.
    objects: ['none', 'own', 'other'],
    request: ({ object }) => ({
      url: `/orders/analytics?${ANALYTICS_RANGE}${object === 'none' ? '' : `&outlet_id=${outletFor(object).id}`}`,
    }),
    allowed: 200,
    othersObject: outletNotFound,
    expect: {
      staff: { none: { status: 400, code: 'orders.analytics_outlet_required' } },
      admin: 200,
    },
  },

  // Orders.
  {
    method: 'POST',
    path: '/orders',
    access: 'orders:place',
    request: () => ({
      url: '/orders',
      headers: { 'idempotency-key': randomUUID() },
      payload: { outlet_id: outletA.id, lines: [{ menu_item_id: outletA.menu.Burger, quantity: 1 }] },
    }),
    allowed: 201,
  },
  {
    method: 'GET',
    path: '/orders',
    access: 'orders:read',
    // None: no filter. Own/other: filtered to outlet A/B. Customers and keys
    // only ever list their own orders, so naming any outlet merely narrows
    // that; staff naming an outlet not theirs are told it does not exist.
    objects: ['none', 'own', 'other'],
    request: ({ object }) => ({
      url: object === 'none' ? '/orders' : `/orders?outlet_id=${outletFor(object).id}`,
    }),
    allowed: 200,
    othersObject: outletNotFound,
    expect: { customer: 200, admin: 200, key: 200 },
  },
  {
    method: 'GET',
    path: '/orders/:orderId',
    access: 'orders:read',
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/orders/${object === 'other' ? othersOrderId : ownOrderId}` }),
    allowed: 200,
    othersObject: orderNotFound,
    // An API key is nobody's customer and no outlet's staff: no order is its to read.
    expect: { admin: 200, key: orderNotFound },
  },
  {
    method: 'POST',
    path: '/orders/:orderId/status',
    access: 'orders:update_status',
    objects: ['own', 'other'],
    request: async ({ object }) => ({
      url: `/orders/${await freshOrderFor(object)}/status`,
      headers: { 'if-match': '"1"' },
      payload: { status: 'CONFIRMED' },
    }),
    allowed: 200,
    othersObject: orderNotFound,
    expect: { admin: 200 },
  },
  {
    method: 'POST',
    path: '/orders/:orderId/cancel',
    access: 'orders:cancel',
    objects: ['own', 'other'],
    // PLACED: within the window of customers and staff alike.
    request: async ({ object }) => ({
      url: `/orders/${await freshOrderFor(object)}/cancel`,
      payload: { reason: 'matrix' },
    }),
    allowed: 200,
    othersObject: orderNotFound,
    expect: { admin: 200 },
  },

  // Webhook endpoints: admins only, chain-wide.
  {
    method: 'POST',
    path: '/orders/webhooks',
    access: 'orders:manage_webhooks',
    request: () => ({
      url: '/orders/webhooks',
      payload: { url: 'https://hooks.example.test/matrix', event_types: ['orders.order_cancelled.v1'] },
    }),
    allowed: 201,
  },
  { method: 'GET', path: '/orders/webhooks', access: 'orders:manage_webhooks', allowed: 200 },
  {
    method: 'DELETE',
    path: '/orders/webhooks/:id',
    access: 'orders:manage_webhooks',
    request: async () => ({ url: `/orders/webhooks/${await createWebhookEndpoint()}` }),
    allowed: 200,
  },
  {
    method: 'GET',
    path: '/orders/webhooks/:id/deliveries',
    access: 'orders:manage_webhooks',
    request: () => ({ url: `/orders/webhooks/${webhookId}/deliveries` }),
    allowed: 200,
  },
];

// Server-Sent Events. A caller who gets in receives a stream that stays open
// (until the token's lifetime), which app.inject would wait on forever; so
// only the refusals run here, and they are answered before any streaming
// starts. services/orders/test/tracking.http.test.ts opens the allowed
// streams on a listening server and reads them.
const streamRoutes: MatrixRoute[] = [
  {
    method: 'GET',
    path: '/orders/:orderId/events',
    access: 'orders:read',
    objects: ['own', 'other'],
    request: ({ object }) => ({
      url: `/orders/${object === 'other' ? othersOrderId : ownOrderId}/events`,
    }),
    allowed: 200,
    othersObject: orderNotFound,
    expect: { admin: 200, key: orderNotFound },
  },
  {
    method: 'GET',
    path: '/orders/outlets/:outletId/events',
    access: 'orders:stream_outlet',
    objects: ['own', 'other'],
    request: ({ object }) => ({ url: `/orders/outlets/${outletFor(object).id}/events` }),
    allowed: 200,
    othersObject: outletNotFound,
    expect: { admin: 200 },
  },
];

/** The (caller, object) pairs of each stream route that open a stream, hence are not run. */
const STREAMING_CELLS: Record<string, readonly string[]> = {
  'GET /orders/:orderId/events': ['customer/own', 'staff/own', 'admin/own', 'admin/other'],
  'GET /orders/outlets/:outletId/events': ['staff/own', 'admin/own', 'admin/other'],
};

const isStreaming = (route: MatrixRoute, caller: MatrixCaller, object: MatrixObject) =>
  STREAMING_CELLS[`${route.method} ${route.path}`]?.includes(`${caller.name}/${object}`) ?? false;

/** Runs every cell of the stream routes but the ones that open a stream. */
async function runStreamRefusals(): Promise<AccessMatrixCell[]> {
  const cells: AccessMatrixCell[] = [];
  for (const route of streamRoutes) {
    for (const object of route.objects ?? ['none']) {
      const refused = callers.filter((caller) => !isStreaming(route, caller, object));
      // The kit refuses expectations about callers it was not given.
      const expectations = Object.entries(route.expect ?? {}).filter(([name]) =>
        refused.some((caller) => caller.name === name),
      );
      cells.push(
        ...(await runAccessMatrix(harness.testApp.app, {
          callers: refused,
          routes: [{ ...route, objects: [object], expect: Object.fromEntries(expectations) }],
        })),
      );
    }
  }
  return cells;
}

describe('orders access matrix', () => {
  it('withholds the permissions of the orders admin role from a session that never passed MFA', async () => {
    const me = await inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: callerNamed('admin-without-mfa').authorization ?? '' },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ roles: ['orders:admin'], permissions: [], mfa_authenticated: false });
  });

  it('lists every orders route, so a new one fails here until it states who may call it', () => {
    // Routes outside /orders are the platform's, covered by the server's
    // matrix (apps/server/test/access-matrix.http.test.ts).
    const gaps = findMatrixGaps(harness.testApp.app, [...routes, ...streamRoutes], {
      isExempt: (route) => !route.path.startsWith('/orders'),
    });
    expect(gaps).toEqual({ uncovered: [], unknown: [] });
  });

  it('refuses every route to callers without its permission or the object, and lets the others through', async () => {
    const cells = await runAccessMatrix(harness.testApp.app, { callers, routes });
    expect(describeMismatches(cells)).toEqual([]);
    expect(cells).toHaveLength(
      routes.reduce((total, route) => total + (route.objects?.length ?? 1), 0) * callers.length,
    );
  });

  it('refuses the event streams to callers without the permission or the object before streaming', async () => {
    // The cells left out must be exactly those the matrix expects to stream,
    // so a refusal cannot be skipped by mistake.
    for (const route of streamRoutes) {
      for (const caller of callers) {
        for (const object of route.objects ?? ['none']) {
          const isOpened = expectationFor(route, caller, object) === 200;
          expect(isStreaming(route, caller, object), `${route.path} as ${caller.name} (${object})`).toBe(
            isOpened,
          );
        }
      }
    }
    const cells = await runStreamRefusals();
    expect(describeMismatches(cells)).toEqual([]);
    const streamed = Object.values(STREAMING_CELLS).reduce((total, pairs) => total + pairs.length, 0);
    expect(cells).toHaveLength(
      streamRoutes.reduce((total, route) => total + (route.objects?.length ?? 1), 0) * callers.length -
        streamed,
    );
  });
});
