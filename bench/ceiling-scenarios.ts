// The ceiling-* scenarios: the same loads as orders-get, orders-place and
// telemed-book, sent to bench/ceiling-server.ts, which does only each route's
// database work in one round trip. They answer "could any implementation meet
// the target on this machine?", which Keel's own numbers cannot.
import { randomBytes, randomUUID } from 'node:crypto';
import type { PreparedScenario, Scenario } from './scenarios.ts';

// Shared with the ceiling server, which seeds this shape.
export const CEILING_SEEDED_ORDERS = 20_000;
// Eight stock items per outlet, as orders-place has (8 dishes of two stock items each, so a 3-line order
// reserves up to 6 of its outlet's 8 rows). ceiling-place uses orders-place's 20 outlets; ceiling-place-spread
// all 500, so that no two placements wait for the same row.
const STOCK_PER_OUTLET = 8;
const HOT_OUTLETS = 20;
const SPREAD_OUTLETS = 500;
export const CEILING_STOCK_ITEMS = SPREAD_OUTLETS * STOCK_PER_OUTLET;
export const CEILING_DOCTORS = 200;
const CUSTOMERS = Array.from({ length: 40 }, () => randomUUID());
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

function uniqueKeys(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let sequence = 0;
  return () => {
    sequence += 1;
    return `ceiling-${prefix}-${sequence}`;
  };
}

/** Six distinct stock items of one outlet: three dishes of two stock items each. */
function placementBody(outlets: number): string {
  const outlet = Math.floor(Math.random() * outlets);
  const offsets = Array.from({ length: STOCK_PER_OUTLET }, (_, index) => index)
    .sort(() => Math.random() - 0.5)
    .slice(0, 6);
  return JSON.stringify({
    outletId: outlet,
    customerId: pick(CUSTOMERS),
    stockIds: offsets.map((offset) => outlet * STOCK_PER_OUTLET + offset + 1),
  });
}

function countingResponses(): {
  onResponse: (status: number) => void;
  observations: () => Record<string, number>;
} {
  const counts = { created: 0, refused: 0 };
  return {
    onResponse: (status) => {
      if (status === 201) counts.created += 1;
      else counts.refused += 1;
    },
    observations: () => ({ ...counts }),
  };
}

const ceilingGet: Scenario = {
  name: 'ceiling-get',
  description:
    `The floor under orders-get: plain Fastify reads one of ${CEILING_SEEDED_ORDERS} orders and its lines in one ` +
    'prepared statement; no token, session or ownership check.',
  server: 'ceiling',
  async prepare(baseUrl): Promise<PreparedScenario> {
    const response = await fetch(`${baseUrl}/seeded-orders`);
    const ids = (await response.json()) as string[];
    if (ids.length === 0) throw new Error('the ceiling server seeded no orders');
    return {
      requests: [
        {
          method: 'GET',
          path: `/orders/${ids[0]}`,
          setupRequest: (request) => ({ ...request, method: 'GET', path: `/orders/${pick(ids)}` }),
        },
      ],
      observations: () => ({ seededOrders: ids.length }),
    };
  },
};

/** POSTs `body()` to `path` with a fresh Idempotency-Key each time, counting 201s and the rest. */
function keyedPosts(path: string, body: () => string): PreparedScenario {
  const nextKey = uniqueKeys();
  const responses = countingResponses();
  return {
    requests: [
      {
        method: 'POST',
        path,
        setupRequest: (request) => ({
          ...request,
          method: 'POST',
          path,
          headers: { ...JSON_HEADERS, 'idempotency-key': nextKey() },
          body: body(),
        }),
        onResponse: (status) => responses.onResponse(status),
      },
    ],
    observations: responses.observations,
  };
}

function placementScenario(options: { name: string; description: string; outlets: number }): Scenario {
  return {
    name: options.name,
    description: options.description,
    server: 'ceiling',
    prepare: async () => keyedPosts('/orders', () => placementBody(options.outlets)),
  };
}

const PLACEMENT_WRITES =
  'a 3-line placement in one statement (idempotency key, six conditional stock reservations locked in id ' +
  'order, order, lines, one outbox event); no subscribers, audit or authentication.';

const ceilingPlace = placementScenario({
  name: 'ceiling-place',
  description: `The floor under orders-place: plain Fastify writes ${PLACEMENT_WRITES} Over ${HOT_OUTLETS} outlets of 8 stock rows, as orders-place.`,
  outlets: HOT_OUTLETS,
});

const ceilingPlaceSpread = placementScenario({
  name: 'ceiling-place-spread',
  description: `ceiling-place over ${SPREAD_OUTLETS} outlets, so placements rarely wait for each other's stock rows: ${PLACEMENT_WRITES}`,
  outlets: SPREAD_OUTLETS,
});

function bookingScenario(options: {
  name: string;
  description: string;
  hasPaymentGateway: boolean;
}): Scenario {
  return {
    ...options,
    server: 'ceiling',
    prepare: prepareBookings,
  };
}

async function prepareBookings(): Promise<PreparedScenario> {
  return keyedPosts('/bookings', () =>
    JSON.stringify({ doctorId: 1 + Math.floor(Math.random() * CEILING_DOCTORS), patientId: pick(CUSTOMERS) }),
  );
}

const ceilingBook = bookingScenario({
  name: 'ceiling-book',
  description:
    `The floor under telemed-book's database work: plain Fastify holds the next open slot of one of ` +
    `${CEILING_DOCTORS} doctors and writes the consultation, payment and outbox event in one statement; no ` +
    'payment gateway call, no audit or authentication.',
  hasPaymentGateway: false,
});

const ceilingBookIntent = bookingScenario({
  name: 'ceiling-book-intent',
  description:
    'The floor under telemed-book: ceiling-book, then the payment intent created at the simulated gateway (its ' +
    'own process, as in telemed-book) and recorded in a second statement; no audit or authentication.',
  hasPaymentGateway: true,
});

export const ceilingScenarios: readonly Scenario[] = [
  ceilingGet,
  ceilingPlace,
  ceilingPlaceSpread,
  ceilingBook,
  ceilingBookIntent,
];
