import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_PASSWORD } from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { createTestOutlet, type MenuSpec, type TestOutlet } from '../../../services/orders/test/fixtures.ts';
import { logInThrough, type ServerProcess, useServerProcesses } from './process-harness.ts';

// The issue's crash test: the real server process is SIGKILLed while order
// placements are in flight, and a fresh process on the same database and
// keys takes over. Clients retry every request that got no answer with the
// same Idempotency-Key. Afterwards the database must show each key placed
// exactly one order, each order emitted exactly one `order_placed`, every
// subscriber of that type received it, and no subscriber applied it twice.

const ORDER_PLACED = 'orders.order_placed.v1';
const CUSTOMER_COUNT = 6;
const CONCURRENT_CLIENTS = 30;
const CREATED_BEFORE_KILL = 150;
// Ends the load if the kill never comes (the server failing every request).
const MAX_ATTEMPTS_BEFORE_KILL = 2_000;
const READY_TIMEOUT_MS = 30_000;
const RETRY_ROUNDS = 40;
const DELIVERY_WAIT_MS = 60_000;
// Deep stock, threshold 0: no order is refused and no low-stock event joins in.
const STOCK_ON_HAND = 100_000;
const MENU: MenuSpec[] = [
  { name: 'Burger', priceMinor: 899, uses: { BUN: 1, PATTY: 1 } },
  { name: 'Fries', priceMinor: 349, uses: { POTATO: 1 } },
  { name: 'Cola', priceMinor: 250, uses: { CAN: 1 } },
];

type Customer = { authorization: string };
type PlaceBody = { outlet_id: string; lines: { menu_item_id: string; quantity: number }[] };
type Answer = { status: number; code?: string; orderId?: string; isReplayed: boolean };
/** One logical client request: its key, and how each of its tries ended. */
type Attempt = {
  key: string;
  customer: Customer;
  menuName: string;
  body: PlaceBody;
  /** The answer before the crash; undefined when the connection died first. */
  firstAnswer?: Answer;
  finalAnswer?: Answer;
};

const processes = useServerProcesses({ prefix: 'keel-crash-', readyTimeoutMs: READY_TIMEOUT_MS });

function startServer(): Promise<ServerProcess> {
  return processes.start({
    // A claim left behind by the dead process can be taken over after 1 s.
    IDEMPOTENCY_LOCK_TIMEOUT_MS: '1000',
    // 30 clients share the pool with the dispatchers; waiting for a pooled
    // connection counts against this timeout and is not an outage here.
    DATABASE_CONNECT_TIMEOUT_MS: '10000',
  });
}

function requireId(id: string | undefined, what: string): string {
  if (id === undefined) throw new Error(`fixture id missing: ${what}`);
  return id;
}

async function logIn(baseUrl: string, email: string): Promise<Customer> {
  return { authorization: await logInThrough(baseUrl, email, TEST_PASSWORD) };
}

/** Sends the attempt's request; throws when the connection dies before the whole answer arrived. */
async function send(baseUrl: string, attempt: Attempt): Promise<Answer> {
  const response = await fetch(`${baseUrl}/orders`, {
    method: 'POST',
    headers: {
      authorization: attempt.customer.authorization,
      'idempotency-key': attempt.key,
      'content-type': 'application/json',
    },
    body: JSON.stringify(attempt.body),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { id?: string; code?: string };
  return {
    status: response.status,
    ...(body.code === undefined ? {} : { code: body.code }),
    ...(response.status === 201 && body.id !== undefined ? { orderId: body.id } : {}),
    isReplayed: response.headers.get('idempotent-replayed') === 'true',
  };
}

let inProgressAnswers = 0;

/** The retry a client makes after a lost answer: same key, same body, again while the key is still held. */
async function retryUntilSettled(baseUrl: string, attempt: Attempt): Promise<Answer> {
  for (let round = 0; round < RETRY_ROUNDS; round += 1) {
    const answer = await send(baseUrl, attempt);
    if (answer.status !== 409 || answer.code !== 'idempotency.in_progress') return answer;
    inProgressAnswers += 1;
    await sleep(250);
  }
  throw new Error(`key ${attempt.key} still in progress after ${RETRY_ROUNDS} retries`);
}

function tally(answers: (Answer | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const answer of answers) {
    const label =
      answer === undefined ? 'no response' : `${answer.status}${answer.code ? ` ${answer.code}` : ''}`;
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

async function queryRows<Row>(text: string, values: unknown[] = []): Promise<Row[]> {
  const result = await processes.testDb.database.pool.query(text, values);
  return result.rows as Row[];
}

async function queryNumber(text: string, values: unknown[] = []): Promise<number> {
  const rows = await queryRows<{ value: string | number | null }>(text, values);
  return Number(rows[0]?.value ?? 0);
}

async function tableExists(name: string): Promise<boolean> {
  return (
    (await queryNumber('select count(*) as value from (select to_regclass($1) as t) r where t is not null', [
      name,
    ])) === 1
  );
}

/** Deliveries of `order_placed` not yet handled by some subscriber (pending or dead). */
function countUndelivered(status: 'pending' | 'dead'): Promise<number> {
  return queryNumber(
    `select count(*) as value
       from platform.event_deliveries d
       join platform.outbox_events e on e.position = d.position
      where e.type = $1 and d.status = $2`,
    [ORDER_PLACED, status],
  );
}

async function waitForDeliveries(): Promise<void> {
  const deadline = Date.now() + DELIVERY_WAIT_MS;
  for (;;) {
    const pending = await countUndelivered('pending');
    if (pending === 0) return;
    if (Date.now() > deadline) throw new Error(`${pending} order_placed deliveries still pending`);
    await sleep(100);
  }
}

/** Event ids of `order_placed` whose effect row in `table` is missing or present more than once. */
function eventsWithoutExactlyOneRow(table: string, condition = 'true'): Promise<{ id: string }[]> {
  return queryRows<{ id: string }>(
    `select e.id
       from platform.outbox_events e
       left join ${table} effect on effect.event_id = e.id and ${condition}
      where e.type = $1
      group by e.id
     having count(effect.event_id) <> 1`,
    [ORDER_PLACED],
  );
}

describe('orders under a server crash', () => {
  it('keeps every answered order, places each retried key once and delivers every order_placed once to every subscriber when the server is killed mid-load and restarted', async () => {
    let first: ServerProcess | undefined;
    let second: ServerProcess | undefined;
    try {
      // Seeding: an outlet straight in the tables, customers through the identity service.
      const outlet: TestOutlet = await createTestOutlet(processes.testDb.database, {
        stock: ['BUN', 'PATTY', 'POTATO', 'CAN'].map((sku) => ({ sku, onHand: STOCK_ON_HAND, threshold: 0 })),
        menu: MENU,
      });
      const emails = await processes.createAccounts(CUSTOMER_COUNT, ['orders:customer']);

      first = await startServer();
      const firstUrl = first.baseUrl;
      const customers = await Promise.all(emails.map((email) => logIn(firstUrl, email)));

      // Load, then the kill: each client places orders one after another
      // until enough 201s came back; the kill lands while the others wait.
      const attempts: Attempt[] = [];
      let createdCount = 0;
      let isKilled = false;
      const firstServer = first;
      const client = async (clientIndex: number) => {
        while (!isKilled && attempts.length < MAX_ATTEMPTS_BEFORE_KILL) {
          const menu = MENU[(clientIndex + attempts.length) % MENU.length] as MenuSpec;
          const attempt: Attempt = {
            key: `crash-${randomUUID()}`,
            customer: customers[clientIndex % customers.length] as Customer,
            menuName: menu.name,
            body: {
              outlet_id: outlet.id,
              lines: [{ menu_item_id: requireId(outlet.menu[menu.name], menu.name), quantity: 1 }],
            },
          };
          attempts.push(attempt);
          try {
            attempt.firstAnswer = await send(firstUrl, attempt);
          } catch {
            continue;
          }
          if (attempt.firstAnswer.status !== 201) continue;
          createdCount += 1;
          if (createdCount >= CREATED_BEFORE_KILL && !isKilled) {
            isKilled = true;
            firstServer.child.kill('SIGKILL');
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENT_CLIENTS }, (_, index) => client(index)));
      expect(
        isKilled,
        `no kill: ${JSON.stringify(tally(attempts.map((attempt) => attempt.firstAnswer)))}`,
      ).toBe(true);
      expect((await first.exited).signal).toBe('SIGKILL');

      // Before the crash only two outcomes are possible: placed, or no answer at all.
      const firstTally = tally(attempts.map((attempt) => attempt.firstAnswer));
      expect(Object.keys(firstTally).sort()).toEqual(['201', 'no response']);
      const unanswered = attempts.filter((attempt) => attempt.firstAnswer === undefined);
      const pendingAtKill = await countUndelivered('pending');
      // Keys the dead process had claimed but never completed: the retries must take these over.
      const claimsLeftInProgress = await queryNumber(
        "select count(*) as value from platform.idempotency_keys where key = any($1) and status = 'in_progress'",
        [unanswered.map((attempt) => attempt.key)],
      );

      // The restart: a fresh process on the same database and keys; every
      // unanswered request is retried with its key and body.
      const restartedAt = (await queryRows<{ now: Date }>('select now()'))[0]?.now;
      second = await startServer();
      const secondUrl = second.baseUrl;
      await Promise.all(
        unanswered.map(async (attempt) => {
          attempt.finalAnswer = await retryUntilSettled(secondUrl, attempt);
        }),
      );
      for (const attempt of attempts) attempt.finalAnswer ??= attempt.firstAnswer;
      expect(tally(unanswered.map((attempt) => attempt.finalAnswer))).toEqual({ '201': unanswered.length });
      const replayedCount = unanswered.filter((attempt) => attempt.finalAnswer?.isReplayed).length;

      // Per key exactly one order: every key got a 201 with an order id, no two keys share one.
      const orderIdByKey = new Map(
        attempts.map((attempt) => [attempt.key, requireId(attempt.finalAnswer?.orderId, attempt.key)]),
      );
      const answeredIds = [...orderIdByKey.values()].sort();
      expect(new Set(answeredIds).size).toBe(attempts.length);

      // The stored answer of every key names the order its client was given.
      const keyRecords = await queryRows<{
        key: string;
        status: string;
        response_status: number;
        order_id: string;
      }>(
        `select key, status, response_status, response_body ->> 'id' as order_id
           from platform.idempotency_keys where key = any($1)`,
        [attempts.map((attempt) => attempt.key)],
      );
      expect(
        new Map(
          keyRecords.map((record) => [
            record.key,
            `${record.status} ${record.response_status} ${record.order_id}`,
          ]),
        ),
      ).toEqual(new Map([...orderIdByKey].map(([key, orderId]) => [key, `completed 201 ${orderId}`])));

      await waitForDeliveries();

      // Every order answered 201 exists, and no order exists that no key answered.
      const orders = await queryRows<{ id: string; total_minor: string }>(
        'select id, total_minor from orders.orders where outlet_id = $1 order by id',
        [outlet.id],
      );
      expect(orders.map((order) => order.id)).toEqual(answeredIds);

      // Exactly one order_placed per order, none for an order that does not exist.
      const events = await queryRows<{ aggregate_id: string }>(
        'select aggregate_id from platform.outbox_events where type = $1 order by aggregate_id',
        [ORDER_PLACED],
      );
      expect(events.map((event) => event.aggregate_id)).toEqual(answeredIds);

      // Reached every subscriber: an inbox entry per (event, subscriber), nothing dead-lettered.
      const subscribers = await queryRows<{ subscriber: string }>(
        "select subscriber from platform.event_subscriptions where event_type in ($1, '*') order by subscriber",
        [ORDER_PLACED],
      );
      expect(subscribers.map((row) => row.subscriber)).toEqual(
        expect.arrayContaining(['orders.analytics', 'orders.customer-notifications']),
      );
      expect(await countUndelivered('dead')).toBe(0);
      const missingInbox = await queryRows<{ subscriber: string; id: string }>(
        `select s.subscriber, e.id
           from platform.outbox_events e
           join platform.event_subscriptions s on s.event_type in (e.type, '*')
          where e.type = $1
            and not exists (
              select 1 from platform.event_inbox i where i.subscriber = s.subscriber and i.event_id = e.id
            )`,
        [ORDER_PLACED],
      );
      expect(missingInbox).toEqual([]);
      const deliveredAfterRestart = await queryNumber(
        `select count(*) as value
           from platform.event_inbox i
           join platform.outbox_events e on e.id = i.event_id
          where e.type = $1 and i.processed_at >= $2`,
        [ORDER_PLACED, restartedAt],
      );

      // Applied once: each subscriber's effect holds exactly one trace of each event.
      if (await tableExists('orders.tracking_feed')) {
        expect(
          await eventsWithoutExactlyOneRow('orders.tracking_feed', "effect.event_type = 'order_placed'"),
        ).toEqual([]);
      }
      expect(
        await eventsWithoutExactlyOneRow(
          'orders.customer_notifications',
          "effect.template = 'orders.order_placed'",
        ),
      ).toEqual([]);
      const analytics = await queryRows<{ placed: string; value: string }>(
        `select coalesce(sum(orders_placed), 0) as placed, coalesce(sum(placed_value_minor), 0) as value
           from orders.analytics_hourly where outlet_id = $1`,
        [outlet.id],
      );
      expect({
        placed: Number(analytics[0]?.placed),
        value: Number(analytics[0]?.value),
      }).toEqual({
        placed: orders.length,
        value: orders.reduce((sum, order) => sum + Number(order.total_minor), 0),
      });

      // Stock: reserved exactly what the placed orders need, once each.
      const expectedReserved: Record<string, number> = { BUN: 0, PATTY: 0, POTATO: 0, CAN: 0 };
      for (const attempt of attempts) {
        const menu = MENU.find((item) => item.name === attempt.menuName);
        for (const [sku, quantity] of Object.entries(menu?.uses ?? {})) {
          expectedReserved[sku] = (expectedReserved[sku] ?? 0) + quantity;
        }
      }
      const stock = await queryRows<{ sku: string; reserved: number; held: string }>(
        `select s.sku, s.reserved,
                (select coalesce(sum(r.quantity), 0) from orders.order_reservations r
                  where r.stock_item_id = s.id and r.settled_at is null) as held
           from orders.stock_items s where s.outlet_id = $1`,
        [outlet.id],
      );
      expect(Object.fromEntries(stock.map((row) => [row.sku, row.reserved]))).toEqual(expectedReserved);
      expect(Object.fromEntries(stock.map((row) => [row.sku, Number(row.held)]))).toEqual(expectedReserved);

      console.info(
        `crash test: ${createdCount} orders answered 201 before the kill, ${unanswered.length} keys unanswered ` +
          `and retried (${replayedCount} replayed, ${unanswered.length - replayedCount} placed anew; ${claimsLeftInProgress} claims left in progress by the dead process, ` +
          `${inProgressAnswers} idempotency.in_progress answers waited out), ` +
          `${orders.length} orders in total, ${pendingAtKill} order_placed deliveries pending at the kill, ` +
          `${deliveredAfterRestart} delivered after the restart to ${subscribers.length} subscribers`,
      );
    } catch (error) {
      for (const [name, server] of [
        ['first server', first],
        ['restarted server', second],
      ] as const) {
        if (server) console.error(`${name} output (last lines):\n${server.recentOutput().join('\n')}`);
      }
      throw error;
    }
  }, 120_000);
});
