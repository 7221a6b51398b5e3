-- Tamper-evident audit trail (packages/platform/src/audit/README.md).
--
-- audit_events: one row per security-relevant action, written in the same
-- transaction as the change it records. Append-only, range-partitioned by
-- month on occurred_at, with a DEFAULT partition so a write is never lost for
-- lack of a partition.
--
-- audit_pending_seals: the work queue of events not sealed yet, filled by a
-- trigger so that no insert path can skip it. It keeps the sealer's cost
-- proportional to the backlog instead of to the whole table.
--
-- audit_seals: the hash chain, in sealing order. Also append-only.

-- One function guards every append-only table. Its SQLSTATE (KA001, "Keel
-- audit") lets callers and tests tell the rejection apart from other failures.
create function platform.audit_reject_change() returns trigger
language plpgsql as $$
begin
  raise exception 'platform.% is append-only: % is not allowed', tg_table_name, tg_op
    using errcode = 'KA001',
          hint = 'Audit records are never changed or removed; record a new event instead.';
end;
$$;

-- id: a database-assigned bigint identity rather than a UUIDv7. Callers cannot
-- choose or forge it, it costs 8 bytes in the primary key and in every index
-- (each ends with it as the keyset tie-breaker), and nothing addresses an
-- audit event by a public identifier. It is not a commit order: the chain
-- order is the sealing order (see audit_seals).
create table platform.audit_events (
  id bigint generated always as identity,
  occurred_at timestamptz not null default now(),
  actor_type text not null check (actor_type in ('user', 'api_key', 'system', 'anonymous')),
  actor_id text check (char_length(actor_id) between 1 and 200),
  action text not null check (char_length(action) <= 200 and action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
  resource_type text not null check (char_length(resource_type) between 1 and 100),
  resource_id text check (char_length(resource_id) between 1 and 200),
  outcome text not null check (outcome in ('success', 'failure', 'denied')),
  request_id text check (char_length(request_id) between 1 and 200),
  ip inet,
  user_agent text check (char_length(user_agent) <= 512),
  changes jsonb check (jsonb_typeof(changes) = 'object'),
  -- A user or an API key always has an identity; the system and anonymous callers may not.
  constraint audit_events_actor_identified
    check (actor_type not in ('user', 'api_key') or actor_id is not null),
  -- A partitioned table's primary key must contain the partition key.
  primary key (occurred_at, id)
) partition by range (occurred_at);

create table platform.audit_events_default partition of platform.audit_events default;

-- The list filters; each ends in the keyset order so a page is one index range
-- scan. The primary key (occurred_at, id) serves the unfiltered, time-only list.
create index audit_events_actor_idx on platform.audit_events (actor_id, occurred_at desc, id desc)
  where actor_id is not null;
create index audit_events_resource_idx
  on platform.audit_events (resource_type, resource_id, occurred_at desc, id desc);
create index audit_events_action_idx on platform.audit_events (action, occurred_at desc, id desc);

-- Row-level triggers on a partitioned table are cloned onto every partition,
-- present and future. Statement-level ones (TRUNCATE) are not, so each
-- partition gets its own TRUNCATE trigger when it is created.
create trigger audit_events_append_only
  before update or delete on platform.audit_events
  for each row execute function platform.audit_reject_change();
create trigger audit_events_no_truncate
  before truncate on platform.audit_events
  for each statement execute function platform.audit_reject_change();
create trigger audit_events_no_truncate
  before truncate on platform.audit_events_default
  for each statement execute function platform.audit_reject_change();

create table platform.audit_pending_seals (
  event_id bigint not null,
  occurred_at timestamptz not null,
  primary key (occurred_at, event_id)
);

create function platform.audit_enqueue_seal() returns trigger
language plpgsql as $$
begin
  -- A row re-inserted with its own id (moving rows out of DEFAULT, see the
  -- README) may still be queued; the sealer skips events already sealed.
  insert into platform.audit_pending_seals (event_id, occurred_at) values (new.id, new.occurred_at)
    on conflict do nothing;
  return null;
end;
$$;

create trigger audit_events_enqueue_seal
  after insert on platform.audit_events
  for each row execute function platform.audit_enqueue_seal();

-- The chain. position is the sealing order; (event_id, occurred_at) names the
-- event (its primary key) and is unique, so no event is sealed twice. There is
-- deliberately no foreign key to audit_events: verification, not a constraint
-- an owner can disable, is what proves the events are intact, and a foreign
-- key would forbid ever detaching an old partition.
create table platform.audit_seals (
  position bigint primary key check (position >= 1),
  event_id bigint not null,
  occurred_at timestamptz not null,
  prev_hash text not null check (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text not null check (hash ~ '^[0-9a-f]{64}$'),
  sealed_at timestamptz not null default now(),
  constraint audit_seals_event_unique unique (event_id, occurred_at)
);

create trigger audit_seals_append_only
  before update or delete on platform.audit_seals
  for each row execute function platform.audit_reject_change();
create trigger audit_seals_no_truncate
  before truncate on platform.audit_seals
  for each statement execute function platform.audit_reject_change();

-- Creates the monthly partition holding `month` (UTC month boundaries), named
-- audit_events_yYYYYmMM. Returns 'exists', 'created', or 'blocked_by_default'
-- when the DEFAULT partition already holds rows of that month: Postgres would
-- refuse the partition, and moving the rows would mean deleting audit rows.
-- Those rows stay (readable and sealed) in the DEFAULT partition. The DEFAULT
-- partition is looked up, not named, so that the README's procedure for moving
-- such rows (detach DEFAULT, create the month, move, re-attach) can use it.
create function platform.audit_ensure_partition(month date) returns text
language plpgsql as $$
declare
  first_day date := make_date(extract(year from month)::int, extract(month from month)::int, 1);
  partition_name text := format('audit_events_y%sm%s', to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
  lower_bound timestamptz := first_day::timestamp at time zone 'UTC';
  upper_bound timestamptz := (first_day + interval '1 month') at time zone 'UTC';
  default_partition regclass;
  is_blocked boolean := false;
begin
  if to_regclass(format('platform.%I', partition_name)) is not null then
    return 'exists';
  end if;
  select nullif(partdefid, 0)::regclass into default_partition
    from pg_partitioned_table where partrelid = 'platform.audit_events'::regclass;
  if default_partition is not null then
    execute format('select exists (select 1 from %s where occurred_at >= $1 and occurred_at < $2)',
      default_partition)
      into is_blocked using lower_bound, upper_bound;
  end if;
  if is_blocked then
    return 'blocked_by_default';
  end if;
  begin
    execute format(
      'create table platform.%I partition of platform.audit_events for values from (%L) to (%L)',
      partition_name, lower_bound, upper_bound);
  exception when check_violation then
    -- A row for this month reached the DEFAULT partition after the check above.
    return 'blocked_by_default';
  end;
  execute format(
    'create trigger audit_events_no_truncate before truncate on platform.%I '
    'for each statement execute function platform.audit_reject_change()',
    partition_name);
  return 'created';
end;
$$;

-- Partitions for this month and the next three, so a fresh install writes into
-- real partitions from the start; the maintenance task keeps creating ahead.
select platform.audit_ensure_partition(
  ((date_trunc('month', now() at time zone 'UTC') + make_interval(months => ahead))::date)
) from generate_series(0, 3) as ahead;
