import type { RawBuilder } from 'kysely';
import type { AnyTransaction, Database } from '../db/database.ts';
import { asPlatformTables } from '../db/database.ts';
import { invalidLimit } from './audit.errors.ts';
import {
  type AuditTables,
  auditEventInsertWhen,
  findAuditEvents,
  insertAuditEvent,
} from './audit.repository.ts';
import {
  type AuditEventFilters,
  type AuditEventInput,
  type AuditEventPage,
  type AuditEventQuery,
  decodeCursor,
  encodeCursor,
  LIST_LIMIT_MAX,
  toAuditEventRow,
} from './audit.ts';

/**
 * Records an audit event inside the caller's transaction, so the event
 * commits with the change it describes or not at all. Takes no lock and does
 * no hashing: the background sealer chains the event once it has committed.
 * `changes` is always redacted (see `redactChanges`); an invalid `ip` is
 * dropped and a long `userAgent` truncated rather than failing the write.
 * Returns the event's id.
 *
 * @example
 * await db.transaction(async (trx) => {
 *   await updateEmail(trx, user.id, email);
 *   await recordAuditEvent(trx, {
 *     actorType: 'user', actorId: principal.id, action: 'users.email_changed',
 *     resourceType: 'user', resourceId: user.id, outcome: 'success', requestId: request.id,
 *     ip: request.ip, userAgent: request.headers['user-agent'],
 *     changes: { email: { from: user.email, to: email } }, occurredAt: clock.now(),
 *   });
 * });
 */
export async function recordAuditEvent(trx: AnyTransaction, event: AuditEventInput): Promise<{ id: string }> {
  const id = await insertAuditEvent(asPlatformTables<AuditTables>(trx), toAuditEventRow(event));
  return { id };
}

/**
 * `recordAuditEvent` for a write that is one statement: a CTE to embed in
 * it, recording the event (redacted and normalised the same way) only if
 * `condition` selects anything, so the event commits with the write it
 * describes, in the same statement.
 *
 * @example
 * await db.autocommit((writer) => sql`
 *   with changed as (update app.users set email = ${email} where id = ${id} returning id),
 *   audited as (${recordAuditEventWhen(event, sql`select 1 from changed`)})
 *   select exists (select 1 from changed) as is_changed`.execute(writer));
 */
export function recordAuditEventWhen(
  event: AuditEventInput,
  condition: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return auditEventInsertWhen(toAuditEventRow(event), condition);
}

/**
 * Lists audit events newest first ((occurredAt, id) descending), filtered by
 * any of actor, resource, action and a time range, one page at a time.
 * Pages are keyset pages: events recorded while a client pages through never
 * shift a page, so no event is repeated or skipped. Throws 400
 * `audit.invalid_cursor` for a cursor this function did not return and 400
 * `audit.invalid_limit` for a limit outside 1..500.
 *
 * @example
 * const filter = { resourceType: 'user', resourceId: userId, limit: 50 };
 * const first = await listAuditEvents(database, filter);
 * if (first.nextCursor) await listAuditEvents(database, { ...filter, cursor: first.nextCursor });
 */
export async function listAuditEvents(database: Database, query: AuditEventQuery): Promise<AuditEventPage> {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > LIST_LIMIT_MAX) {
    throw invalidLimit(LIST_LIMIT_MAX);
  }
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const { limit } = query;
  const filters: AuditEventFilters = {
    actorId: query.actorId,
    resourceType: query.resourceType,
    resourceId: query.resourceId,
    action: query.action,
    from: query.from,
    to: query.to,
  };
  // One extra row tells whether another page exists without a count.
  const rows = await database
    .typed<AuditTables>()
    .run((db) => findAuditEvents(db, filters, after, limit + 1));
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    events: page.map((row) => row.event),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.cursor) : null,
  };
}
