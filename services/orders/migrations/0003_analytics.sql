-- Analytics: an hourly rollup per outlet, projected from the order events by
-- the `orders.analytics` subscriber (src/analytics). `getOrderAnalytics`
-- reads only this rollup, never the order tables.
--
-- Money, per hour bucket and outlet, in the outlet's currency:
--   placed_value_minor    totals of the orders placed in the hour,
--   revenue_minor         totals of the orders delivered in the hour (revenue
--                         is recognised at delivery),
--   cancelled_value_minor totals of the orders cancelled in the hour.
-- Nothing is ever subtracted: a cancellation is counted in the hour it
-- happened, the placement stays counted in its own hour.
--
-- Durations are attributed to the hour the order reached the later status:
--   prep     PLACED -> READY,
--   delivery OUT_FOR_DELIVERY -> DELIVERED.
-- Averages are `*_seconds_total / *_count`, so buckets add up into days.

create table orders.analytics_hourly (
  outlet_id uuid not null,
  -- Start of the UTC hour.
  hour timestamptz not null check (hour = date_trunc('hour', hour at time zone 'UTC') at time zone 'UTC'),
  -- Null only while the bucket has seen nothing but events of orders placed
  -- before the projection existed (their totals are unknown to it).
  currency char(3) check (currency ~ '^[A-Z]{3}$'),
  orders_placed integer not null default 0 check (orders_placed >= 0),
  placed_value_minor bigint not null default 0 check (placed_value_minor >= 0),
  orders_delivered integer not null default 0 check (orders_delivered >= 0),
  revenue_minor bigint not null default 0 check (revenue_minor >= 0),
  orders_cancelled integer not null default 0 check (orders_cancelled >= 0),
  cancelled_value_minor bigint not null default 0 check (cancelled_value_minor >= 0),
  prep_seconds_total bigint not null default 0 check (prep_seconds_total >= 0),
  prep_count integer not null default 0 check (prep_count >= 0),
  delivery_seconds_total bigint not null default 0 check (delivery_seconds_total >= 0),
  delivery_count integer not null default 0 check (delivery_count >= 0),
  updated_at timestamptz not null,
  primary key (outlet_id, hour)
);
-- The all-outlets report scans by time.
create index analytics_hourly_hour_idx on orders.analytics_hourly (hour);

-- What the projection remembers of each order between its events: the total
-- (status changes do not carry it) and the times later durations start from.
-- Each `*_at` is set once, by a conditional upsert, which is also what keeps
-- a replayed event from counting twice even outside the inbox.
-- No foreign keys: a projection follows events and may be rebuilt from them;
-- integrity is the order tables' job.
create table orders.analytics_order_state (
  order_id uuid primary key,
  outlet_id uuid not null,
  -- Null when the projection first heard of the order after its placement.
  currency char(3),
  total_minor bigint check (total_minor >= 0),
  placed_at timestamptz not null,
  ready_at timestamptz,
  out_for_delivery_at timestamptz,
  delivered_at timestamptz,
  cancelled_at timestamptz,
  -- Whether `order_placed` itself was counted (false: the row was created by a later event).
  is_placement_counted boolean not null default false
);
