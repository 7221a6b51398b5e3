-- Outbound messages: webhooks to external systems (src/webhooks) and
-- notifications to customers (src/notifications). Both are fed by outbox
-- subscribers that only record what to send and enqueue a job in the same
-- transaction; the jobs do the network calls after commit, with retries and
-- a dead-letter queue.

-- Endpoints are chain-wide, managed by orders admins.
create table orders.webhook_endpoints (
  id uuid primary key,
  -- https only in production; the service also refuses private and loopback
  -- hosts there (src/webhooks/webhook.ts).
  url text not null check (char_length(url) <= 2000 and url ~ '^https?://'),
  description text not null default '' check (char_length(description) <= 200),
  -- The signing secret, encrypted with the platform field encryption
  -- (AAD `orders.webhook_endpoints:secret:<id>`). Shown to the admin once.
  secret_encrypted text not null,
  event_types text[] not null check (cardinality(event_types) between 1 and 20),
  is_active boolean not null default true,
  created_by uuid not null,
  created_at timestamptz not null,
  deactivated_at timestamptz,
  constraint webhook_endpoints_deactivation check (is_active = (deactivated_at is null))
);

-- One row per (event, endpoint): the unique key makes a redelivered event a
-- no-op. The body is stored as sent so every attempt signs the same bytes.
create table orders.webhook_deliveries (
  id uuid primary key,
  endpoint_id uuid not null references orders.webhook_endpoints (id),
  event_id uuid not null,
  event_type text not null,
  body text not null,
  -- pending: waiting or being retried; delivered: a 2xx came back;
  -- dead: failed for good (a permanent refusal or retries used up);
  -- cancelled: the endpoint was deactivated before the delivery ran.
  status text not null default 'pending' check (status in ('pending', 'delivered', 'dead', 'cancelled')),
  attempts integer not null default 0 check (attempts >= 0),
  last_status_code integer check (last_status_code between 100 and 599),
  -- A stable code (`orders.webhook_timeout`), never a response body.
  last_error text check (char_length(last_error) <= 100),
  last_attempt_at timestamptz,
  delivered_at timestamptz,
  dead_at timestamptz,
  created_at timestamptz not null,
  unique (event_id, endpoint_id),
  constraint webhook_deliveries_delivered check ((status = 'delivered') = (delivered_at is not null)),
  constraint webhook_deliveries_dead check ((status = 'dead') = (dead_at is not null))
);
create index webhook_deliveries_endpoint_idx on orders.webhook_deliveries (endpoint_id, created_at desc, id desc);

-- One row per customer notification decided from an event (`event_id`: a
-- redelivered event is a no-op). `sent_at` is set after the notifier
-- accepted it; the job skips rows already sent.
create table orders.customer_notifications (
  event_id uuid primary key,
  order_id uuid not null,
  customer_id uuid not null,
  template text not null check (template in (
    'orders.order_placed', 'orders.order_status_changed', 'orders.order_cancelled'
  )),
  -- What the template renders: ids, status and amounts only, safe to log.
  data jsonb not null,
  created_at timestamptz not null,
  sent_at timestamptz
);
-- Status notifications repeat the order's total, remembered from its placement.
create index customer_notifications_order_idx on orders.customer_notifications (order_id);
