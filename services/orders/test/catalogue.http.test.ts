import { randomUUID } from 'node:crypto';
import { createTestAccount, signIn, useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import {
  createTestOutlet,
  type OrdersCaller,
  signInCustomer,
  signInOrdersAdmin,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });

const inject = (options: InjectOptions) => harness.testApp.app.inject(options);
const pool = () => harness.testDb.database.pool;
const NO_ORIGIN = { requestId: null, ip: null, userAgent: null };

let admin: OrdersCaller;
let customer: OrdersCaller;
let staff: OrdersCaller;
/** An account holding `orders:admin` whose session never passed a second factor. */
let adminWithoutMfa: { authorization: string };
let outlet: TestOutlet;
let otherOutlet: TestOutlet;

beforeAll(async () => {
  const { testApp, testDb } = harness;
  outlet = await createTestOutlet(testDb.database, { name: 'Catalogue Test Kitchen' });
  otherOutlet = await createTestOutlet(testDb.database, { currency: 'GBP' });
  admin = await signInOrdersAdmin(testApp);
  customer = await signInCustomer(testApp);
  staff = await signInStaff(testApp, testDb.database, [outlet.id]);
  // Signed in with a password only, then granted the admin role: the role
  // requires MFA, so its permissions are withheld from this session.
  const account = await createTestAccount(testApp);
  const session = await signIn(testApp, account);
  await testApp.security.identity.accounts.grantRole(
    { id: admin.account.id },
    account.id,
    'orders:admin',
    NO_ORIGIN,
  );
  adminWithoutMfa = session;
});

function call(
  method: InjectOptions['method'],
  url: string,
  caller?: { authorization: string },
  payload?: unknown,
) {
  return inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload: payload as object }),
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

async function countRows(table: string, column: string, value: string): Promise<number> {
  const result = await pool().query<{ count: string }>(`select count(*) from ${table} where ${column} = $1`, [
    value,
  ]);
  return Number(result.rows[0]?.count);
}

async function auditActions(
  resourceId: string,
): Promise<{ action: string; actor_id: string; changes: unknown }[]> {
  const result = await pool().query(
    'select action, actor_id, changes from platform.audit_events where resource_id = $1 order by id',
    [resourceId],
  );
  return result.rows;
}

describe('GET /orders/outlets (listOutlets)', () => {
  it('lists active outlets to anyone, without credentials', async () => {
    const inactive = await createTestOutlet(harness.testDb.database);
    await pool().query('update orders.outlets set is_active = false where id = $1', [inactive.id]);
    const response = await call('GET', '/orders/outlets');
    expect(response.statusCode).toBe(200);
    const outlets = response.json().outlets as { id: string }[];
    expect(outlets).toContainEqual({
      id: outlet.id,
      name: 'Catalogue Test Kitchen',
      currency: 'EUR',
      time_zone: 'UTC',
    });
    expect(outlets.map((listed) => listed.id)).toContain(otherOutlet.id);
    expect(outlets.map((listed) => listed.id)).not.toContain(inactive.id);
  });
});

describe('GET /orders/outlets/:outletId/menu (getMenu)', () => {
  it('shows available items with price, currency and whether each is orderable now', async () => {
    const kitchen = await createTestOutlet(harness.testDb.database, {
      stock: [
        { sku: 'BUN', onHand: 10 },
        { sku: 'PATTY', onHand: 3 },
        { sku: 'POTATO', onHand: 0 },
        { sku: 'CAN', onHand: 5 },
      ],
      menu: [
        { name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } },
        { name: 'Double Burger', priceMinor: 1299, uses: { BUN: 1, PATTY: 2 } },
        { name: 'Fries', priceMinor: 349, uses: { POTATO: 1 } },
        { name: 'Cola', priceMinor: 250, uses: { CAN: 1 }, isAvailable: false },
      ],
    });
    // Two of the three patties are held by open orders: one portion's worth is left.
    await pool().query('update orders.stock_items set reserved = 2 where id = $1', [kitchen.stock.PATTY]);

    const response = await call('GET', `/orders/outlets/${kitchen.id}/menu`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      outlet: { id: kitchen.id, name: expect.any(String), currency: 'EUR', time_zone: 'UTC' },
      items: [
        {
          id: kitchen.menu.Burger,
          name: 'Burger',
          description: '',
          price_minor: 899,
          currency: 'EUR',
          is_orderable: true,
        },
        {
          id: kitchen.menu['Double Burger'],
          name: 'Double Burger',
          description: '',
          price_minor: 1299,
          currency: 'EUR',
          is_orderable: false,
        },
        {
          id: kitchen.menu.Fries,
          name: 'Fries',
          description: '',
          price_minor: 349,
          currency: 'EUR',
          is_orderable: false,
        },
      ],
    });
  });

  it('answers 404 orders.outlet_not_found for an unknown or inactive outlet, 400 for a malformed id', async () => {
    const unknown = await call('GET', `/orders/outlets/${randomUUID()}/menu`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('orders.outlet_not_found');

    const closed = await createTestOutlet(harness.testDb.database);
    await pool().query('update orders.outlets set is_active = false where id = $1', [closed.id]);
    expect((await call('GET', `/orders/outlets/${closed.id}/menu`)).statusCode).toBe(404);

    const malformed = await call('GET', '/orders/outlets/not-a-uuid/menu');
    expect(malformed.statusCode).toBe(400);
    expect(malformed.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('catalogue administration (createOutlet, createStockItem, createMenuItem, updateMenuItem)', () => {
  it('lets an orders admin open an outlet, stock it and put a burger on its menu, audited', async () => {
    const created = await call('POST', '/orders/outlets', admin, {
      name: '  Keel Kitchen Hamburg  ',
      currency: 'EUR',
      time_zone: 'Europe/Berlin',
    });
    expect(created.statusCode).toBe(201);
    const newOutlet = created.json();
    expect(newOutlet).toEqual({
      id: expect.any(String),
      name: 'Keel Kitchen Hamburg',
      currency: 'EUR',
      time_zone: 'Europe/Berlin',
    });

    const bun = await call('POST', `/orders/outlets/${newOutlet.id}/stock-items`, admin, {
      sku: 'BUN-BRIOCHE',
      name: 'Brioche bun',
      on_hand: 200,
      low_stock_threshold: 30,
    });
    expect(bun.statusCode).toBe(201);
    expect(bun.json()).toEqual({
      id: expect.any(String),
      outlet_id: newOutlet.id,
      sku: 'BUN-BRIOCHE',
      name: 'Brioche bun',
      unit: 'each',
      on_hand: 200,
      reserved: 0,
      available: 200,
      low_stock_threshold: 30,
      is_low: false,
      version: 1,
      updated_at: expect.any(String),
    });
    const patty = await call('POST', `/orders/outlets/${newOutlet.id}/stock-items`, admin, {
      sku: 'PATTY-BEEF',
      name: 'Beef patty',
      unit: 'piece',
      on_hand: 150,
      low_stock_threshold: 20,
    });
    expect(patty.statusCode).toBe(201);

    const burger = await call('POST', `/orders/outlets/${newOutlet.id}/menu-items`, admin, {
      name: 'Double Burger',
      description: 'Two patties',
      price_minor: 1290,
      components: [
        { stock_item_id: bun.json().id, quantity: 1 },
        { stock_item_id: patty.json().id, quantity: 2 },
      ],
    });
    expect(burger.statusCode).toBe(201);
    expect(burger.json()).toEqual({
      id: expect.any(String),
      outlet_id: newOutlet.id,
      name: 'Double Burger',
      description: 'Two patties',
      price_minor: 1290,
      currency: 'EUR',
      is_available: true,
      components: expect.arrayContaining([
        { stock_item_id: bun.json().id, quantity: 1 },
        { stock_item_id: patty.json().id, quantity: 2 },
      ]),
      created_at: expect.any(String),
    });

    const menu = await call('GET', `/orders/outlets/${newOutlet.id}/menu`);
    expect(menu.json().items).toEqual([
      {
        id: burger.json().id,
        name: 'Double Burger',
        description: 'Two patties',
        price_minor: 1290,
        currency: 'EUR',
        is_orderable: true,
      },
    ]);
    expect((await call('GET', '/orders/outlets')).json().outlets).toContainEqual(newOutlet);

    expect(await auditActions(newOutlet.id)).toEqual([
      {
        action: 'orders.outlet_created',
        actor_id: admin.account.id,
        changes: { name: 'Keel Kitchen Hamburg', currency: 'EUR', time_zone: 'Europe/Berlin' },
      },
    ]);
    expect((await auditActions(bun.json().id)).map((event) => event.action)).toEqual([
      'orders.stock_item_created',
    ]);
    expect((await auditActions(burger.json().id)).map((event) => event.action)).toEqual([
      'orders.menu_item_created',
    ]);
  });

  it('refuses a component of another outlet with 422 orders.invalid_component and writes nothing', async () => {
    const response = await call('POST', `/orders/outlets/${outlet.id}/menu-items`, admin, {
      name: 'Smuggled Burger',
      price_minor: 999,
      components: [
        { stock_item_id: outlet.stock.BUN, quantity: 1 },
        { stock_item_id: otherOutlet.stock.PATTY, quantity: 1 },
        { stock_item_id: randomUUID(), quantity: 1 },
      ],
    });
    expect(response.statusCode).toBe(422);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      code: 'orders.invalid_component',
      errors: [
        { pointer: '/body/components/1/stock_item_id', detail: expect.any(String) },
        { pointer: '/body/components/2/stock_item_id', detail: expect.any(String) },
      ],
    });
    expect(await countRows('orders.menu_items', 'name', 'Smuggled Burger')).toBe(0);
  });

  it('refuses a recipe listing one stock item twice with 400 orders.duplicate_component', async () => {
    const response = await call('POST', `/orders/outlets/${outlet.id}/menu-items`, admin, {
      name: 'Stuttering Burger',
      price_minor: 999,
      components: [
        { stock_item_id: outlet.stock.BUN, quantity: 1 },
        { stock_item_id: outlet.stock.BUN, quantity: 1 },
      ],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('orders.duplicate_component');
    expect(await countRows('orders.menu_items', 'name', 'Stuttering Burger')).toBe(0);
  });

  it('refuses a sku the outlet already has with 409 orders.sku_taken, but allows it at another outlet', async () => {
    const body = { sku: 'BUN', name: 'Another bun', on_hand: 1, low_stock_threshold: 0 };
    const taken = await call('POST', `/orders/outlets/${outlet.id}/stock-items`, admin, body);
    expect(taken.statusCode).toBe(409);
    expect(taken.json().code).toBe('orders.sku_taken');
    const elsewhere = await createTestOutlet(harness.testDb.database, { stock: [], menu: [] });
    expect((await call('POST', `/orders/outlets/${elsewhere.id}/stock-items`, admin, body)).statusCode).toBe(
      201,
    );
  });

  it('answers 404 orders.outlet_not_found when creating in an unknown outlet', async () => {
    const stock = await call('POST', `/orders/outlets/${randomUUID()}/stock-items`, admin, {
      sku: 'BUN',
      name: 'Bun',
      on_hand: 1,
      low_stock_threshold: 0,
    });
    expect(stock.statusCode).toBe(404);
    expect(stock.json().code).toBe('orders.outlet_not_found');
    const menu = await call('POST', `/orders/outlets/${randomUUID()}/menu-items`, admin, {
      name: 'Burger',
      price_minor: 100,
      components: [{ stock_item_id: outlet.stock.BUN, quantity: 1 }],
    });
    expect(menu.statusCode).toBe(404);
    expect(menu.json().code).toBe('orders.outlet_not_found');
  });

  it('changes price and availability with an audited before and after', async () => {
    const kitchen = await createTestOutlet(harness.testDb.database);
    const burgerId = kitchen.menu.Burger as string;
    const repriced = await call('PATCH', `/orders/outlets/${kitchen.id}/menu-items/${burgerId}`, admin, {
      price_minor: 950,
    });
    expect(repriced.statusCode).toBe(200);
    expect(repriced.json()).toMatchObject({
      id: burgerId,
      price_minor: 950,
      is_available: true,
      currency: 'EUR',
    });
    expect(repriced.json().components).toHaveLength(2);

    const withdrawn = await call('PATCH', `/orders/outlets/${kitchen.id}/menu-items/${burgerId}`, admin, {
      is_available: false,
    });
    expect(withdrawn.json()).toMatchObject({ price_minor: 950, is_available: false });
    const menuNames = (await call('GET', `/orders/outlets/${kitchen.id}/menu`))
      .json()
      .items.map((item: { name: string }) => item.name);
    expect(menuNames).toEqual(['Cola', 'Fries']);

    expect((await auditActions(burgerId)).map((event) => event.changes)).toEqual([
      { outlet_id: kitchen.id, price_minor: { from: 899, to: 950 } },
      { outlet_id: kitchen.id, is_available: { from: true, to: false } },
    ]);
  });

  it('answers 404 orders.menu_item_not_found for another outlet’s menu item and changes nothing', async () => {
    const response = await call(
      'PATCH',
      `/orders/outlets/${outlet.id}/menu-items/${otherOutlet.menu.Burger}`,
      admin,
      {
        price_minor: 1,
      },
    );
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('orders.menu_item_not_found');
    const price = await pool().query('select price_minor from orders.menu_items where id = $1', [
      otherOutlet.menu.Burger,
    ]);
    expect(price.rows).toEqual([{ price_minor: '899' }]);
  });

  it.each([
    ['an unknown property', 'POST', '/orders/outlets', { name: 'X', currency: 'EUR', is_active: false }],
    ['a lower-case currency', 'POST', '/orders/outlets', { name: 'X', currency: 'eur' }],
    ['a blank name', 'POST', '/orders/outlets', { name: '   ', currency: 'EUR' }],
    [
      'an unknown time zone',
      'POST',
      '/orders/outlets',
      { name: 'X', currency: 'EUR', time_zone: 'Mars/Olympus' },
    ],
    [
      'an offset as time zone',
      'POST',
      '/orders/outlets',
      { name: 'X', currency: 'EUR', time_zone: '+01:00' },
    ],
    [
      'a negative on hand',
      'POST',
      'stock-items',
      { sku: 'NEG', name: 'N', on_hand: -1, low_stock_threshold: 0 },
    ],
    [
      'a malformed sku',
      'POST',
      'stock-items',
      { sku: '-BAD SKU', name: 'N', on_hand: 1, low_stock_threshold: 0 },
    ],
    ['a negative price', 'POST', 'menu-items', { name: 'N', price_minor: -100, components: [] }],
    ['a fractional price', 'POST', 'menu-items', { name: 'N', price_minor: 9.5, components: [] }],
    ['an empty recipe', 'POST', 'menu-items', { name: 'N', price_minor: 100, components: [] }],
    ['an empty change', 'PATCH', 'burger', {}],
    ['a zero price change', 'PATCH', 'burger', { price_minor: 0 }],
    ['a name change', 'PATCH', 'burger', { name: 'Renamed' }],
  ] as const)('refuses %s with 400 problem+json', async (_label, method, path, payload) => {
    const url =
      path === 'burger'
        ? `/orders/outlets/${outlet.id}/menu-items/${outlet.menu.Burger}`
        : path.startsWith('/')
          ? path
          : `/orders/outlets/${outlet.id}/${path}`;
    const response = await call(method, url, admin, payload);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().errors?.length).toBeGreaterThan(0);
  });
});

describe('staff assignment (assignStaff, unassignStaff, listOutletStaff)', () => {
  it('assigns idempotently, lists, and unassigns, with one audit event per change', async () => {
    const kitchen = await createTestOutlet(harness.testDb.database, { stock: [], menu: [] });
    const newcomer = await signInStaff(harness.testApp, harness.testDb.database, []);
    const url = `/orders/outlets/${kitchen.id}/staff/${newcomer.account.id}`;

    // Before the assignment the outlet is invisible to them.
    expect((await call('GET', `/orders/outlets/${kitchen.id}/inventory`, newcomer)).statusCode).toBe(404);

    for (let attempt = 0; attempt < 2; attempt += 1) {
      const assigned = await call('PUT', url, admin);
      expect(assigned.statusCode).toBe(204);
      expect(assigned.body).toBe('');
    }
    expect((await call('GET', `/orders/outlets/${kitchen.id}/inventory`, newcomer)).statusCode).toBe(200);

    const listed = await call('GET', `/orders/outlets/${kitchen.id}/staff`, admin);
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({
      staff: [
        { account_id: newcomer.account.id, granted_at: expect.any(String), granted_by: admin.account.id },
      ],
      next_cursor: null,
    });

    expect((await call('DELETE', url, admin)).statusCode).toBe(204);
    const again = await call('DELETE', url, admin);
    expect(again.statusCode).toBe(404);
    expect(again.json().code).toBe('orders.staff_assignment_not_found');
    expect((await call('GET', `/orders/outlets/${kitchen.id}/inventory`, newcomer)).statusCode).toBe(404);

    expect(await auditActions(kitchen.id)).toEqual([
      {
        action: 'orders.staff_assigned',
        actor_id: admin.account.id,
        changes: { account_id: newcomer.account.id },
      },
      {
        action: 'orders.staff_unassigned',
        actor_id: admin.account.id,
        changes: { account_id: newcomer.account.id },
      },
    ]);
  });

  it('pages the staff list by account id', async () => {
    const kitchen = await createTestOutlet(harness.testDb.database, { stock: [], menu: [] });
    const accountIds = [randomUUID(), randomUUID(), randomUUID()];
    for (const accountId of accountIds) {
      expect((await call('PUT', `/orders/outlets/${kitchen.id}/staff/${accountId}`, admin)).statusCode).toBe(
        204,
      );
    }
    const first = (await call('GET', `/orders/outlets/${kitchen.id}/staff?limit=2`, admin)).json();
    expect(first.staff).toHaveLength(2);
    const second = (
      await call('GET', `/orders/outlets/${kitchen.id}/staff?limit=2&cursor=${first.next_cursor}`, admin)
    ).json();
    expect(second.next_cursor).toBeNull();
    expect(
      [...first.staff, ...second.staff].map((member: { account_id: string }) => member.account_id),
    ).toEqual([...accountIds].sort());
  });

  it('answers 404 orders.outlet_not_found for an unknown outlet', async () => {
    const unknownOutlet = randomUUID();
    for (const [method, url] of [
      ['PUT', `/orders/outlets/${unknownOutlet}/staff/${staff.account.id}`],
      ['DELETE', `/orders/outlets/${unknownOutlet}/staff/${staff.account.id}`],
      ['GET', `/orders/outlets/${unknownOutlet}/staff`],
    ] as const) {
      const response = await call(method, url, admin);
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json().code).toBe('orders.outlet_not_found');
    }
  });
});

describe('who may administer the catalogue and staff', () => {
  const writes = () =>
    [
      ['POST', '/orders/outlets', { name: 'Rogue Kitchen', currency: 'EUR' }],
      [
        'POST',
        `/orders/outlets/${outlet.id}/stock-items`,
        { sku: 'ROGUE', name: 'Rogue', on_hand: 1, low_stock_threshold: 0 },
      ],
      [
        'POST',
        `/orders/outlets/${outlet.id}/menu-items`,
        {
          name: 'Rogue Burger',
          price_minor: 1,
          components: [{ stock_item_id: outlet.stock.BUN, quantity: 1 }],
        },
      ],
      ['PATCH', `/orders/outlets/${outlet.id}/menu-items/${outlet.menu.Burger}`, { price_minor: 1 }],
      ['PUT', `/orders/outlets/${outlet.id}/staff/${customer.account.id}`, undefined],
      ['DELETE', `/orders/outlets/${outlet.id}/staff/${staff.account.id}`, undefined],
      ['GET', `/orders/outlets/${outlet.id}/staff`, undefined],
    ] as const;

  it.each([
    ['a customer', () => customer],
    ['staff of the outlet', () => staff],
    ['an admin whose session skipped MFA', () => adminWithoutMfa],
  ])('refuses %s with 403 auth.forbidden on every write and changes nothing', async (_label, caller) => {
    for (const [method, url, payload] of writes()) {
      const response = await call(method, url, caller(), payload);
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      expect(response.json().code).toBe('auth.forbidden');
    }
    expect(await countRows('orders.outlets', 'name', 'Rogue Kitchen')).toBe(0);
    expect(await countRows('orders.stock_items', 'sku', 'ROGUE')).toBe(0);
    expect(await countRows('orders.menu_items', 'name', 'Rogue Burger')).toBe(0);
    expect(await countRows('orders.staff_outlets', 'account_id', staff.account.id)).toBe(1);
    expect(await countRows('orders.staff_outlets', 'account_id', customer.account.id)).toBe(0);
    const price = await pool().query('select price_minor from orders.menu_items where id = $1', [
      outlet.menu.Burger,
    ]);
    expect(price.rows).toEqual([{ price_minor: '899' }]);
  });

  it('refuses the MFA-less admin only for the missing second factor: the role is granted', async () => {
    const me = await call('GET', '/auth/me', adminWithoutMfa);
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ roles: ['orders:admin'], mfa_authenticated: false });
    expect(me.json().permissions).not.toContain('orders:manage_catalogue');
  });

  it('refuses an anonymous caller with 401 on every write', async () => {
    for (const [method, url, payload] of writes()) {
      const response = await call(method, url, undefined, payload);
      expect(response.statusCode, `${method} ${url}`).toBe(401);
    }
  });
});

describe('OpenAPI document', () => {
  it('documents every outlet and inventory operation under the orders tag with its error responses', async () => {
    const document = (await call('GET', '/openapi.json')).json() as {
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; responses: object }>>;
    };
    const operations = new Map<string, { tags?: string[]; responses: object }>();
    for (const methods of Object.values(document.paths)) {
      for (const operation of Object.values(methods)) {
        if (operation.operationId !== undefined) operations.set(operation.operationId, operation);
      }
    }
    for (const operationId of [
      'listOutlets',
      'getMenu',
      'createOutlet',
      'createStockItem',
      'createMenuItem',
      'updateMenuItem',
      'assignStaff',
      'unassignStaff',
      'listOutletStaff',
      'listInventory',
      'adjustInventory',
      'listAlerts',
      'acknowledgeAlert',
    ]) {
      const operation = operations.get(operationId);
      expect(operation, operationId).toBeDefined();
      expect(operation?.tags).toEqual(['orders']);
      expect(operation?.responses, operationId).toHaveProperty('500');
    }
  });
});
