-- Idempotency records (Stripe semantics). One row per (caller, method, route, key).
-- A row is 'in_progress' while its first request runs (lock_token identifies that
-- request; locked_until lets an abandoned claim be taken over) and 'completed'
-- once the response is stored, in the same transaction as the domain write.
create table platform.idempotency_keys (
  scope text not null,
  method text not null,
  route text not null,
  key text not null check (length(key) between 1 and 255),
  request_hash text not null,
  status text not null check (status in ('in_progress', 'completed')),
  lock_token uuid,
  locked_until timestamptz,
  response_status integer,
  response_headers jsonb,
  response_body jsonb,
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  primary key (scope, method, route, key),
  constraint idempotency_keys_completed_has_response
    check ((status = 'completed') = (response_status is not null and completed_at is not null)),
  constraint idempotency_keys_in_progress_is_locked
    check ((status = 'in_progress') = (lock_token is not null and locked_until is not null))
);

-- The purge task deletes by age.
create index idempotency_keys_created_at_idx on platform.idempotency_keys (created_at);
