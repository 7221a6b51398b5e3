import { randomUUID } from 'node:crypto';
import { get as httpGet, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createDatabase, type Database, sql } from '@keel/platform/db';
import { createLogger } from '@keel/platform/observability';
import { buildTestApp, TEST_DATABASE_SETTINGS, type TestApp, useTestApp } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrdersSchema } from '../src/database.ts';
import { ordersModule } from '../src/index.ts';
import {
  buildTrackedOrder,
  emitOrderEvents,
  type OrderEvent,
  orderCancelled,
  orderPlaced,
  statusChanges,
  type TrackedOrder,
} from '../src/tracking/tracking.factories.ts';
import {
  createTestOutlet,
  type OrdersCaller,
  signInCustomer,
  signInOrdersAdmin,
  signInStaff,
  type TestOutlet,
} from './fixtures.ts';

// Real-time tracking over a real listening server: Server-Sent Events read
// from the socket as a client would, fed by order events emitted straight from the contracts and
// delivered to the `orders.tracking` subscription with drainEvents().

const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });

let baseUrl: string;
const openStreams: EventStream[] = [];

beforeAll(async () => {
  baseUrl = await harness.testApp.app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(() => {
  for (const stream of openStreams) stream.close();
});

// --- A minimal SSE client -----------------------------------------------------
// node:http with one connection per request, not fetch: after a stream is
// aborted, fetch's pool opens a spare connection that sends nothing, and the
// server waits for it (it may still send a request) until its headers
// timeout, which would stall app.close() by a minute.

type SseEvent = { id: string | undefined; event: string; data: Record<string, unknown> };

type EventStream = {
  status: number;
  headers: IncomingHttpHeaders;
  retryMs: number | undefined;
  /** The next `count` messages, waiting for them as needed; throws if the stream ends first. */
  next(count: number): Promise<SseEvent[]>;
  /** Every message until the server ends the stream. */
  untilEnd(): Promise<SseEvent[]>;
  close(): void;
};

function get(url: string, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { headers, agent: false }, resolve);
    request.on('error', reject);
  });
}

async function openEventStream(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  const response = await get(url, headers);
  const queue: SseEvent[] = [];
  let buffer = '';
  let isEnded = false;
  let wake: () => void = () => undefined;

  const stream: EventStream = {
    status: response.statusCode ?? 0,
    headers: response.headers,
    retryMs: undefined,
    async next(count) {
      while (queue.length < count) {
        if (isEnded) throw new Error(`the stream ended after ${queue.length} of ${count} messages`);
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      return queue.splice(0, count);
    },
    async untilEnd() {
      while (!isEnded) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      return queue.splice(0);
    },
    close() {
      response.destroy();
    },
  };
  openStreams.push(stream);

  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    buffer += chunk;
    let end = buffer.indexOf('\n\n');
    while (end !== -1) {
      parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
    }
    wake();
  });
  response.on('close', () => {
    isEnded = true;
    wake();
  });

  function parseFrame(frame: string): void {
    const fields = new Map<string, string>();
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const separator = line.indexOf(': ');
      fields.set(line.slice(0, separator), line.slice(separator + 2));
    }
    const retry = fields.get('retry');
    if (retry !== undefined) stream.retryMs = Number(retry);
    const data = fields.get('data');
    if (data === undefined) return;
    queue.push({ id: fields.get('id'), event: fields.get('event') ?? 'message', data: JSON.parse(data) });
  }

  return stream;
}

// --- Test data ---------------------------------------------------------------

const database = () => harness.testDb.database;

/** An order row (the access checks and the snapshot read it) for events to be about. */
async function insertOrder(outlet: TestOutlet, customerId: string): Promise<TrackedOrder> {
  const order = buildTrackedOrder({ outletId: outlet.id, customerId });
  const now = new Date();
  await database()
    .typed<OrdersSchema>()
    .run((db) =>
      db
        .insertInto('orders.orders')
        .values({
          id: order.orderId,
          outlet_id: order.outletId,
          customer_id: order.customerId,
          status: 'PLACED',
          currency: outlet.currency,
          total_minor: 899,
          placed_at: now,
          updated_at: now,
        })
        .execute(),
    );
  return order;
}

/** Emits the events as the orders feature would, then delivers them to the subscriptions. */
async function publish(events: OrderEvent[]): Promise<void> {
  await emitOrderEvents(database(), events);
  await harness.testApp.background.drainEvents();
}

const bearer = (caller: OrdersCaller) => ({ authorization: caller.authorization });
const orderStreamUrl = (orderId: string, base = baseUrl) => `${base}/orders/${orderId}/events`;
const boardStreamUrl = (outletId: string, base = baseUrl) => `${base}/orders/outlets/${outletId}/events`;
const summary = (events: SseEvent[]) => events.map((event) => [event.id, event.event, event.data.status]);

async function problemOf(url: string, headers: Record<string, string> = {}) {
  const response = await get(url, headers);
  let body = '';
  response.setEncoding('utf8');
  for await (const chunk of response) body += chunk;
  return { status: response.statusCode, code: (JSON.parse(body) as { code: string }).code };
}

// --- Tests -----------------------------------------------------------------

describe('GET /orders/:orderId/events (streamOrderEvents)', () => {
  it('streams the order’s events to its customer in order, ids being outlet feed positions', async () => {
    const outlet = await createTestOutlet(database());
    const customer = await signInCustomer(harness.testApp);
    const order = await insertOrder(outlet, customer.account.id);
    const stream = await openEventStream(orderStreamUrl(order.orderId), bearer(customer));

    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['cache-control']).toBe('no-store');
    expect(stream.headers['x-accel-buffering']).toBe('no');
    const [snapshot] = await stream.next(1);
    expect(snapshot).toMatchObject({
      id: '0',
      event: 'order_snapshot',
      data: { orderId: order.orderId, status: 'PLACED', version: 1 },
    });
    expect(stream.retryMs).toBeGreaterThan(0);

    await publish([orderPlaced(order), ...statusChanges(order, ['CONFIRMED', 'PREPARING'])]);

    const events = await stream.next(3);
    expect(summary(events)).toEqual([
      ['1', 'order_placed', 'PLACED'],
      ['2', 'order_status_changed', 'CONFIRMED'],
      ['3', 'order_status_changed', 'PREPARING'],
    ]);
    // The client view leaves out who changed it (a staff account).
    expect(Object.keys(events[1]?.data ?? {}).sort()).toEqual([
      'changedAt',
      'from',
      'orderId',
      'outletId',
      'status',
      'version',
    ]);
    stream.close();
  });

  it('sends only this order’s events, though ids count every event of the outlet', async () => {
    const outlet = await createTestOutlet(database());
    const customer = await signInCustomer(harness.testApp);
    const mine = await insertOrder(outlet, customer.account.id);
    const theirs = await insertOrder(outlet, randomUUID());
    const stream = await openEventStream(orderStreamUrl(mine.orderId), bearer(customer));
    await stream.next(1);

    await publish([orderPlaced(theirs), orderPlaced(mine), orderCancelled(mine, 'PLACED', 2)]);

    expect(summary(await stream.next(2))).toEqual([
      ['2', 'order_placed', 'PLACED'],
      ['3', 'order_cancelled', 'CANCELLED'],
    ]);
    stream.close();
  });

  it('opens with a snapshot at the outlet’s current position, so what follows is only what is new', async () => {
    const outlet = await createTestOutlet(database());
    const customer = await signInCustomer(harness.testApp);
    const order = await insertOrder(outlet, customer.account.id);
    await publish([orderPlaced(order), orderPlaced(await insertOrder(outlet, randomUUID()))]);

    const stream = await openEventStream(orderStreamUrl(order.orderId), bearer(customer));
    expect(summary(await stream.next(1))).toEqual([['2', 'order_snapshot', 'PLACED']]);

    await publish(statusChanges(order, ['CONFIRMED']));
    expect(summary(await stream.next(1))).toEqual([['3', 'order_status_changed', 'CONFIRMED']]);
    stream.close();
  });

  it('resumes after ?last_event_id= for clients that cannot send the header', async () => {
    const outlet = await createTestOutlet(database());
    const customer = await signInCustomer(harness.testApp);
    const order = await insertOrder(outlet, customer.account.id);
    await publish([orderPlaced(order), ...statusChanges(order, ['CONFIRMED', 'PREPARING'])]);

    const stream = await openEventStream(
      `${orderStreamUrl(order.orderId)}?last_event_id=1`,
      bearer(customer),
    );

    expect(summary(await stream.next(2))).toEqual([
      ['2', 'order_status_changed', 'CONFIRMED'],
      ['3', 'order_status_changed', 'PREPARING'],
    ]);
    stream.close();
  });

  it('lets staff of the order’s outlet and admins follow it', async () => {
    const outlet = await createTestOutlet(database());
    const order = await insertOrder(outlet, randomUUID());
    for (const caller of [
      await signInStaff(harness.testApp, database(), [outlet.id]),
      await signInOrdersAdmin(harness.testApp),
    ]) {
      const stream = await openEventStream(orderStreamUrl(order.orderId), bearer(caller));
      expect(stream.status).toBe(200);
      expect(summary(await stream.next(1))).toEqual([['0', 'order_snapshot', 'PLACED']]);
      stream.close();
    }
  });

  it('answers 404 orders.order_not_found for another customer’s order, another outlet’s staff and a missing order', async () => {
    const outlet = await createTestOutlet(database());
    const otherOutlet = await createTestOutlet(database());
    const owner = await signInCustomer(harness.testApp);
    const order = await insertOrder(outlet, owner.account.id);
    const otherCustomer = await signInCustomer(harness.testApp);
    const otherStaff = await signInStaff(harness.testApp, database(), [otherOutlet.id]);

    for (const caller of [otherCustomer, otherStaff]) {
      expect(await problemOf(orderStreamUrl(order.orderId), bearer(caller))).toEqual({
        status: 404,
        code: 'orders.order_not_found',
      });
    }
    expect(await problemOf(orderStreamUrl(randomUUID()), bearer(owner))).toEqual({
      status: 404,
      code: 'orders.order_not_found',
    });
  });

  it('answers 401 without credentials', async () => {
    const outlet = await createTestOutlet(database());
    const order = await insertOrder(outlet, randomUUID());
    expect(await problemOf(orderStreamUrl(order.orderId))).toEqual({
      status: 401,
      code: 'auth.unauthenticated',
    });
  });

  it('answers 400 orders.last_event_id_invalid for a Last-Event-ID that is not a non-negative integer', async () => {
    const outlet = await createTestOutlet(database());
    const customer = await signInCustomer(harness.testApp);
    const order = await insertOrder(outlet, customer.account.id);

    expect(
      await problemOf(orderStreamUrl(order.orderId), { ...bearer(customer), 'last-event-id': 'abc' }),
    ).toEqual({ status: 400, code: 'orders.last_event_id_invalid' });
    expect(await problemOf(`${orderStreamUrl(order.orderId)}?last_event_id=-1`, bearer(customer))).toEqual({
      status: 400,
      code: 'orders.last_event_id_invalid',
    });
  });
});

describe('GET /orders/outlets/:outletId/events (streamOutletEvents)', () => {
  it('resumes after Last-Event-ID with exactly the events missed while disconnected', async () => {
    const outlet = await createTestOutlet(database());
    const staff = await signInStaff(harness.testApp, database(), [outlet.id]);
    const order = await insertOrder(outlet, randomUUID());
    const [confirmed, preparing, ready, outForDelivery, delivered] = statusChanges(order, [
      'CONFIRMED',
      'PREPARING',
      'READY',
      'OUT_FOR_DELIVERY',
      'DELIVERED',
    ]).map((event) => [event]);

    const first = await openEventStream(boardStreamUrl(outlet.id), bearer(staff));
    await publish([orderPlaced(order), ...(confirmed ?? []), ...(preparing ?? [])]);
    const seen = await first.next(3);
    expect(summary(seen)).toEqual([
      ['1', 'order_placed', 'PLACED'],
      ['2', 'order_status_changed', 'CONFIRMED'],
      ['3', 'order_status_changed', 'PREPARING'],
    ]);
    first.close();

    await publish([...(ready ?? []), ...(outForDelivery ?? []), ...(delivered ?? [])]);

    const resumed = await openEventStream(boardStreamUrl(outlet.id), {
      ...bearer(staff),
      'last-event-id': seen.at(-1)?.id ?? '',
    });
    expect(summary(await resumed.next(3))).toEqual([
      ['4', 'order_status_changed', 'READY'],
      ['5', 'order_status_changed', 'OUT_FOR_DELIVERY'],
      ['6', 'order_status_changed', 'DELIVERED'],
    ]);
    // Nothing else was queued before the next live event: no duplicate, no extra.
    const next = await insertOrder(outlet, randomUUID());
    await publish([orderPlaced(next)]);
    expect(summary(await resumed.next(1))).toEqual([['7', 'order_placed', 'PLACED']]);
    resumed.close();
  });

  it('resumes from the head of the feed for a Last-Event-ID beyond it (a restored database)', async () => {
    const outlet = await createTestOutlet(database());
    const staff = await signInStaff(harness.testApp, database(), [outlet.id]);
    const order = await insertOrder(outlet, randomUUID());
    await publish([orderPlaced(order)]);
    const stream = await openEventStream(boardStreamUrl(outlet.id), {
      ...bearer(staff),
      'last-event-id': '999',
    });

    await publish(statusChanges(order, ['CONFIRMED']));

    expect(summary(await stream.next(1))).toEqual([['2', 'order_status_changed', 'CONFIRMED']]);
    stream.close();
  });

  it('keeps streams fed after the process’s listening connection is lost', async () => {
    const outlet = await createTestOutlet(database());
    const staff = await signInStaff(harness.testApp, database(), [outlet.id]);
    const order = await insertOrder(outlet, randomUUID());
    const stream = await openEventStream(boardStreamUrl(outlet.id), bearer(staff));
    await publish([orderPlaced(order)]);
    expect(summary(await stream.next(1))).toEqual([['1', 'order_placed', 'PLACED']]);

    const terminated = await database()
      .typed<unknown>()
      .run((db) =>
        sql<{
          isTerminated: boolean;
        }>`select pg_terminate_backend(pid) as "isTerminated" from pg_stat_activity
            where application_name = 'keel-orders-tracking' and datname = current_database()`.execute(db),
      );
    expect(terminated.rows).toEqual([{ isTerminated: true }]);
    // Notified while the listener is down, or after it is back: the reconnect's catch-up or the poll delivers it.
    await publish(statusChanges(order, ['CONFIRMED']));

    expect(summary(await stream.next(1))).toEqual([['2', 'order_status_changed', 'CONFIRMED']]);
    stream.close();
  });

  it('replays the outlet’s recent events to a board opened without Last-Event-ID', async () => {
    const outlet = await createTestOutlet(database());
    const admin = await signInOrdersAdmin(harness.testApp);
    const order = await insertOrder(outlet, randomUUID());
    await publish([orderPlaced(order), ...statusChanges(order, ['CONFIRMED'])]);

    const stream = await openEventStream(boardStreamUrl(outlet.id), bearer(admin));

    expect(summary(await stream.next(2))).toEqual([
      ['1', 'order_placed', 'PLACED'],
      ['2', 'order_status_changed', 'CONFIRMED'],
    ]);
    stream.close();
  });

  it('answers 404 orders.outlet_not_found to staff of another outlet and for a missing outlet', async () => {
    const outlet = await createTestOutlet(database());
    const otherStaff = await signInStaff(harness.testApp, database(), [
      (await createTestOutlet(database())).id,
    ]);
    const admin = await signInOrdersAdmin(harness.testApp);

    expect(await problemOf(boardStreamUrl(outlet.id), bearer(otherStaff))).toEqual({
      status: 404,
      code: 'orders.outlet_not_found',
    });
    expect(await problemOf(boardStreamUrl(randomUUID()), bearer(admin))).toEqual({
      status: 404,
      code: 'orders.outlet_not_found',
    });
  });

  it('answers 403 to a customer and 401 without credentials', async () => {
    const outlet = await createTestOutlet(database());
    const customer = await signInCustomer(harness.testApp);

    expect(await problemOf(boardStreamUrl(outlet.id), bearer(customer))).toEqual({
      status: 403,
      code: 'auth.forbidden',
    });
    expect(await problemOf(boardStreamUrl(outlet.id))).toEqual({ status: 401, code: 'auth.unauthenticated' });
  });

  it('answers 400 orders.last_event_id_invalid for a malformed Last-Event-ID', async () => {
    const outlet = await createTestOutlet(database());
    const staff = await signInStaff(harness.testApp, database(), [outlet.id]);
    expect(await problemOf(boardStreamUrl(outlet.id), { ...bearer(staff), 'last-event-id': '1.5' })).toEqual({
      status: 400,
      code: 'orders.last_event_id_invalid',
    });
  });
});

describe('fan-out across server processes', () => {
  let otherDatabase: Database;
  let other: TestApp;
  let otherUrl: string;
  let isOtherClosed = false;

  beforeAll(async () => {
    // Another process: its own pool, its own listener and hub, no bus running.
    otherDatabase = createDatabase(
      { ...TEST_DATABASE_SETTINGS, url: harness.testDb.url },
      createLogger({ level: 'silent' }),
    );
    other = await buildTestApp({
      database: otherDatabase,
      databaseUrl: harness.testDb.url,
      modules: [ordersModule],
      env: { RATE_LIMIT_ENABLED: 'false' },
    });
    otherUrl = await other.app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    if (!isOtherClosed) await other?.close();
    await otherDatabase?.close();
  });

  it('streams from one process the events another process’s subscription appended', async () => {
    const outlet = await createTestOutlet(database());
    const staff = await signInStaff(harness.testApp, database(), [outlet.id]);
    const order = await insertOrder(outlet, randomUUID());
    const here = await openEventStream(boardStreamUrl(outlet.id), bearer(staff));
    const there = await openEventStream(boardStreamUrl(outlet.id, otherUrl), bearer(staff));

    // Delivered by the first app's bus only; the other app learns of it through Postgres.
    await publish([orderPlaced(order), ...statusChanges(order, ['CONFIRMED'])]);

    const expected = [
      ['1', 'order_placed', 'PLACED'],
      ['2', 'order_status_changed', 'CONFIRMED'],
    ];
    expect(summary(await there.next(2))).toEqual(expected);
    expect(summary(await here.next(2))).toEqual(expected);
    here.close();
    there.close();
  });

  it('ends open streams when the app closes, so shutdown does not wait on them', async () => {
    const outlet = await createTestOutlet(database());
    const staff = await signInStaff(harness.testApp, database(), [outlet.id]);
    const order = await insertOrder(outlet, randomUUID());
    await publish([orderPlaced(order)]);
    const stream = await openEventStream(boardStreamUrl(outlet.id, otherUrl), bearer(staff));
    expect(summary(await stream.next(1))).toEqual([['1', 'order_placed', 'PLACED']]);

    await other.close();
    isOtherClosed = true;

    expect(await stream.untilEnd()).toEqual([]);
  });
});
