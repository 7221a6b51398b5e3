import type { ColumnType, GeneratedAlways, Kysely, RawBuilder, Selectable } from 'kysely';
import { sql } from 'kysely';
import { insertRowsWhen } from '../db/conditional-insert.ts';
import type { SealedEventColumns } from './audit.chain.ts';
import type {
  AuditActorType,
  AuditCursor,
  AuditEvent,
  AuditEventFilters,
  AuditEventRow,
  AuditOutcome,
} from './audit.ts';

export type AuditEventsTable = {
  id: GeneratedAlways<string>;
  occurred_at: ColumnType<Date, Date | undefined, never>;
  actor_type: AuditActorType;
  actor_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  outcome: AuditOutcome;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  changes: ColumnType<Record<string, unknown> | null, string | null, never>;
};

export type AuditPendingSealsTable = { event_id: string; occurred_at: Date };

export type AuditSealsTable = {
  position: string;
  event_id: string;
  occurred_at: Date;
  prev_hash: string;
  hash: string;
  sealed_at: ColumnType<Date, never, never>;
};

export type AuditTables = {
  'platform.audit_events': AuditEventsTable;
  'platform.audit_pending_seals': AuditPendingSealsTable;
  'platform.audit_seals': AuditSealsTable;
};

// Any constants work; they only have to be the same in every Keel process
// (migrations.ts uses 7_271_639_001).
const SEALER_LOCK_KEY = 7_271_639_002;
const PARTITION_LOCK_KEY = 7_271_639_003;

/** A timestamptz as UTC text with microseconds, whatever the session's TimeZone and DateStyle. */
function utcText(column: string) {
  return sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

// The columns a seal covers, as text (see SealedEventColumns). Adding a
// column to audit_events does not add it here: that needs a new hash format.
const SEALED_COLUMNS = sql`
  e.id::text as id,
  ${utcText('e.occurred_at')} as occurred_at,
  e.actor_type, e.actor_id, e.action, e.resource_type, e.resource_id, e.outcome, e.request_id,
  e.ip::text as ip,
  e.user_agent,
  e.changes::text as changes`;

/** Inserts one event; the table's trigger queues it for sealing in the same transaction. */
export async function insertAuditEvent(db: Kysely<AuditTables>, row: AuditEventRow): Promise<string> {
  const inserted = await db
    .insertInto('platform.audit_events')
    .values({ ...toColumns(row), changes: row.changes === null ? null : JSON.stringify(row.changes) })
    .returning('id')
    .executeTakeFirstOrThrow();
  return inserted.id;
}

/**
 * The same insert as a data-modifying CTE of the caller's statement, written
 * only if `condition` selects anything (see `insertRowsWhen`); the trigger
 * queues it for sealing as it does any insert.
 */
export function auditEventInsertWhen(
  row: AuditEventRow,
  condition: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return insertRowsWhen('platform.audit_events', [{ ...toColumns(row), changes: row.changes }], condition);
}

function toColumns(row: AuditEventRow) {
  return {
    ...(row.occurredAt === undefined ? {} : { occurred_at: row.occurredAt }),
    actor_type: row.actorType,
    actor_id: row.actorId,
    action: row.action,
    resource_type: row.resourceType,
    resource_id: row.resourceId,
    outcome: row.outcome,
    request_id: row.requestId,
    ip: row.ip,
    user_agent: row.userAgent,
  };
}

const EVENT_COLUMNS = [
  'id',
  'occurred_at',
  'actor_type',
  'actor_id',
  'action',
  'resource_type',
  'resource_id',
  'outcome',
  'request_id',
  'ip',
  'user_agent',
  'changes',
] as const;

type EventRow = Pick<Selectable<AuditEventsTable>, (typeof EVENT_COLUMNS)[number]>;

function toAuditEvent(row: EventRow): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    actorType: row.actor_type,
    actorId: row.actor_id,
    action: row.action,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    outcome: row.outcome,
    requestId: row.request_id,
    ip: row.ip,
    userAgent: row.user_agent,
    changes: row.changes,
  };
}

/**
 * One page in (occurred_at desc, id desc) order, strictly after `after`.
 * Returns up to `limit` events and the cursor of the last one.
 */
export async function findAuditEvents(
  db: Kysely<AuditTables>,
  filters: AuditEventFilters,
  after: AuditCursor | undefined,
  limit: number,
): Promise<{ event: AuditEvent; cursor: AuditCursor }[]> {
  let query = db
    .selectFrom('platform.audit_events')
    .select([...EVENT_COLUMNS, utcText('occurred_at').as('cursor_time')]);
  if (filters.actorId !== undefined) query = query.where('actor_id', '=', filters.actorId);
  if (filters.resourceType !== undefined) query = query.where('resource_type', '=', filters.resourceType);
  if (filters.resourceId !== undefined) query = query.where('resource_id', '=', filters.resourceId);
  if (filters.action !== undefined) query = query.where('action', '=', filters.action);
  if (filters.from !== undefined) query = query.where('occurred_at', '>=', filters.from);
  if (filters.to !== undefined) query = query.where('occurred_at', '<', filters.to);
  if (after !== undefined) {
    query = query.where(
      sql<boolean>`(occurred_at, id) < (${after.occurredAt}::timestamptz, ${after.id}::bigint)`,
    );
  }
  const rows = await query.orderBy('occurred_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({
    event: toAuditEvent(row),
    cursor: { occurredAt: row.cursor_time, id: row.id },
  }));
}

/** Takes the sealer's transaction-level advisory lock; false when another sealer holds it. */
export async function lockSealer(db: Kysely<AuditTables>): Promise<boolean> {
  return tryAdvisoryXactLock(db, SEALER_LOCK_KEY);
}

/** Takes the partition maintenance lock; false when another process holds it. */
export async function lockPartitionMaintenance(db: Kysely<AuditTables>): Promise<boolean> {
  return tryAdvisoryXactLock(db, PARTITION_LOCK_KEY);
}

async function tryAdvisoryXactLock(db: Kysely<AuditTables>, key: number): Promise<boolean> {
  const result = await sql<{ is_locked: boolean }>`
    select pg_try_advisory_xact_lock(${key}::bigint) as is_locked`.execute(db);
  return result.rows[0]?.is_locked === true;
}

export type ChainHead = { position: number; hash: string };

/** The last seal; undefined for an empty chain. */
export async function findChainHead(db: Kysely<AuditTables>): Promise<ChainHead | undefined> {
  const row = await db
    .selectFrom('platform.audit_seals')
    .select(['position', 'hash'])
    .orderBy('position', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? undefined : { position: Number(row.position), hash: row.hash };
}

export type PendingEvent = {
  eventId: string;
  occurredAt: string;
  /** Already has a seal: the queue row is stale. */
  isSealed: boolean;
  /** The event row itself; undefined when it is gone. */
  columns: SealedEventColumns | undefined;
};

/** The oldest queued events, in (occurred_at, id) order, with their columns as sealing hashes them. */
export async function findPendingEvents(db: Kysely<AuditTables>, limit: number): Promise<PendingEvent[]> {
  const result = await sql<
    {
      pending_event_id: string;
      pending_occurred_at: string;
      is_sealed: boolean;
    } & Nullable<SealedEventColumns>
  >`
    select
      p.event_id::text as pending_event_id,
      ${utcText('p.occurred_at')} as pending_occurred_at,
      exists (
        select 1 from platform.audit_seals s where s.event_id = p.event_id and s.occurred_at = p.occurred_at
      ) as is_sealed,
      ${SEALED_COLUMNS}
    from platform.audit_pending_seals p
    left join platform.audit_events e on e.occurred_at = p.occurred_at and e.id = p.event_id
    order by p.occurred_at, p.event_id
    limit ${limit}`.execute(db);
  return result.rows.map((row) => ({
    eventId: row.pending_event_id,
    occurredAt: row.pending_occurred_at,
    isSealed: row.is_sealed,
    columns: toSealedColumns(row),
  }));
}

export type NewSeal = {
  position: number;
  eventId: string;
  occurredAt: string;
  prevHash: string;
  hash: string;
};

export async function insertSeals(db: Kysely<AuditTables>, seals: NewSeal[]): Promise<void> {
  if (seals.length === 0) return;
  // One statement with array parameters: a fixed parameter count whatever the batch size.
  await sql`
    insert into platform.audit_seals (position, event_id, occurred_at, prev_hash, hash)
    select * from unnest(
      ${seals.map((seal) => String(seal.position))}::bigint[],
      ${seals.map((seal) => seal.eventId)}::bigint[],
      ${seals.map((seal) => seal.occurredAt)}::timestamptz[],
      ${seals.map((seal) => seal.prevHash)}::text[],
      ${seals.map((seal) => seal.hash)}::text[]
    )`.execute(db);
}

export async function deletePendingSeals(
  db: Kysely<AuditTables>,
  events: { eventId: string; occurredAt: string }[],
): Promise<void> {
  if (events.length === 0) return;
  await sql`
    delete from platform.audit_pending_seals p
    using unnest(
      ${events.map((event) => event.eventId)}::bigint[],
      ${events.map((event) => event.occurredAt)}::timestamptz[]
    ) as k(event_id, occurred_at)
    where p.event_id = k.event_id and p.occurred_at = k.occurred_at`.execute(db);
}

export type SealWithEvent = {
  position: number;
  eventId: string;
  prevHash: string;
  hash: string;
  /** The sealed event's current columns; undefined when no row matches the seal's (occurred_at, id). */
  columns: SealedEventColumns | undefined;
};

/** Seals after `afterPosition` in chain order, each with its event as stored now. */
export async function findSealsAfter(
  db: Kysely<AuditTables>,
  afterPosition: number,
  limit: number,
): Promise<SealWithEvent[]> {
  const result = await sql<
    {
      position: string;
      seal_event_id: string;
      prev_hash: string;
      hash: string;
    } & Nullable<SealedEventColumns>
  >`
    select s.position::text as position, s.event_id::text as seal_event_id, s.prev_hash, s.hash,
      ${SEALED_COLUMNS}
    from platform.audit_seals s
    left join platform.audit_events e on e.occurred_at = s.occurred_at and e.id = s.event_id
    where s.position > ${String(afterPosition)}::bigint
    order by s.position
    limit ${limit}`.execute(db);
  return result.rows.map((row) => ({
    position: Number(row.position),
    eventId: row.seal_event_id,
    prevHash: row.prev_hash,
    hash: row.hash,
    columns: toSealedColumns(row),
  }));
}

/**
 * An event by id alone, whatever its time. Slow (one probe per partition), so
 * only for diagnosing a seal whose (occurred_at, id) no longer matches a row.
 */
export async function findSealedColumnsById(
  db: Kysely<AuditTables>,
  eventId: string,
): Promise<SealedEventColumns | undefined> {
  const result = await sql<SealedEventColumns>`
    select ${SEALED_COLUMNS} from platform.audit_events e where e.id = ${eventId}::bigint limit 1`.execute(
    db,
  );
  return result.rows[0];
}

export async function countPendingSeals(db: Kysely<AuditTables>): Promise<number> {
  const row = await db
    .selectFrom('platform.audit_pending_seals')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export type PartitionStatus = 'created' | 'exists' | 'blocked_by_default';

/** Bounds how long DDL waits for a lock in this transaction (`lock_timeout`). */
export async function setLockTimeout(db: Kysely<AuditTables>, milliseconds: number): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${milliseconds}ms`}, true)`.execute(db);
}

/** Creates the monthly partition for `monthStart` ('YYYY-MM-01') unless it exists or cannot be created. */
export async function createMonthlyPartition(
  db: Kysely<AuditTables>,
  monthStart: string,
): Promise<PartitionStatus> {
  const result = await sql<{ status: PartitionStatus }>`
    select platform.audit_ensure_partition(${monthStart}::date) as status`.execute(db);
  const status = result.rows[0]?.status;
  if (status === undefined) throw new Error('audit_ensure_partition returned no row');
  return status;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

function toSealedColumns(row: Nullable<SealedEventColumns>): SealedEventColumns | undefined {
  if (
    row.id === null ||
    row.occurred_at === null ||
    row.actor_type === null ||
    row.action === null ||
    row.resource_type === null ||
    row.outcome === null
  ) {
    return undefined;
  }
  return {
    id: row.id,
    occurred_at: row.occurred_at,
    actor_type: row.actor_type,
    actor_id: row.actor_id,
    action: row.action,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    outcome: row.outcome,
    request_id: row.request_id,
    ip: row.ip,
    user_agent: row.user_agent,
    changes: row.changes,
  };
}
