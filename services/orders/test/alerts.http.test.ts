import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@keel/contracts';
import { InventoryLowStockV1 } from '@keel/contracts';
import { createRecordingNotifier } from '@keel/platform/notifier';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import {
  createLowStockAlertSubscription,
  LOW_STOCK_ALERTS_SUBSCRIBER,
} from '../src/inventory/on-inventory-low-stock.handler.ts';
import {
  assignStaff,
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

let customer: OrdersCaller;
let admin: OrdersCaller;

beforeAll(async () => {
  customer = await signInCustomer(harness.testApp);
  admin = await signInOrdersAdmin(harness.testApp);
});

/** An outlet with one bun stock item (threshold 10) and a staff member, so tests never share alerts. */
async function outletWithBuns(onHand = 20) {
  const created = await createTestOutlet(harness.testDb.database, {
    stock: [{ sku: 'BUN', name: 'Brioche bun', onHand, threshold: 10 }],
    menu: [],
  });
  const staff = await signInStaff(harness.testApp, harness.testDb.database, [created.id]);
  return { outlet: created, stockItemId: created.stock.BUN as string, staff };
}

async function adjustBy(caller: OrdersCaller, outlet: TestOutlet, delta: number) {
  const response = await inject({
    method: 'POST',
    url: `/orders/outlets/${outlet.id}/inventory/${outlet.stock.BUN}/adjustments`,
    payload: { delta, reason: delta > 0 ? 'delivery' : 'waste' },
    headers: { authorization: caller.authorization },
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

function listAlerts(caller: { authorization: string } | undefined, outletId: string, query = '') {
  return inject({
    method: 'GET',
    url: `/orders/outlets/${outletId}/alerts${query}`,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

function acknowledge(caller: { authorization: string } | undefined, outletId: string, alertId: string) {
  return inject({
    method: 'POST',
    url: `/orders/outlets/${outletId}/alerts/${alertId}/acknowledge`,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
  });
}

type OutboxRow = {
  id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  occurred_at: Date;
  schema_version: number;
  payload: Record<string, unknown>;
};

async function lowStockEventsOf(stockItemId: string): Promise<OutboxRow[]> {
  const result = await pool().query<OutboxRow>(
    `select id, type, aggregate_type, aggregate_id, occurred_at, schema_version, payload
     from platform.outbox_events where type = $1 and aggregate_id = $2 order by position`,
    [InventoryLowStockV1.type, stockItemId],
  );
  return result.rows;
}

function toEnvelope(row: OutboxRow): EventEnvelope {
  return {
    id: row.id,
    type: row.type,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    occurredAt: row.occurred_at.toISOString(),
    schemaVersion: row.schema_version,
    payload: row.payload,
  };
}

/** Low-stock alerts raised for this outlet's staff member. */
function notificationsTo(accountId: string) {
  return harness.testApp.notifications.filter(
    (notification) =>
      notification.to === `account:${accountId}` && notification.template === 'orders.low_stock',
  );
}

describe('low-stock events', () => {
  it('emits exactly one inventory_low_stock event per crossing below the threshold', async () => {
    const { outlet, stockItemId, staff } = await outletWithBuns(20);

    await adjustBy(staff, outlet, -10); // 10 available: at the threshold, not below it
    expect(await lowStockEventsOf(stockItemId)).toHaveLength(0);

    await adjustBy(staff, outlet, -1); // 9: crossed
    const [first, ...rest] = await lowStockEventsOf(stockItemId);
    expect(rest).toHaveLength(0);
    expect(first).toMatchObject({ aggregate_type: 'stock_item', aggregate_id: stockItemId });
    expect(first?.payload).toEqual({
      stockItemId,
      outletId: outlet.id,
      sku: 'BUN',
      name: 'Brioche bun',
      available: 9,
      threshold: 10,
      onHand: 9,
      reserved: 0,
      cause: 'adjustment',
      detectedAt: expect.any(String),
    });

    await adjustBy(staff, outlet, -2); // 7: still below, no new crossing
    expect(await lowStockEventsOf(stockItemId)).toHaveLength(1);

    await adjustBy(staff, outlet, 20); // 27: restocked above
    expect(await lowStockEventsOf(stockItemId)).toHaveLength(1);

    await adjustBy(staff, outlet, -25); // 2: crossed again
    const events = await lowStockEventsOf(stockItemId);
    expect(events).toHaveLength(2);
    expect(events[1]?.payload).toMatchObject({ available: 2, onHand: 2 });
  });

  it('emits nothing when a refused adjustment would have crossed', async () => {
    const { outlet, stockItemId, staff } = await outletWithBuns(12);
    await pool().query('update orders.stock_items set reserved = 12 where id = $1', [stockItemId]);
    const response = await inject({
      method: 'POST',
      url: `/orders/outlets/${outlet.id}/inventory/${stockItemId}/adjustments`,
      payload: { delta: -5, reason: 'waste' },
      headers: { authorization: staff.authorization },
    });
    expect(response.statusCode).toBe(409);
    expect(await lowStockEventsOf(stockItemId)).toHaveLength(0);
  });
});

describe('low-stock alerts (listAlerts, acknowledgeAlert)', () => {
  it('raises an alert and notifies each staff member of the outlet once the event is delivered', async () => {
    const { outlet, stockItemId, staff } = await outletWithBuns(20);
    const secondStaff = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    await adjustBy(staff, outlet, -15);
    const [event] = await lowStockEventsOf(stockItemId);

    // Not delivered yet: nothing to see.
    expect((await listAlerts(staff, outlet.id)).json().alerts).toEqual([]);

    await harness.testApp.background.drainEvents();

    const response = await listAlerts(staff, outlet.id);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      alerts: [
        {
          id: expect.any(String),
          outlet_id: outlet.id,
          stock_item_id: stockItemId,
          sku: 'BUN',
          name: 'Brioche bun',
          available: 5,
          threshold: 10,
          raised_at: event?.payload.detectedAt,
          is_open: true,
          acknowledged_at: null,
          acknowledged_by: null,
        },
      ],
      next_cursor: null,
    });
    for (const member of [staff, secondStaff]) {
      expect(notificationsTo(member.account.id)).toEqual([
        {
          to: `account:${member.account.id}`,
          template: 'orders.low_stock',
          data: {
            alertEventId: event?.id,
            outletId: outlet.id,
            stockItemId,
            sku: 'BUN',
            name: 'Brioche bun',
            available: 5,
            threshold: 10,
          },
        },
      ]);
    }
  });

  it('raises one alert and sends no second notification when the same event is delivered twice', async () => {
    const { outlet, stockItemId, staff } = await outletWithBuns(20);
    await adjustBy(staff, outlet, -15);
    await harness.testApp.background.drainEvents();
    const [row] = await lowStockEventsOf(stockItemId);
    if (row === undefined) throw new Error('no low-stock event');

    // A redelivery that got past the inbox (a pruned inbox entry, another
    // transport): the handler itself must not raise a second alert.
    const notifier = createRecordingNotifier();
    const subscription = createLowStockAlertSubscription({ ids: { uuid: randomUUID }, notifier });
    expect(subscription.name).toBe(LOW_STOCK_ALERTS_SUBSCRIBER);
    for (let delivery = 0; delivery < 2; delivery += 1) {
      await harness.testDb.database
        .typed<Record<string, never>>()
        .transaction((trx) => subscription.handler(toEnvelope(row), trx));
    }

    const alerts = await pool().query('select id from orders.low_stock_alerts where event_id = $1', [row.id]);
    expect(alerts.rows).toHaveLength(1);
    expect(notifier.sent).toEqual([]);
    expect(notificationsTo(staff.account.id)).toHaveLength(1);
    expect((await listAlerts(staff, outlet.id)).json().alerts).toHaveLength(1);
  });

  it('rejects an event off the contract with events.invalid_envelope, which the bus dead-letters', async () => {
    const subscription = createLowStockAlertSubscription({
      ids: { uuid: randomUUID },
      notifier: createRecordingNotifier(),
    });
    const malformed: EventEnvelope = {
      id: randomUUID(),
      type: InventoryLowStockV1.type,
      aggregateType: 'stock_item',
      aggregateId: randomUUID(),
      occurredAt: new Date().toISOString(),
      schemaVersion: 1,
      payload: { stockItemId: 'not-a-uuid' },
    };
    await expect(
      harness.testDb.database
        .typed<Record<string, never>>()
        .transaction((trx) => subscription.handler(malformed, trx)),
    ).rejects.toMatchObject({ code: 'events.invalid_envelope' });
  });

  it('acknowledges an alert once and answers a second acknowledgement with it unchanged', async () => {
    const { outlet, staff } = await outletWithBuns(20);
    const colleague = await signInStaff(harness.testApp, harness.testDb.database, [outlet.id]);
    await adjustBy(staff, outlet, -15);
    await harness.testApp.background.drainEvents();
    const alertId = (await listAlerts(staff, outlet.id)).json().alerts[0].id as string;

    const first = await acknowledge(staff, outlet.id, alertId);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      id: alertId,
      is_open: false,
      acknowledged_by: staff.account.id,
      acknowledged_at: expect.any(String),
    });

    const second = await acknowledge(colleague, outlet.id, alertId);
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(first.json());

    const audit = await pool().query(
      `select actor_id from platform.audit_events
       where action = 'orders.low_stock_alert_acknowledged' and resource_id = $1`,
      [alertId],
    );
    expect(audit.rows).toEqual([{ actor_id: staff.account.id }]);
  });

  it('filters open alerts with open_only and pages newest first with the cursor', async () => {
    const { outlet, staff } = await outletWithBuns(20);
    // Three crossings: down, up, down, up, down.
    for (const delta of [-15, 15, -15, 15, -15]) await adjustBy(staff, outlet, delta);
    await harness.testApp.background.drainEvents();

    const all = (await listAlerts(staff, outlet.id)).json().alerts as { id: string; raised_at: string }[];
    expect(all).toHaveLength(3);
    const times = all.map((alert) => alert.raised_at);
    expect([...times].sort().reverse()).toEqual(times);

    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `?limit=1${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const body = (await listAlerts(staff, outlet.id, query)).json();
      paged.push(...body.alerts.map((alert: { id: string }) => alert.id));
      cursor = body.next_cursor;
    } while (cursor !== null);
    expect(paged).toEqual(all.map((alert) => alert.id));

    const acknowledged = all[1]?.id as string;
    expect((await acknowledge(staff, outlet.id, acknowledged)).statusCode).toBe(200);
    const open = (await listAlerts(staff, outlet.id, '?open_only=true')).json().alerts as { id: string }[];
    expect(open.map((alert) => alert.id)).toEqual([all[0]?.id, all[2]?.id]);

    const forged = await listAlerts(staff, outlet.id, '?cursor=WyJ4Il0');
    expect(forged.statusCode).toBe(400);
    expect(forged.json().code).toBe('orders.invalid_cursor');
  });

  it('hides alerts from staff of another outlet (404) and refuses customers (403) and anonymous callers (401)', async () => {
    const { outlet, staff } = await outletWithBuns(20);
    const { staff: otherStaff, outlet: otherOutlet } = await outletWithBuns(20);
    await adjustBy(staff, outlet, -15);
    await harness.testApp.background.drainEvents();
    const alertId = (await listAlerts(staff, outlet.id)).json().alerts[0].id as string;

    const foreignList = await listAlerts(otherStaff, outlet.id);
    expect(foreignList.statusCode).toBe(404);
    expect(foreignList.json().code).toBe('orders.outlet_not_found');
    const foreignAck = await acknowledge(otherStaff, outlet.id, alertId);
    expect(foreignAck.statusCode).toBe(404);
    expect(foreignAck.json().code).toBe('orders.outlet_not_found');
    // Their own outlet's path does not reach another outlet's alert either.
    const crossPath = await acknowledge(otherStaff, otherOutlet.id, alertId);
    expect(crossPath.statusCode).toBe(404);
    expect(crossPath.json().code).toBe('orders.alert_not_found');

    expect((await listAlerts(customer, outlet.id)).statusCode).toBe(403);
    expect((await acknowledge(customer, outlet.id, alertId)).statusCode).toBe(403);
    expect((await listAlerts(undefined, outlet.id)).statusCode).toBe(401);
    expect((await acknowledge(undefined, outlet.id, alertId)).statusCode).toBe(401);

    const still = (await listAlerts(staff, outlet.id)).json().alerts[0];
    expect(still.is_open).toBe(true);
  });

  it('lets an admin see and acknowledge alerts of any outlet, and answers 404 for an unknown alert', async () => {
    const { outlet, staff } = await outletWithBuns(20);
    await adjustBy(staff, outlet, -15);
    await harness.testApp.background.drainEvents();
    const alerts = (await listAlerts(admin, outlet.id)).json().alerts;
    expect(alerts).toHaveLength(1);
    const ack = await acknowledge(admin, outlet.id, alerts[0].id);
    expect(ack.statusCode).toBe(200);
    expect(ack.json().acknowledged_by).toBe(admin.account.id);

    const unknown = await acknowledge(admin, outlet.id, randomUUID());
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('orders.alert_not_found');
  });

  it('notifies only the staff assigned when the event is delivered', async () => {
    const { outlet, staff } = await outletWithBuns(20);
    const elsewhere = await signInStaff(harness.testApp, harness.testDb.database, []);
    await adjustBy(staff, outlet, -15);
    // Assigned after the crossing but before delivery: delivery time decides.
    const late = await signInStaff(harness.testApp, harness.testDb.database, []);
    await assignStaff(harness.testDb.database, late.account.id, outlet.id);
    await harness.testApp.background.drainEvents();
    expect(notificationsTo(staff.account.id)).toHaveLength(1);
    expect(notificationsTo(late.account.id)).toHaveLength(1);
    expect(notificationsTo(elsewhere.account.id)).toHaveLength(0);
  });
});
