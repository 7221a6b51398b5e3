-- Real-time tracking (src/tracking/README.md): the feed that the Server-Sent
-- Events streams replay and follow. The `orders.tracking` subscription appends
-- one row per order event; every server process LISTENs on `orders_tracking`
-- and reads the rows after the position its clients have seen.

-- One gap-free counter per outlet. Appending takes the next position with
-- `insert … on conflict do update set last_position = last_position + 1`,
-- which holds this row's lock until the handler's transaction commits, so two
-- appends to one outlet commit in position order: a reader that has seen
-- position N can never later find N-1 appear. That is what lets a stream
-- resume with a plain `position > Last-Event-ID`.
create table orders.tracking_cursors (
  outlet_id uuid primary key references orders.outlets (id),
  last_position bigint not null check (last_position >= 1)
);

-- A client-facing view of each order event: no staff account ids, no stock
-- movements, nothing a customer of the order or staff of the outlet may not
-- see. No foreign key to orders.orders: the feed is a projection of events,
-- and pruning or archiving orders must not depend on it.
create table orders.tracking_feed (
  outlet_id uuid not null references orders.tracking_cursors (outlet_id),
  position bigint not null check (position >= 1),
  order_id uuid not null,
  customer_id uuid not null,
  -- The outbox event's id: a redelivery outside the inbox cannot append twice.
  event_id uuid not null unique,
  event_type text not null check (event_type in ('order_placed', 'order_status_changed', 'order_cancelled')),
  -- The order's status after the event.
  status text not null check (status in (
    'PLACED', 'CONFIRMED', 'PREPARING', 'READY', 'OUT_FOR_DELIVERY', 'DELIVERED', 'CANCELLED'
  )),
  version integer not null check (version >= 1),
  payload jsonb not null check (jsonb_typeof(payload) = 'object'),
  occurred_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  primary key (outlet_id, position)
);
-- The order stream's snapshot and any per-order replay.
create index tracking_feed_order_idx on orders.tracking_feed (order_id, position);
