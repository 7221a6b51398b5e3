import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_PASSWORD } from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { createTestOutlet } from '../../../services/orders/test/fixtures.ts';
import { logInThrough, useServerProcesses } from './process-harness.ts';

// KEEL_ROLE with real processes: a `web` process serves the API and queues
// the events its requests emit; a `worker` delivers them and serves nothing
// but probes and metrics.

const ORDER_PLACED = 'orders.order_placed.v1';
const DELIVERY_WAIT_MS = 30_000;

const processes = useServerProcesses({ prefix: 'keel-roles-', readyTimeoutMs: 30_000 });

/** order_placed deliveries by status, and how many subscribers take the type. */
async function orderPlacedDeliveries(): Promise<{ subscribers: number; pending: number; dead: number }> {
  const result = await processes.testDb.database.pool.query<{
    subscribers: string;
    pending: string;
    dead: string;
  }>(
    `select
       (select count(*) from platform.event_subscriptions where event_type = $1) as subscribers,
       count(*) filter (where d.status = 'pending') as pending,
       count(*) filter (where d.status = 'dead') as dead
     from platform.event_deliveries d
     join platform.outbox_events e on e.position = d.position
     where e.type = $1`,
    [ORDER_PLACED],
  );
  const row = result.rows[0];
  return { subscribers: Number(row?.subscribers), pending: Number(row?.pending), dead: Number(row?.dead) };
}

describe('KEEL_ROLE', () => {
  it('splits the API and the background work between a web and a worker process', async () => {
    const outlet = await createTestOutlet(processes.testDb.database, {
      stock: [{ sku: 'BUN', onHand: 100, threshold: 0 }],
      menu: [{ name: 'Bun', priceMinor: 199, uses: { BUN: 1 } }],
    });
    const [email = ''] = await processes.createAccounts(1, ['orders:customer']);

    const web = await processes.start({ KEEL_ROLE: 'web' });
    const authorization = await logInThrough(web.baseUrl, email, TEST_PASSWORD);
    const placed = await fetch(`${web.baseUrl}/orders`, {
      method: 'POST',
      headers: { authorization, 'idempotency-key': randomUUID(), 'content-type': 'application/json' },
      body: JSON.stringify({
        outlet_id: outlet.id,
        lines: [{ menu_item_id: outlet.menu.Bun, quantity: 1 }],
      }),
    });
    expect(placed.status).toBe(201);
    const order = (await placed.json()) as { id: string };

    // The web process fanned order_placed out to every subscriber and
    // delivers none of it: a working process polls every 100 ms.
    await sleep(1500);
    const queued = await orderPlacedDeliveries();
    expect(queued.subscribers).toBeGreaterThan(0);
    expect(queued).toEqual({ subscribers: queued.subscribers, pending: queued.subscribers, dead: 0 });

    const worker = await processes.start({ KEEL_ROLE: 'worker' });
    const deadline = Date.now() + DELIVERY_WAIT_MS;
    while ((await orderPlacedDeliveries()).pending > 0 && Date.now() < deadline) await sleep(100);
    expect(await orderPlacedDeliveries()).toEqual({ subscribers: queued.subscribers, pending: 0, dead: 0 });
    const inbox = await processes.testDb.database.pool.query<{ count: string }>(
      `select count(*) from platform.event_inbox i join platform.outbox_events e on e.id = i.event_id
       where e.type = $1`,
      [ORDER_PLACED],
    );
    expect(Number(inbox.rows[0]?.count)).toBe(queued.subscribers);

    // The worker answers probes and metrics, and no API route, even with valid credentials.
    for (const path of ['/health/live', '/health/ready', '/metrics']) {
      expect((await fetch(`${worker.baseUrl}${path}`)).status, path).toBe(200);
    }
    const fromWorker = await fetch(`${worker.baseUrl}/orders/${order.id}`, { headers: { authorization } });
    expect(fromWorker.status).toBe(404);
    expect(await fromWorker.json()).toMatchObject({ code: 'request.route_not_found' });
    const fromWeb = await fetch(`${web.baseUrl}/orders/${order.id}`, { headers: { authorization } });
    expect(fromWeb.status).toBe(200);
  });
});
