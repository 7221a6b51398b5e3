import type { EventEnvelope } from '@keel/contracts';
import type { ColumnType, GeneratedAlways, Kysely, RawBuilder } from 'kysely';
import { sql } from 'kysely';
import { type DeadLetter, WILDCARD_EVENT_TYPE as WILDCARD } from './outbox.ts';

export type OutboxEventsTable = {
  position: GeneratedAlways<string>;
  id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  occurred_at: Date;
  schema_version: number;
  traceparent: string | null;
  payload: ColumnType<unknown, string, never>;
  created_at: ColumnType<Date, never, never>;
};

export type EventSubscriptionsTable = {
  subscriber: string;
  event_type: string;
  registered_at: ColumnType<Date, never, never>;
};

export type EventDeliveriesTable = {
  subscriber: string;
  position: string;
  aggregate_type: string;
  aggregate_id: string;
  status: 'pending' | 'dead';
  attempts: number;
  next_attempt_at: Date;
  last_error_code: string | null;
  last_attempted_at: Date | null;
  dead_at: Date | null;
  created_at: ColumnType<Date, never, never>;
};

export type EventInboxTable = {
  subscriber: string;
  event_id: string;
  processed_at: ColumnType<Date, never, never>;
};

export type OutboxTables = {
  'platform.outbox_events': OutboxEventsTable;
  'platform.event_subscriptions': EventSubscriptionsTable;
  'platform.event_deliveries': EventDeliveriesTable;
  'platform.event_inbox': EventInboxTable;
};

/** The channel `emitEvent` notifies and dispatchers listen on. */
export const EVENTS_CHANNEL = 'keel_events';

/**
 * The outbox write of one event as two common table expressions to splice
 * into a statement's WITH list: `outbox_event` inserts the event when
 * `condition` selects a row, and `outbox_deliveries` fans it out, one pending
 * delivery per subscriber of its type registered at that moment. Both modify
 * data, so they run whether or not the statement reads them. With
 * `isNotifying`, each delivery row also calls `pg_notify`; Postgres folds
 * identical notifications of a transaction into one, sent at commit, and
 * none is sent when nobody subscribes.
 */
export function eventInsertCtes(
  event: EventEnvelope,
  isNotifying: boolean,
  condition: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return sql`outbox_event as (
      insert into platform.outbox_events
        (id, type, aggregate_type, aggregate_id, occurred_at, schema_version, traceparent, payload)
      select
        ${event.id}::uuid, ${event.type}::text, ${event.aggregateType}::text, ${event.aggregateId}::text,
        ${event.occurredAt}::timestamptz, ${event.schemaVersion}::int, ${event.traceparent ?? null}::text,
        ${JSON.stringify(event.payload)}::jsonb
      where exists (${condition})
      returning position
    ), outbox_deliveries as (
      insert into platform.event_deliveries (subscriber, position, aggregate_type, aggregate_id)
      select distinct s.subscriber, outbox_event.position, ${event.aggregateType}::text, ${event.aggregateId}::text
      from outbox_event cross join platform.event_subscriptions s
      where s.event_type = ${event.type}::text or s.event_type = '*'
      returning case when ${isNotifying}::boolean then pg_notify(${EVENTS_CHANNEL}, '') end
    )`;
}

/**
 * Inserts the event, fans it out and notifies (see `eventInsertCtes`) in one
 * round trip. Returns the number of deliveries.
 */
export async function insertEvent(
  db: Kysely<OutboxTables>,
  event: EventEnvelope,
  isNotifying: boolean,
): Promise<number> {
  const result = await sql<{ deliveries: number }>`
    with ${eventInsertCtes(event, isNotifying, sql`select 1`)}
    select (select count(*) from outbox_deliveries)::int as deliveries`.execute(db);
  return result.rows[0]?.deliveries ?? 0;
}

/**
 * Makes the subscriber's rows list exactly `eventTypes`. Events emitted from
 * now on are fanned out to it; earlier ones are not.
 */
export async function replaceSubscription(
  db: Kysely<OutboxTables>,
  subscriber: string,
  eventTypes: readonly string[],
): Promise<void> {
  await db
    .deleteFrom('platform.event_subscriptions')
    .where('subscriber', '=', subscriber)
    .where('event_type', 'not in', [...eventTypes])
    .execute();
  await db
    .insertInto('platform.event_subscriptions')
    .values(eventTypes.map((eventType) => ({ subscriber, event_type: eventType })))
    .onConflict((conflict) => conflict.doNothing())
    .execute();
}

/** Removes a subscriber's subscription rows and every delivery still queued or dead for it. */
export async function deleteSubscriber(
  db: Kysely<OutboxTables>,
  subscriber: string,
): Promise<{ deliveries: number }> {
  await db.deleteFrom('platform.event_subscriptions').where('subscriber', '=', subscriber).execute();
  const deleted = await db
    .deleteFrom('platform.event_deliveries')
    .where('subscriber', '=', subscriber)
    .executeTakeFirst();
  return { deliveries: Number(deleted.numDeletedRows) };
}

type ClaimedRow = {
  subscriber: string;
  position: string;
  attempts: number;
  last_error_code: string | null;
  last_attempted_at: Date | null;
  created_at: Date;
  id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  occurred_at: Date;
  schema_version: number;
  traceparent: string | null;
  payload: unknown;
  is_first: boolean;
  lag_seconds: number;
};

export type ClaimedDelivery = {
  subscriber: string;
  position: string;
  /** Failed attempts so far, with the last one's error code and time. */
  attempts: number;
  lastErrorCode: string | null;
  lastAttemptedAt: Date | null;
  /** When the delivery was fanned out. */
  createdAt: Date;
  event: EventEnvelope;
  /** Recorded in the inbox by this claim: handle it. False: unsubscribed type, or handled before. */
  isFirst: boolean;
  /** Seconds from the delivery's fan-out to the claim. */
  lagSeconds: number;
};

/**
 * A dispatcher's whole bookkeeping for a batch in one round trip, inside the
 * caller's transaction:
 * - locks up to `limit` of `subscriber`'s oldest due deliveries that no other
 *   transaction holds (SKIP LOCKED: concurrent dispatchers, in this process
 *   or others, each take different rows). For an ordered subscriber a
 *   delivery is only due when no earlier delivery of the same aggregate is
 *   pending, so at most one per aggregate is taken and the earlier one has to
 *   succeed or be dead-lettered first;
 * - records the subscribed ones in the inbox (`isFirst` false for a type the
 *   subscription dropped or an event it handled before);
 * - deletes every claimed delivery. Until the caller's transaction ends the
 *   deleted rows stay locked to everyone else, so no other dispatcher sees
 *   them; one whose handler fails is put back by `restoreDeliveries` in the
 *   same transaction;
 * - makes the transaction commit asynchronously (see the dispatcher).
 *
 * Returned in emit order. One subscriber per query on purpose: with
 * `subscriber = $1` the planner walks `event_deliveries_pending_idx` in
 * position order and stops after `limit` rows; a query over several
 * subscribers let it collect and sort the whole backlog on every claim.
 */
export async function claimDueDeliveries(
  db: Kysely<OutboxTables>,
  options: {
    subscriber: string;
    eventTypes: readonly string[];
    isOrdered: boolean;
    now: Date;
    limit: number;
  },
): Promise<ClaimedDelivery[]> {
  const result = await sql<ClaimedRow>`
    with claimed as (
      select
        d.subscriber, d.position, d.attempts, d.last_error_code, d.last_attempted_at, d.created_at,
        e.id, e.type, e.aggregate_type, e.aggregate_id, e.occurred_at,
        e.schema_version, e.traceparent, e.payload
      from platform.event_deliveries d
      join platform.outbox_events e on e.position = d.position
      where d.subscriber = ${options.subscriber}
        and d.status = 'pending'
        and d.next_attempt_at <= ${options.now}
        and (
          not ${options.isOrdered}::boolean
          or not exists (
            select 1 from platform.event_deliveries earlier
            where earlier.subscriber = d.subscriber
              and earlier.aggregate_type = d.aggregate_type
              and earlier.aggregate_id = d.aggregate_id
              and earlier.status = 'pending'
              and earlier.position < d.position
          )
        )
      order by d.position
      limit ${options.limit}
      for update of d skip locked
    ), first_deliveries as (
      insert into platform.event_inbox (subscriber, event_id)
      select ${options.subscriber}, claimed.id from claimed
      where claimed.type = any(${[...options.eventTypes]}::text[])
        or ${WILDCARD}::text = any(${[...options.eventTypes]}::text[])
      on conflict do nothing
      returning event_id
    ), finished as (
      delete from platform.event_deliveries d
      using claimed
      where d.subscriber = claimed.subscriber and d.position = claimed.position
    )
    select
      c.subscriber, c.position::text as position, c.attempts, c.last_error_code,
      c.last_attempted_at, c.created_at,
      c.id::text as id, c.type, c.aggregate_type, c.aggregate_id, c.occurred_at,
      c.schema_version, c.traceparent, c.payload,
      f.event_id is not null as is_first,
      extract(epoch from clock_timestamp() - c.created_at)::float8 as lag_seconds
    from claimed c
    left join first_deliveries f on f.event_id = c.id
    -- A volatile one-row subquery is evaluated, not optimised away: from here
    -- on the transaction commits without waiting for its WAL flush.
    cross join (select set_config('synchronous_commit', 'off', true)) as asynchronous_commit
    order by c.position`.execute(db);
  return result.rows.map((row) => ({
    subscriber: row.subscriber,
    position: row.position,
    attempts: row.attempts,
    lastErrorCode: row.last_error_code,
    lastAttemptedAt: row.last_attempted_at,
    createdAt: row.created_at,
    event: toEnvelope(row),
    isFirst: row.is_first,
    lagSeconds: row.lag_seconds,
  }));
}

/** A claimed delivery put back: retried later, dead-lettered, or handed back untried. */
export type RestoredDelivery = {
  position: string;
  aggregateType: string;
  aggregateId: string;
  status: 'pending' | 'dead';
  attempts: number;
  nextAttemptAt: Date;
  lastErrorCode: string | null;
  lastAttemptedAt: Date | null;
  deadAt: Date | null;
  createdAt: Date;
};

/**
 * Puts claimed deliveries back in one statement, in the transaction that
 * claimed (and deleted) them: they were never visible to anyone else. Error
 * codes are cut to the column's 200 characters.
 */
export async function restoreDeliveries(
  db: Kysely<OutboxTables>,
  subscriber: string,
  deliveries: readonly RestoredDelivery[],
): Promise<void> {
  if (deliveries.length === 0) return;
  const rows = deliveries.map((delivery) => ({
    position: delivery.position,
    aggregate_type: delivery.aggregateType,
    aggregate_id: delivery.aggregateId,
    status: delivery.status,
    attempts: delivery.attempts,
    next_attempt_at: delivery.nextAttemptAt.toISOString(),
    last_error_code: delivery.lastErrorCode?.slice(0, 200) ?? null,
    last_attempted_at: delivery.lastAttemptedAt?.toISOString() ?? null,
    dead_at: delivery.deadAt?.toISOString() ?? null,
    created_at: delivery.createdAt.toISOString(),
  }));
  await sql`
    insert into platform.event_deliveries (
      subscriber, position, aggregate_type, aggregate_id, status, attempts, next_attempt_at,
      last_error_code, last_attempted_at, dead_at, created_at
    )
    select
      ${subscriber}, r.position, r.aggregate_type, r.aggregate_id, r.status, r.attempts, r.next_attempt_at,
      r.last_error_code, r.last_attempted_at, r.dead_at, r.created_at
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(
      position bigint, aggregate_type text, aggregate_id text, status text, attempts integer,
      next_attempt_at timestamptz, last_error_code text, last_attempted_at timestamptz,
      dead_at timestamptz, created_at timestamptz
    )`.execute(db);
}

function toEnvelope(row: Omit<ClaimedRow, 'subscriber' | 'position' | 'attempts'>): EventEnvelope {
  return {
    id: row.id,
    type: row.type,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    occurredAt: row.occurred_at.toISOString(),
    schemaVersion: row.schema_version,
    ...(row.traceparent === null ? {} : { traceparent: row.traceparent }),
    payload: row.payload,
  };
}

/** Records that `subscriber` handled `eventId`; false when it already had (a redelivery). */
export async function insertInboxEntry(
  db: Kysely<OutboxTables>,
  subscriber: string,
  eventId: string,
): Promise<boolean> {
  const inserted = await db
    .insertInto('platform.event_inbox')
    .values({ subscriber, event_id: eventId })
    .onConflict((conflict) => conflict.doNothing())
    .returning('event_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** Takes back inbox entries of events whose handler failed (its work was rolled back). */
export async function deleteInboxEntries(
  db: Kysely<OutboxTables>,
  subscriber: string,
  eventIds: readonly string[],
): Promise<void> {
  if (eventIds.length === 0) return;
  await sql`
    delete from platform.event_inbox
    where subscriber = ${subscriber} and event_id = any(${[...eventIds]}::uuid[])`.execute(db);
}

type DeadLetterRow = {
  subscriber: string;
  event_id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  occurred_at: Date;
  attempts: number;
  last_error_code: string | null;
  last_attempted_at: Date | null;
  dead_at: Date;
};

/** Dead letters, most recently dead first. */
export async function findDeadLetters(
  db: Kysely<OutboxTables>,
  options: { subscriber?: string; limit: number },
): Promise<DeadLetter[]> {
  const result = await sql<DeadLetterRow>`
    select
      d.subscriber, e.id::text as event_id, e.type, e.aggregate_type, e.aggregate_id, e.occurred_at,
      d.attempts, d.last_error_code, d.last_attempted_at, d.dead_at
    from platform.event_deliveries d
    join platform.outbox_events e on e.position = d.position
    where d.status = 'dead'
      and (${options.subscriber ?? null}::text is null or d.subscriber = ${options.subscriber ?? null}::text)
    order by d.dead_at desc, d.subscriber, d.position desc
    limit ${options.limit}`.execute(db);
  return result.rows.map((row) => ({
    subscriber: row.subscriber,
    eventId: row.event_id,
    eventType: row.type,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    occurredAt: row.occurred_at,
    attempts: row.attempts,
    lastErrorCode: row.last_error_code,
    lastAttemptedAt: row.last_attempted_at,
    deadAt: row.dead_at,
  }));
}

/**
 * Puts a dead letter back in the queue with a fresh attempt budget, due at
 * once, and wakes the dispatchers. False when there is no such dead letter.
 */
export async function reviveDeadLetter(
  db: Kysely<OutboxTables>,
  subscriber: string,
  eventId: string,
): Promise<boolean> {
  const result = await sql<{ notified: number }>`
    with revived as (
      update platform.event_deliveries d
      set status = 'pending', attempts = 0, next_attempt_at = '-infinity', dead_at = null
      from platform.outbox_events e
      where e.id = ${eventId}::uuid
        and d.position = e.position
        and d.subscriber = ${subscriber}
        and d.status = 'dead'
      returning 1
    )
    select count(*)::int as notified
    from (select pg_notify(${EVENTS_CHANNEL}, '') from revived) as notifications`.execute(db);
  return (result.rows[0]?.notified ?? 0) > 0;
}

/**
 * Deletes up to `limit` inbox entries processed before `before`, then up to
 * `limit` events created before it that no delivery (pending or dead) still
 * needs. Returns how many of each it deleted.
 */
export async function deleteEventsBefore(
  db: Kysely<OutboxTables>,
  before: Date,
  limit: number,
): Promise<{ inboxEntries: number; events: number }> {
  const inbox = await sql`
    delete from platform.event_inbox i
    using (
      select subscriber, event_id from platform.event_inbox
      where processed_at < ${before}
      limit ${limit}
    ) as old
    where i.subscriber = old.subscriber and i.event_id = old.event_id`.execute(db);
  const events = await sql`
    delete from platform.outbox_events e
    using (
      select position from platform.outbox_events candidate
      where candidate.created_at < ${before}
        and not exists (
          select 1 from platform.event_deliveries d where d.position = candidate.position
        )
      limit ${limit}
    ) as old
    where e.position = old.position`.execute(db);
  return {
    inboxEntries: Number(inbox.numAffectedRows ?? 0n),
    events: Number(events.numAffectedRows ?? 0n),
  };
}

// Savepoints are never released: a later `savepoint` of the same name nests
// and `rollback to` undoes only the newest. `batch` is taken once after the
// claim, so a failed batch is undone to it while the claim (its inbox
// entries, deletions and row locks) stays; `handler` before each handler of
// the one-at-a-time rerun. Each is a subtransaction; more than 64 that write
// in one transaction overflow Postgres's per-backend cache and slow every
// other session's snapshots, hence MAX_DELIVERIES_PER_TRANSACTION.
const SAVEPOINTS = {
  batch: sql.raw('keel_event_batch'),
  handler: sql.raw('keel_event_handler'),
} as const;
export type OutboxSavepoint = keyof typeof SAVEPOINTS;
export const MAX_DELIVERIES_PER_TRANSACTION = 32;

/**
 * A fast-path batch of a subscription with `handleBatch`: one savepoint, and
 * its round trips do not grow with its size, so under load a larger batch is
 * what lets a subscriber keep up. Its one-at-a-time rerun takes at most
 * MAX_DELIVERIES_PER_TRANSACTION of it and hands the rest back.
 */
export const MAX_DELIVERIES_PER_BATCH_CALL = 128;

/** Marks where handlers' work starts, so a failure can undo it and keep what came before. */
export async function createSavepoint(db: Kysely<OutboxTables>, savepoint: OutboxSavepoint): Promise<void> {
  await sql`savepoint ${SAVEPOINTS[savepoint]}`.execute(db);
}

/** Undoes the work since the newest savepoint of that name but keeps earlier work and its row locks. */
export async function rollbackToSavepoint(
  db: Kysely<OutboxTables>,
  savepoint: OutboxSavepoint,
): Promise<void> {
  await sql`rollback to savepoint ${SAVEPOINTS[savepoint]}`.execute(db);
}
