import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import {
  type EventDefinition,
  type EventEnvelope,
  type InventoryLowStockPayload,
  InventoryLowStockV1,
  type OrderCancelledPayload,
  OrderCancelledV1,
  type OrderPlacedPayload,
  OrderPlacedV1,
  type OrderStatusChangedPayload,
  OrderStatusChangedV1,
} from '@keel/contracts';
import { loadFieldCrypto } from '@keel/platform/crypto';
import type { AnyTransaction } from '@keel/platform/db';
import { isAppError } from '@keel/platform/errors';
import { type JobSender, systemClock } from '@keel/platform/module';
import { emitEvent, type Subscription } from '@keel/platform/outbox';
import { useTestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import type { TSchema } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ordersModule } from '../src/index.ts';
import { createWebhookFanOutSubscription } from '../src/webhooks/on-order-event.handler.ts';
import type { WebhooksSchema } from '../src/webhooks/webhook.repository.ts';
import { WEBHOOK_RETRY_LIMIT } from '../src/webhooks/webhook.ts';
import {
  createWebhookDeliveryQueue,
  WEBHOOK_DELIVERY_QUEUE,
  type WebhookDeliveryJob,
} from '../src/webhooks/webhook-delivery.job.ts';
import { verifyWebhookSignature } from '../src/webhooks/webhook-signature.ts';
import {
  batchHandlerOf,
  countingStatements,
  type OrdersCaller,
  signInCustomer,
  signInOrdersAdmin,
  signInStaff,
} from './fixtures.ts';

const harness = useTestApp({ modules: [ordersModule], env: { RATE_LIMIT_ENABLED: 'false' } });
const inject = (options: InjectOptions) => harness.testApp.app.inject(options);

// A local receiver. Each test uses its own path; `script` lists the statuses
// a path answers before it answers 200, and paths under /hang never answer.
type Received = { path: string; headers: IncomingHttpHeaders; body: string };
const received: Received[] = [];
const script = new Map<string, number[]>();
let receiver: Server;
let baseUrl: string;

let admin: OrdersCaller;
let staff: OrdersCaller;
let customer: OrdersCaller;

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      received.push({ path, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path.startsWith('/hang/')) return;
      const status = script.get(path)?.shift() ?? 200;
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  admin = await signInOrdersAdmin(harness.testApp);
  staff = await signInStaff(harness.testApp, harness.testDb.database, []);
  customer = await signInCustomer(harness.testApp);
});

afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

function receivedAt(path: string): Received[] {
  return received.filter((request) => request.path === path);
}

function call(
  caller: OrdersCaller | undefined,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  payload?: object,
) {
  return inject({
    method,
    url,
    headers: caller === undefined ? {} : { authorization: caller.authorization },
    ...(payload === undefined ? {} : { payload }),
  });
}

type CreatedEndpoint = { id: string; url: string; secret: string; event_types: string[]; is_active: boolean };
type Delivery = {
  id: string;
  event_id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: string | null;
  dead_at: string | null;
};

async function createEndpoint(
  path: string,
  eventTypes: string[] = [OrderPlacedV1.type],
): Promise<CreatedEndpoint> {
  const response = await call(admin, 'POST', '/orders/webhooks', {
    url: `${baseUrl}${path}`,
    event_types: eventTypes,
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

async function listDeliveries(endpointId: string): Promise<Delivery[]> {
  const response = await call(admin, 'GET', `/orders/webhooks/${endpointId}/deliveries`);
  expect(response.statusCode, response.body).toBe(200);
  return response.json().deliveries;
}

/** Waits (bounded) until the endpoint's only delivery has left `pending`. */
async function waitForSettledDelivery(endpointId: string): Promise<Delivery> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const [delivery] = await listDeliveries(endpointId);
    if (delivery !== undefined && delivery.status !== 'pending') return delivery;
    if (Date.now() > deadline)
      throw new Error(`delivery of ${endpointId} still pending: ${JSON.stringify(delivery)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function emit(definition: EventDefinition<string, TSchema>, aggregateId: string, payload: object) {
  return harness.testDb.database
    .typed<unknown>()
    .transaction((trx) =>
      emitEvent(trx, { type: definition.type, aggregateType: 'order', aggregateId, payload }, { definition }),
    );
}

function buildPlacedPayload(): OrderPlacedPayload {
  return {
    orderId: randomUUID(),
    outletId: randomUUID(),
    customerId: randomUUID(),
    version: 1,
    currency: 'EUR',
    totalMinor: 1248,
    lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 1, unitPriceMinor: 1248 }],
    placedAt: new Date().toISOString(),
  };
}

function emitPlaced(): Promise<EventEnvelope> {
  const payload = buildPlacedPayload();
  return emit(OrderPlacedV1, payload.orderId, payload);
}

function buildLowStockPayload(): InventoryLowStockPayload {
  return {
    stockItemId: randomUUID(),
    outletId: randomUUID(),
    sku: 'BUN',
    name: 'Brioche bun',
    available: 4,
    threshold: 10,
    onHand: 6,
    reserved: 2,
    cause: 'adjustment',
    detectedAt: new Date().toISOString(),
  };
}

function emitLowStock(): Promise<EventEnvelope> {
  const payload = buildLowStockPayload();
  return emit(InventoryLowStockV1, payload.stockItemId, payload);
}

describe('webhook endpoints', () => {
  it('creates an endpoint and shows its secret once, stored encrypted', async () => {
    const response = await call(admin, 'POST', '/orders/webhooks', {
      url: `${baseUrl}/crud`,
      event_types: [OrderPlacedV1.type, InventoryLowStockV1.type],
      description: 'ERP',
    });
    expect(response.statusCode, response.body).toBe(201);
    const created = response.json();
    expect(created).toMatchObject({
      url: `${baseUrl}/crud`,
      description: 'ERP',
      event_types: [OrderPlacedV1.type, InventoryLowStockV1.type],
      is_active: true,
      created_by: admin.account.id,
      deactivated_at: null,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    expect(response.headers.location).toBe(`/orders/webhooks/${created.id}`);
    expect(response.headers['cache-control']).toBe('no-store');

    const listed = await call(admin, 'GET', '/orders/webhooks');
    expect(listed.statusCode).toBe(200);
    const { secret, ...withoutSecret } = created;
    expect(listed.json().webhooks).toContainEqual(withoutSecret);
    expect(listed.body).not.toContain(secret);

    const stored = await harness.testDb.database.pool.query<{ secret_encrypted: string }>(
      'select secret_encrypted from orders.webhook_endpoints where id = $1',
      [created.id],
    );
    expect(stored.rows[0]?.secret_encrypted).toMatch(/^kv1\./);
    expect(stored.rows[0]?.secret_encrypted).not.toContain(secret.slice('whsec_'.length));
    expect(harness.testApp.logs.text()).not.toContain(secret.slice('whsec_'.length));

    const audit = await harness.testDb.database.pool.query<{ action: string; actor_id: string }>(
      'select action, actor_id from platform.audit_events where resource_id = $1',
      [created.id],
    );
    expect(audit.rows).toEqual([{ action: 'orders.webhook_endpoint_created', actor_id: admin.account.id }]);
  });

  it('deactivates an endpoint idempotently and answers 404 orders.webhook_endpoint_not_found for an unknown one', async () => {
    const endpoint = await createEndpoint(`/deactivate/${randomUUID()}`);
    const first = await call(admin, 'DELETE', `/orders/webhooks/${endpoint.id}`);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({
      id: endpoint.id,
      is_active: false,
      deactivated_at: expect.any(String),
    });
    const second = await call(admin, 'DELETE', `/orders/webhooks/${endpoint.id}`);
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(first.json());

    for (const [method, url] of [
      ['DELETE', `/orders/webhooks/${randomUUID()}`],
      ['GET', `/orders/webhooks/${randomUUID()}/deliveries`],
    ] as const) {
      const response = await call(admin, method, url);
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'orders.webhook_endpoint_not_found' });
    }
  });

  it('refuses a plain-http public URL, an unknown event type and an empty list with 400', async () => {
    const insecure = await call(admin, 'POST', '/orders/webhooks', {
      url: 'http://hooks.example.com/orders',
      event_types: [OrderPlacedV1.type],
    });
    expect(insecure.statusCode).toBe(400);
    expect(insecure.json()).toMatchObject({ code: 'orders.webhook_url_invalid' });
    for (const eventTypes of [['orders.order_eaten.v1'], []]) {
      const response = await call(admin, 'POST', '/orders/webhooks', {
        url: `${baseUrl}/x`,
        event_types: eventTypes,
      });
      expect(response.statusCode, JSON.stringify(eventTypes)).toBe(400);
    }
  });

  it('refuses staff and customers with 403 and anonymous callers with 401 on every webhook route', async () => {
    const id = randomUUID();
    const routes = [
      ['POST', '/orders/webhooks', { url: `${baseUrl}/x`, event_types: [OrderPlacedV1.type] }],
      ['GET', '/orders/webhooks', undefined],
      ['DELETE', `/orders/webhooks/${id}`, undefined],
      ['GET', `/orders/webhooks/${id}/deliveries`, undefined],
    ] as const;
    for (const [method, url, payload] of routes) {
      for (const caller of [staff, customer]) {
        const response = await call(caller, method, url, payload);
        expect(response.statusCode, `${method} ${url}`).toBe(403);
        expect(response.json()).toMatchObject({ code: 'auth.forbidden' });
      }
      expect((await call(undefined, method, url, payload)).statusCode).toBe(401);
    }
  });
});

describe('webhook delivery through the job queue', () => {
  it('POSTs a signed envelope the receiver verifies, and marks it delivered', async () => {
    const path = `/ok/${randomUUID()}`;
    const endpoint = await createEndpoint(path);
    const event = await emitPlaced();
    await harness.testApp.background.drainEvents();

    const delivery = await waitForSettledDelivery(endpoint.id);
    expect(delivery).toMatchObject({
      event_id: event.id,
      event_type: OrderPlacedV1.type,
      status: 'delivered',
      attempts: 1,
      last_status_code: 200,
      last_error: null,
      delivered_at: expect.any(String),
    });
    const [request] = receivedAt(path);
    expect(request).toBeDefined();
    if (request === undefined) return;
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['webhook-id']).toBe(event.id);
    expect(verifyWebhookSignature(endpoint.secret, request.headers, request.body)).toEqual({
      isValid: true,
      id: event.id,
      timestamp: expect.any(Number),
    });
    expect(JSON.parse(request.body)).toEqual({
      id: event.id,
      type: OrderPlacedV1.type,
      occurredAt: event.occurredAt,
      schemaVersion: 1,
      aggregateType: 'order',
      aggregateId: event.aggregateId,
      payload: event.payload,
    });
  });

  it('delivers only the event types an endpoint subscribed to, and nothing to a deactivated endpoint', async () => {
    const lowStockPath = `/low-stock/${randomUUID()}`;
    const lowStockOnly = await createEndpoint(lowStockPath, [InventoryLowStockV1.type]);
    const deactivated = await createEndpoint(`/off/${randomUUID()}`, [
      OrderPlacedV1.type,
      InventoryLowStockV1.type,
    ]);
    await call(admin, 'DELETE', `/orders/webhooks/${deactivated.id}`);

    await emitPlaced();
    const lowStock = await emitLowStock();
    await harness.testApp.background.drainEvents();

    const delivery = await waitForSettledDelivery(lowStockOnly.id);
    expect(delivery).toMatchObject({
      event_id: lowStock.id,
      event_type: InventoryLowStockV1.type,
      status: 'delivered',
    });
    expect(await listDeliveries(lowStockOnly.id)).toHaveLength(1);
    expect(await listDeliveries(deactivated.id)).toEqual([]);
  });

  it('dead-letters a delivery the receiver refuses with 400 without retrying, and delivers it on replay', async () => {
    const path = `/reject/${randomUUID()}`;
    script.set(path, [400]);
    const endpoint = await createEndpoint(path);
    await emitPlaced();
    await harness.testApp.background.drainEvents();

    const delivery = await waitForSettledDelivery(endpoint.id);
    expect(delivery).toMatchObject({
      status: 'dead',
      attempts: 1,
      last_status_code: 400,
      last_error: 'orders.webhook_rejected',
      dead_at: expect.any(String),
    });
    const deadLetters = await harness.testApp.background
      .jobs()
      .listDeadLetters(WEBHOOK_DELIVERY_QUEUE, { limit: 1000 });
    const deadLetter = deadLetters.find(
      (letter) => (letter.data as WebhookDeliveryJob).deliveryId === delivery.id,
    );
    expect(deadLetter).toMatchObject({
      retryCount: 0,
      error: { kind: 'invalid', code: 'orders.webhook_delivery_rejected' },
    });
    expect(receivedAt(path)).toHaveLength(1);

    // The receiver is fixed (it answers 200 from now on); an operator replays the dead letter.
    await harness.testApp.background.jobs().replayDeadLetter(WEBHOOK_DELIVERY_QUEUE, deadLetter?.id ?? '');
    const deadline = Date.now() + 15_000;
    let replayed = (await listDeliveries(endpoint.id))[0];
    while (replayed?.status !== 'delivered' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      replayed = (await listDeliveries(endpoint.id))[0];
    }
    expect(replayed).toMatchObject({
      id: delivery.id,
      status: 'delivered',
      attempts: 2,
      last_status_code: 200,
      last_error: null,
      dead_at: null,
    });
    expect(receivedAt(path)).toHaveLength(2);
  });
});

describe('webhook delivery job, run directly', () => {
  // pg-boss's backoff (5 s, doubling) is too slow for a test: these call the
  // job handler as pg-boss would, attempt after attempt. Fan-out runs the real
  // subscription with a recording job sender, so no queued job races them.
  const sentJobs: WebhookDeliveryJob[] = [];
  const recordingSender: JobSender = {
    send: async () => null,
    sendWith: async (_trx, _name, data) => {
      sentJobs.push(data as unknown as WebhookDeliveryJob);
      return randomUUID();
    },
    sendManyWith: async (_trx, _name, data) => {
      sentJobs.push(...(data as unknown as WebhookDeliveryJob[]));
    },
  };

  function buildQueue(options: { timeoutMs?: number } = {}) {
    const { encryption } = loadFieldCrypto({
      dataDirectory: harness.testApp.config.KEEL_DATA_DIR,
      allowGenerate: true,
    });
    return createWebhookDeliveryQueue({
      db: harness.testDb.database.typed<WebhooksSchema>(),
      clock: systemClock,
      encryption,
      fetch: globalThis.fetch,
      logger: harness.testApp.logger,
      ...options,
    });
  }

  /** Records the deliveries of a fresh order_placed event, returns the one for `endpointId`. */
  async function fanOut(endpointId: string): Promise<string> {
    const payload = buildPlacedPayload();
    const event: EventEnvelope = {
      id: randomUUID(),
      type: OrderPlacedV1.type,
      aggregateType: 'order',
      aggregateId: payload.orderId,
      occurredAt: new Date().toISOString(),
      schemaVersion: 1,
      payload,
    };
    const subscription = createWebhookFanOutSubscription({
      clock: systemClock,
      ids: { uuid: randomUUID },
      jobs: recordingSender,
    });
    await harness.testDb.database.typed<unknown>().transaction((trx) => subscription.handler(event, trx));
    const [delivery] = await listDeliveries(endpointId);
    if (delivery === undefined) throw new Error('no delivery recorded');
    expect(sentJobs).toContainEqual({ deliveryId: delivery.id });
    return delivery.id;
  }

  function attempt(queue: ReturnType<typeof buildQueue>, deliveryId: string, retryCount: number) {
    return queue.handler({
      id: randomUUID(),
      name: WEBHOOK_DELIVERY_QUEUE,
      data: { deliveryId },
      retryCount,
      signal: new AbortController().signal,
    });
  }

  async function expectAppError(promise: Promise<void>, kind: string, code: string) {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isAppError(error) ? { kind: error.kind, code: error.code } : error).toEqual({ kind, code });
  }

  it('retries after 500 twice, then marks the delivery delivered on the 200', async () => {
    const path = `/flaky/${randomUUID()}`;
    script.set(path, [500, 500]);
    const endpoint = await createEndpoint(path);
    const deliveryId = await fanOut(endpoint.id);
    const queue = buildQueue();

    await expectAppError(attempt(queue, deliveryId, 0), 'unavailable', 'orders.webhook_delivery_failed');
    await expectAppError(attempt(queue, deliveryId, 1), 'unavailable', 'orders.webhook_delivery_failed');
    expect((await listDeliveries(endpoint.id))[0]).toMatchObject({
      status: 'pending',
      attempts: 2,
      last_status_code: 500,
      last_error: 'orders.webhook_server_error',
    });
    await attempt(queue, deliveryId, 2);
    expect((await listDeliveries(endpoint.id))[0]).toMatchObject({
      status: 'delivered',
      attempts: 3,
      last_status_code: 200,
      last_error: null,
    });
    // Each attempt is signed afresh and verifies.
    const requests = receivedAt(path);
    expect(requests).toHaveLength(3);
    for (const request of requests)
      expect(verifyWebhookSignature(endpoint.secret, request.headers, request.body).isValid).toBe(true);
    // A rerun (a replayed dead letter, a duplicate job) of a delivered delivery sends nothing.
    await attempt(queue, deliveryId, 0);
    expect(receivedAt(path)).toHaveLength(3);
  });

  it('marks the delivery dead when its last retry fails too', async () => {
    const path = `/down/${randomUUID()}`;
    script.set(path, [503]);
    const endpoint = await createEndpoint(path);
    const deliveryId = await fanOut(endpoint.id);

    await expectAppError(
      attempt(buildQueue(), deliveryId, WEBHOOK_RETRY_LIMIT),
      'unavailable',
      'orders.webhook_delivery_failed',
    );
    expect((await listDeliveries(endpoint.id))[0]).toMatchObject({
      status: 'dead',
      attempts: 1,
      last_status_code: 503,
      dead_at: expect.any(String),
    });
  });

  it('gives up an attempt at the timeout and retries it', async () => {
    const path = `/hang/${randomUUID()}`;
    const endpoint = await createEndpoint(path);
    const deliveryId = await fanOut(endpoint.id);

    await expectAppError(
      attempt(buildQueue({ timeoutMs: 200 }), deliveryId, 0),
      'unavailable',
      'orders.webhook_delivery_failed',
    );
    expect((await listDeliveries(endpoint.id))[0]).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_status_code: null,
      last_error: 'orders.webhook_timeout',
    });
  });

  it('stops calling an endpoint after 5 failures in a row (circuit open)', async () => {
    const path = `/broken/${randomUUID()}`;
    script.set(path, [500, 500, 500, 500, 500, 500]);
    const endpoint = await createEndpoint(path);
    const deliveryId = await fanOut(endpoint.id);
    const queue = buildQueue();

    for (let retryCount = 0; retryCount < 6; retryCount += 1)
      await expectAppError(
        attempt(queue, deliveryId, retryCount),
        'unavailable',
        'orders.webhook_delivery_failed',
      );
    expect(receivedAt(path)).toHaveLength(5);
    expect((await listDeliveries(endpoint.id))[0]).toMatchObject({
      status: 'pending',
      attempts: 6,
      last_error: 'orders.webhook_circuit_open',
    });
  });

  it('cancels a pending delivery whose endpoint was deactivated, without calling it', async () => {
    const path = `/late/${randomUUID()}`;
    const endpoint = await createEndpoint(path);
    const deliveryId = await fanOut(endpoint.id);
    await call(admin, 'DELETE', `/orders/webhooks/${endpoint.id}`);

    await attempt(buildQueue(), deliveryId, 0);
    expect((await listDeliveries(endpoint.id))[0]).toMatchObject({
      status: 'cancelled',
      attempts: 0,
      last_error: 'orders.webhook_endpoint_inactive',
    });
    expect(receivedAt(path)).toHaveLength(0);
  });
});

describe('webhook fan-out, a batch at once and one event at a time', () => {
  // A recording job sender, as above: the jobs would POST to every active
  // endpoint of earlier tests too, racing their assertions.
  type SentJobs = { method: 'sendWith' | 'sendManyWith'; deliveryIds: string[] };

  function buildSubscription(calls: SentJobs[]): Subscription {
    const jobs: JobSender = {
      send: async () => {
        throw new Error('fan-out enqueues inside its transaction');
      },
      sendWith: async (_trx, name, data) => {
        expect(name).toBe(WEBHOOK_DELIVERY_QUEUE);
        calls.push({ method: 'sendWith', deliveryIds: [(data as unknown as WebhookDeliveryJob).deliveryId] });
        return randomUUID();
      },
      sendManyWith: async (_trx, name, data) => {
        expect(name).toBe(WEBHOOK_DELIVERY_QUEUE);
        const deliveryJobs = data as unknown as readonly WebhookDeliveryJob[];
        calls.push({ method: 'sendManyWith', deliveryIds: deliveryJobs.map((job) => job.deliveryId) });
      },
    };
    return createWebhookFanOutSubscription({ clock: systemClock, ids: { uuid: randomUUID }, jobs });
  }

  function inTransaction(work: (trx: AnyTransaction) => Promise<void>): Promise<void> {
    return harness.testDb.database.typed<unknown>().transaction(work);
  }

  function envelope(
    name: string,
    names: Map<string, string>,
    definition: EventDefinition<string, TSchema>,
    aggregateId: string,
    payload: object,
  ): EventEnvelope {
    const event: EventEnvelope = {
      id: randomUUID(),
      type: definition.type,
      aggregateType: 'order',
      aggregateId,
      occurredAt: new Date().toISOString(),
      schemaVersion: 1,
      payload,
    };
    names.set(event.id, name);
    return event;
  }

  /**
   * Two orders' events of four types, one of them two events of one order (the
   * subscription is not ordered per order, so a batch may hold both), never
   * written to the outbox. `names`: event id to name.
   */
  function buildEvents(): { events: EventEnvelope[]; names: Map<string, string> } {
    const names = new Map<string, string>();
    const first = buildPlacedPayload();
    const second = buildPlacedPayload();
    const lowStock = buildLowStockPayload();
    const confirmed: OrderStatusChangedPayload = {
      orderId: first.orderId,
      outletId: first.outletId,
      customerId: first.customerId,
      from: 'PLACED',
      to: 'CONFIRMED',
      version: 2,
      placedAt: first.placedAt,
      changedAt: new Date().toISOString(),
      changedBy: randomUUID(),
    };
    const cancelled: OrderCancelledPayload = {
      orderId: second.orderId,
      outletId: second.outletId,
      customerId: second.customerId,
      from: 'PLACED',
      version: 2,
      cancelledBy: 'customer',
      reason: 'Changed my mind',
      currency: 'EUR',
      totalMinor: second.totalMinor,
      releasedStock: [],
      placedAt: second.placedAt,
      cancelledAt: new Date().toISOString(),
    };
    const events = [
      envelope('1 placed', names, OrderPlacedV1, first.orderId, first),
      envelope('2 placed', names, OrderPlacedV1, second.orderId, second),
      envelope('1 confirmed', names, OrderStatusChangedV1, first.orderId, confirmed),
      envelope('low stock', names, InventoryLowStockV1, lowStock.stockItemId, lowStock),
      envelope('2 cancelled', names, OrderCancelledV1, second.orderId, cancelled),
    ];
    return { events, names };
  }

  /** Two endpoints of this test, subscribed to different types, by name. */
  async function createTwoEndpoints(): Promise<Map<string, string>> {
    const placedAndLowStock = await createEndpoint(`/batch/${randomUUID()}`, [
      OrderPlacedV1.type,
      InventoryLowStockV1.type,
    ]);
    const placedAndStatus = await createEndpoint(`/batch/${randomUUID()}`, [
      OrderPlacedV1.type,
      OrderStatusChangedV1.type,
    ]);
    return new Map([
      [placedAndLowStock.id, 'placed+low-stock'],
      [placedAndStatus.id, 'placed+status'],
    ]);
  }

  /**
   * The deliveries of `events` as stored, with event and endpoint names for ids
   * (endpoints of earlier tests are all `other`), sorted; and whether exactly
   * one job was sent per delivery.
   */
  async function storedFanOut(
    scenario: { events: EventEnvelope[]; names: Map<string, string> },
    endpointNames: Map<string, string>,
    calls: SentJobs[],
  ) {
    const result = await harness.testDb.database.pool.query<{
      id: string;
      endpoint_id: string;
      event_id: string;
      event_type: string;
      body: string;
      status: string;
      attempts: number;
    }>(
      `select id, endpoint_id, event_id, event_type, body, status, attempts
         from orders.webhook_deliveries where event_id = any($1::uuid[])`,
      [scenario.events.map((event) => event.id)],
    );
    const deliveries = result.rows
      .map((row) => {
        const event = scenario.events.find((candidate) => candidate.id === row.event_id);
        const { id, type, occurredAt, schemaVersion, aggregateType, aggregateId, payload } = event ?? {};
        const sent = { id, type, occurredAt, schemaVersion, aggregateType, aggregateId, payload };
        return {
          event: scenario.names.get(row.event_id),
          endpoint: endpointNames.get(row.endpoint_id) ?? 'other',
          eventType: row.event_type,
          body: isDeepStrictEqual(JSON.parse(row.body), sent) ? 'the event' : row.body,
          status: row.status,
          attempts: row.attempts,
        };
      })
      .sort((left, right) =>
        `${left.event} ${left.endpoint}`.localeCompare(`${right.event} ${right.endpoint}`),
      );
    const jobs = calls.flatMap((call) => call.deliveryIds).sort();
    return {
      deliveries,
      isOneJobPerDelivery: isDeepStrictEqual(jobs, result.rows.map((row) => row.id).sort()),
    };
  }

  const fannedOut = (event: string, endpoint: string, eventType: string) => ({
    event,
    endpoint,
    eventType,
    body: 'the event',
    status: 'pending',
    attempts: 0,
  });
  const EXPECTED_OF_THIS_TEST = [
    fannedOut('1 confirmed', 'placed+status', OrderStatusChangedV1.type),
    fannedOut('1 placed', 'placed+low-stock', OrderPlacedV1.type),
    fannedOut('1 placed', 'placed+status', OrderPlacedV1.type),
    fannedOut('2 placed', 'placed+low-stock', OrderPlacedV1.type),
    fannedOut('2 placed', 'placed+status', OrderPlacedV1.type),
    fannedOut('low stock', 'placed+low-stock', InventoryLowStockV1.type),
  ];

  it('records the same deliveries and jobs through handleBatch as through handler event by event', async () => {
    const endpointNames = await createTwoEndpoints();
    const oneByOneCalls: SentJobs[] = [];
    const oneByOne = buildEvents();
    const batchedCalls: SentJobs[] = [];
    const batched = buildEvents();

    const handler = buildSubscription(oneByOneCalls).handler;
    await inTransaction(async (trx) => {
      for (const event of oneByOne.events) await handler(event, trx);
    });
    const handleBatch = batchHandlerOf(buildSubscription(batchedCalls));
    await inTransaction((trx) => handleBatch(batched.events, trx));

    const expected = await storedFanOut(oneByOne, endpointNames, oneByOneCalls);
    expect(expected.isOneJobPerDelivery).toBe(true);
    expect(expected.deliveries.filter((delivery) => delivery.endpoint !== 'other')).toEqual(
      EXPECTED_OF_THIS_TEST,
    );
    // Endpoints of earlier tests included: the same fan-out, whatever they subscribed to.
    expect(await storedFanOut(batched, endpointNames, batchedCalls)).toEqual(expected);
    // One call for the batch, where the handler enqueues one job at a time.
    expect(batchedCalls.map((call) => call.method)).toEqual(['sendManyWith']);
  });

  it('fans a batch out in two statements and one job call, and in one statement when no endpoint takes its types', async () => {
    const endpointNames = await createTwoEndpoints();
    const calls: SentJobs[] = [];
    const handleBatch = batchHandlerOf(buildSubscription(calls));
    const scenario = buildEvents();

    await inTransaction(async (trx) => {
      const counting = countingStatements(trx);
      await handleBatch(scenario.events, counting.trx);
      // The endpoints, the deliveries; the jobs are the recording sender's one call.
      expect(counting.statements()).toBe(2);
    });
    expect(calls.map((call) => call.method)).toEqual(['sendManyWith']);
    expect((await storedFanOut(scenario, endpointNames, calls)).isOneJobPerDelivery).toBe(true);

    // No endpoint can subscribe to a type outside WEBHOOK_EVENT_TYPES.
    const names = new Map<string, string>();
    const unsubscribed = [
      envelope('unknown', names, OrderPlacedV1, randomUUID(), buildPlacedPayload()),
      envelope('unknown again', names, OrderPlacedV1, randomUUID(), buildPlacedPayload()),
    ].map((event) => ({ ...event, type: 'orders.order_eaten.v1' }));
    calls.length = 0;
    await inTransaction(async (trx) => {
      const counting = countingStatements(trx);
      await handleBatch(unsubscribed, counting.trx);
      expect(counting.statements()).toBe(1);
    });
    expect(calls.flatMap((call) => call.deliveryIds)).toEqual([]);
  });

  it('records no second delivery and enqueues no second job when a batch is handled again', async () => {
    const endpointNames = await createTwoEndpoints();
    const calls: SentJobs[] = [];
    const subscription = buildSubscription(calls);
    const handleBatch = batchHandlerOf(subscription);
    const scenario = buildEvents();
    await inTransaction((trx) => handleBatch(scenario.events, trx));
    const first = await storedFanOut(scenario, endpointNames, calls);

    // Redelivered as a batch, then one event at a time: (event, endpoint) keys the deliveries.
    await inTransaction((trx) => handleBatch(scenario.events, trx));
    await inTransaction(async (trx) => {
      for (const event of scenario.events) await subscription.handler(event, trx);
    });

    const again = await storedFanOut(scenario, endpointNames, calls);
    expect(again).toEqual(first);
    expect(again.isOneJobPerDelivery).toBe(true);
    expect(again.deliveries.filter((delivery) => delivery.endpoint !== 'other')).toEqual(
      EXPECTED_OF_THIS_TEST,
    );
  });
});
