// The database ceiling: the least work any implementation of three Keel routes
// can do on this machine, measured the same way as Keel itself (autocannon,
// same connections, same PostgreSQL). Plain Fastify and one pg pool of
// DATABASE_POOL_MAX connections (Keel's default 20); no authentication, no
// validation beyond parsing, no logs, metrics, traces, retries, breaker,
// subscribers or payment gateway; every route is ONE round trip to PostgreSQL
// through a named prepared statement (the cheapest protocol path pg has):
//
//   GET  /orders/:id   the order and its lines as getOrder reads them;
//   POST /orders       a 3-line placement's durable writes: the idempotency key,
//                      six conditional stock reservations (two per dish), the
//                      order, three lines and one outbox event (Keel also writes
//                      four deliveries, the subscribers' inbox rows and
//                      projections, and the audit of staff actions);
//   POST /bookings     a booking's durable writes: the idempotency key, the slot
//                      OPEN→HELD, the consultation, the payment and one outbox
//                      event. With PAYMENTS_GATEWAY_URL set (ceiling-book-intent),
//                      it then creates the payment intent at the simulated
//                      gateway and records it in a second statement, as Keel's
//                      booking does; without, it is one statement and no more.
//
// Whatever these routes cannot reach at a given connection count, no
// implementation that keeps its data in this PostgreSQL can: that is what the
// ceiling-* scenarios measure. The tables live in their own schema
// (bench_ceiling), recreated at every start.
import Fastify from 'fastify';
import pg from 'pg';
import { CEILING_DOCTORS, CEILING_SEEDED_ORDERS, CEILING_STOCK_ITEMS } from './ceiling-scenarios.ts';

const SCHEMA = 'bench_ceiling';
// 400,000 open slots: more than a run at this machine's rate can book.
const SLOTS_PER_DOCTOR = 2_000;

const databaseUrl = process.env.DATABASE_URL;
if (databaseUrl === undefined || databaseUrl === '') {
  process.stderr.write(
    'ceiling server: DATABASE_URL is required (the ceiling is measured on a real server)\n',
  );
  process.exit(2);
}
const port = Number(process.env.PORT ?? 0);
const pool = new pg.Pool({ connectionString: databaseUrl, max: Number(process.env.DATABASE_POOL_MAX ?? 20) });

await createSchema(pool);

const READ_ORDER = {
  name: 'ceiling_read_order',
  text: `select o.id, o.outlet_id, o.customer_id, o.status, o.version, o.currency, o.total_minor, o.placed_at,
      o.updated_at, coalesce((
        select json_agg(json_build_object('line_number', l.line_number, 'menu_item_id', l.menu_item_id,
          'name', l.name, 'quantity', l.quantity, 'unit_price_minor', l.unit_price_minor,
          'line_total_minor', l.line_total_minor) order by l.line_number)
        from ${SCHEMA}.order_lines l where l.order_id = o.id), '[]'::json) as lines
    from ${SCHEMA}.orders o where o.id = $1::uuid`,
};

// Locked in id order, as Keel's placement locks them, so concurrent placements cannot deadlock.
const PLACE_ORDER = {
  name: 'ceiling_place_order',
  text: `with claimed as (
      insert into ${SCHEMA}.idempotency_keys (key) values ($1) on conflict do nothing returning key
    ), locked as (
      select id from ${SCHEMA}.stock
      where id = any($2::int[]) and exists (select 1 from claimed)
      order by id for update
    ), reserved as (
      update ${SCHEMA}.stock s set reserved = s.reserved + 1
      from locked where s.id = locked.id and s.on_hand - s.reserved >= 1
      returning s.id
    ), placed as (
      insert into ${SCHEMA}.orders (id, outlet_id, customer_id, status, currency, total_minor)
      select gen_random_uuid(), $3, $4::uuid, 'PLACED', 'EUR', 3000
      where (select count(*) from reserved) = cardinality($2::int[])
      returning id
    ), lines as (
      insert into ${SCHEMA}.order_lines (order_id, line_number, menu_item_id, name, quantity, unit_price_minor,
        line_total_minor)
      select placed.id, n, n, 'Dish ' || n, 1, 1000, 1000 from placed, generate_series(1, 3) n
    ), emitted as (
      insert into ${SCHEMA}.outbox (id, type, aggregate_id, payload)
      select gen_random_uuid(), 'orders.order_placed.v1', placed.id, jsonb_build_object('lines', 3) from placed
    )
    select id from placed`,
};

const BOOK_SLOT = {
  name: 'ceiling_book_slot',
  text: `with claimed as (
      insert into ${SCHEMA}.idempotency_keys (key) values ($1) on conflict do nothing returning key
    ), held as (
      update ${SCHEMA}.slots set status = 'HELD'
      where id = (
        select id from ${SCHEMA}.slots where doctor_id = $2 and status = 'OPEN'
        order by starts_at limit 1 for update skip locked
      ) and exists (select 1 from claimed)
      returning id
    ), booked as (
      insert into ${SCHEMA}.consultations (id, slot_id, patient_id, status)
      select gen_random_uuid(), held.id, $3::uuid, 'PENDING' from held
      returning id
    ), paid as (
      insert into ${SCHEMA}.payments (id, consultation_id, amount_minor, status)
      select gen_random_uuid(), booked.id, 5000, 'CREATING' from booked
    ), emitted as (
      insert into ${SCHEMA}.outbox (id, type, aggregate_id, payload)
      select gen_random_uuid(), 'telemedicine.consultation_booked.v1', booked.id, '{}'::jsonb from booked
    )
    select id from booked`,
};

const RECORD_INTENT = {
  name: 'ceiling_record_intent',
  text: `update ${SCHEMA}.payments set status = 'REQUIRES_PAYMENT', intent_id = $2
    where consultation_id = $1::uuid and status = 'CREATING'`,
};

const gatewayUrl = process.env.PAYMENTS_GATEWAY_URL;
const gatewayApiKey = process.env.PAYMENTS_API_KEY ?? '';

/** The intent, created the way Keel's gateway client creates it (bearer key, JSON, idempotency key). */
async function createIntent(baseUrl: string, consultationId: string): Promise<string> {
  const response = await fetch(
    new URL('v1/payment_intents', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`),
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${gatewayApiKey}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'idempotency-key': `intent-${consultationId}`,
      },
      body: JSON.stringify({ amount: 5000, currency: 'eur', metadata: { consultation_id: consultationId } }),
    },
  );
  const body = (await response.json()) as { id?: string };
  if (!response.ok || typeof body.id !== 'string') throw new Error(`gateway answered ${response.status}`);
  return body.id;
}

const app = Fastify({ logger: false });

app.get('/health/ready', async () => ({ status: 'ok' }));

app.get<{ Params: { id: string } }>('/orders/:id', async (request, reply) => {
  const result = await pool.query({ ...READ_ORDER, values: [request.params.id] });
  if (result.rows.length === 0) return reply.code(404).send({ code: 'not_found' });
  return result.rows[0];
});

app.post<{ Body: { outletId: number; customerId: string; stockIds: number[] } }>(
  '/orders',
  async (request, reply) => {
    const key = request.headers['idempotency-key'];
    const { outletId, customerId, stockIds } = request.body;
    const result = await pool.query({ ...PLACE_ORDER, values: [key, stockIds, outletId, customerId] });
    if (result.rows.length === 0) return reply.code(409).send({ code: 'conflict' });
    return reply.code(201).send(result.rows[0]);
  },
);

app.post<{ Body: { doctorId: number; patientId: string } }>('/bookings', async (request, reply) => {
  const key = request.headers['idempotency-key'];
  const result = await pool.query({
    ...BOOK_SLOT,
    values: [key, request.body.doctorId, request.body.patientId],
  });
  const booked = result.rows[0] as { id: string } | undefined;
  if (booked === undefined) return reply.code(409).send({ code: 'conflict' });
  if (gatewayUrl !== undefined) {
    const intentId = await createIntent(gatewayUrl, booked.id);
    await pool.query({ ...RECORD_INTENT, values: [booked.id, intentId] });
    return reply.code(201).send({ id: booked.id, intentId });
  }
  return reply.code(201).send(booked);
});

// Seeded order ids, for the read scenario to pick from.
app.get('/seeded-orders', async () => {
  const result = await pool.query(`select id from ${SCHEMA}.orders limit ${CEILING_SEEDED_ORDERS}`);
  return result.rows.map((row: { id: string }) => row.id);
});

await app.listen({ host: '127.0.0.1', port });

process.once('SIGTERM', () => {
  app
    .close()
    .then(() => pool.end())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
});

async function createSchema(database: pg.Pool): Promise<void> {
  await database.query(`
    drop schema if exists ${SCHEMA} cascade;
    create schema ${SCHEMA};
    create table ${SCHEMA}.idempotency_keys (key text primary key, created_at timestamptz not null default now());
    create table ${SCHEMA}.stock (
      id int primary key, on_hand bigint not null, reserved bigint not null default 0,
      check (reserved >= 0 and reserved <= on_hand)
    );
    create table ${SCHEMA}.orders (
      id uuid primary key, outlet_id int not null, customer_id uuid not null, status text not null,
      version int not null default 1, currency text not null, total_minor bigint not null,
      placed_at timestamptz not null default now(), updated_at timestamptz not null default now()
    );
    create index on ${SCHEMA}.orders (customer_id, placed_at desc);
    create index on ${SCHEMA}.orders (outlet_id, placed_at desc);
    create table ${SCHEMA}.order_lines (
      order_id uuid not null references ${SCHEMA}.orders (id), line_number int not null,
      menu_item_id int not null, name text not null, quantity int not null check (quantity > 0),
      unit_price_minor bigint not null, line_total_minor bigint not null,
      primary key (order_id, line_number)
    );
    create table ${SCHEMA}.outbox (
      id uuid primary key, type text not null, aggregate_id uuid not null, payload jsonb not null,
      created_at timestamptz not null default now()
    );
    create table ${SCHEMA}.slots (
      id bigint primary key, doctor_id int not null, starts_at timestamptz not null, status text not null
    );
    create index on ${SCHEMA}.slots (doctor_id, starts_at) where status = 'OPEN';
    create table ${SCHEMA}.consultations (
      id uuid primary key, slot_id bigint not null references ${SCHEMA}.slots (id), patient_id uuid not null,
      status text not null
    );
    create unique index on ${SCHEMA}.consultations (slot_id) where status in ('PENDING', 'SCHEDULED');
    create table ${SCHEMA}.payments (
      id uuid primary key, consultation_id uuid not null references ${SCHEMA}.consultations (id),
      amount_minor bigint not null, status text not null, intent_id text
    );
    create index on ${SCHEMA}.payments (consultation_id);
    insert into ${SCHEMA}.stock (id, on_hand) select n, 1000000000 from generate_series(1, ${CEILING_STOCK_ITEMS}) n;
    insert into ${SCHEMA}.orders (id, outlet_id, customer_id, status, currency, total_minor)
      select gen_random_uuid(), n % 20, gen_random_uuid(), 'PLACED', 'EUR', 3000
      from generate_series(1, ${CEILING_SEEDED_ORDERS}) n;
    insert into ${SCHEMA}.order_lines
      select o.id, n, n, 'Dish ' || n, 1, 1000, 1000 from ${SCHEMA}.orders o, generate_series(1, 3) n;
    insert into ${SCHEMA}.slots (id, doctor_id, starts_at, status)
      select d * ${SLOTS_PER_DOCTOR} + s, d, now() + make_interval(mins => 15 * s), 'OPEN'
      from generate_series(1, ${CEILING_DOCTORS}) d, generate_series(1, ${SLOTS_PER_DOCTOR}) s;
    analyze ${SCHEMA}.stock, ${SCHEMA}.orders, ${SCHEMA}.order_lines, ${SCHEMA}.slots;
  `);
}
