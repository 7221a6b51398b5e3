-- Transactional outbox and at-least-once delivery (packages/platform/src/outbox/README.md).
--
-- outbox_events: every event, inserted by emitEvent in the transaction of the
-- business change it describes, so it commits with that change or not at all.
--
-- event_subscriptions: which subscriber wants which event type. Event buses
-- register their subscriptions here when they start.
--
-- event_deliveries: one row per (subscriber, event) still to deliver, or
-- dead-lettered. emitEvent inserts them in the same statement as the event
-- (fan-out at emit time), so a committed event always has its deliveries and
-- no dispatcher ever reads the outbox by position (which would skip events of
-- transactions that took a position early and committed late). A row is
-- deleted when its handler's transaction commits.
--
-- event_inbox: (subscriber, event id) of every event a subscriber has handled,
-- written in the handler's own transaction: a second delivery of the same
-- event finds it and has no second effect.

create table platform.outbox_events (
  -- The global emit order. Positions are taken when the row is inserted but
  -- become visible at commit, in any order: nothing may treat them as a
  -- gap-free, commit-ordered sequence.
  position bigint generated always as identity primary key,
  id uuid not null unique,
  type text not null
    check (char_length(type) <= 200 and type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$'),
  aggregate_type text not null check (char_length(aggregate_type) between 1 and 100),
  aggregate_id text not null check (char_length(aggregate_id) between 1 and 200),
  occurred_at timestamptz not null,
  schema_version integer not null check (schema_version >= 1),
  traceparent text check (traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'),
  payload jsonb not null,
  -- clock_timestamp, not now(): the insert happens at the end of the business
  -- transaction, so this is close to its commit and is what the lag metric
  -- measures from.
  created_at timestamptz not null default clock_timestamp()
);

-- Retention deletes by age; BRIN is nearly free to maintain on an append-only,
-- time-ordered table.
create index outbox_events_created_at_idx on platform.outbox_events using brin (created_at);

-- Events are facts: never edited. Old ones may be deleted (retention), so
-- only UPDATE is refused.
create function platform.outbox_reject_update() returns trigger
language plpgsql as $$
begin
  raise exception 'platform.outbox_events is append-only: UPDATE is not allowed'
    using errcode = 'KE001',
          hint = 'Events are facts; emit a new event instead.';
end;
$$;

create trigger outbox_events_no_update
  before update on platform.outbox_events
  for each row execute function platform.outbox_reject_update();

create table platform.event_subscriptions (
  subscriber text not null check (subscriber ~ '^[a-z][a-z0-9_.:-]{0,99}$'),
  -- An event type, or '*' for every type (relays to another transport).
  event_type text not null
    check (event_type = '*' or (char_length(event_type) <= 200
      and event_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$')),
  registered_at timestamptz not null default now(),
  -- emitEvent looks subscriptions up by event type.
  primary key (event_type, subscriber)
);

create table platform.event_deliveries (
  subscriber text not null,
  position bigint not null references platform.outbox_events (position),
  -- Copied from the event so that the per-aggregate ordering check is one
  -- index probe on this table.
  aggregate_type text not null,
  aggregate_id text not null,
  status text not null default 'pending' check (status in ('pending', 'dead')),
  attempts integer not null default 0 check (attempts >= 0),
  -- '-infinity' for a new delivery: due at once whatever the clock skew
  -- between the emitting process, the dispatcher and the database.
  next_attempt_at timestamptz not null default '-infinity',
  -- A stable error code only (`orders.out_of_stock`, `pg.40P01`): never an
  -- error message or payload data, which may hold personal data.
  last_error_code text check (char_length(last_error_code) <= 200),
  last_attempted_at timestamptz,
  dead_at timestamptz,
  created_at timestamptz not null default clock_timestamp(),
  primary key (subscriber, position),
  constraint event_deliveries_dead_at check ((status = 'dead') = (dead_at is not null))
) with (
  -- A queue: rows are inserted, updated a few times and deleted. Vacuum it
  -- early so that the dispatcher's index scans do not wade through dead rows.
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000
);

-- A dispatcher claims one subscriber's oldest due delivery: an ordered walk
-- of this index that stops at the first row it can take.
create index event_deliveries_pending_idx on platform.event_deliveries (subscriber, position)
  where status = 'pending';
-- An ordered subscriber's delivery waits while an earlier one of the same
-- aggregate is pending.
create index event_deliveries_aggregate_idx
  on platform.event_deliveries (subscriber, aggregate_type, aggregate_id, position)
  where status = 'pending';
create index event_deliveries_dead_idx on platform.event_deliveries (subscriber, dead_at desc)
  where status = 'dead';

create table platform.event_inbox (
  subscriber text not null,
  event_id uuid not null,
  processed_at timestamptz not null default now(),
  primary key (subscriber, event_id)
);

create index event_inbox_processed_at_idx on platform.event_inbox using brin (processed_at);
