import type { Generated, Kysely, RawBuilder } from 'kysely';
import { sql } from 'kysely';

export type IdempotencyKeysTable = {
  scope: string;
  method: string;
  route: string;
  key: string;
  request_hash: string;
  status: 'in_progress' | 'completed';
  lock_token: string | null;
  locked_until: Date | null;
  response_status: number | null;
  response_headers: Record<string, string> | null;
  response_body: unknown;
  created_at: Generated<Date>;
  completed_at: Date | null;
};

export type IdempotencyTables = { 'platform.idempotency_keys': IdempotencyKeysTable };

export type KeyIdentity = { scope: string; method: string; route: string; key: string };

export type StoredKey = {
  requestHash: string;
  status: 'in_progress' | 'completed';
  isLockExpired: boolean;
  response: StoredResponse | undefined;
};

export type StoredResponse = { statusCode: number; headers: Record<string, string>; body: unknown };

/** Inserts an in-progress claim; false when a row for the identity already exists. */
export async function insertClaim(
  db: Kysely<IdempotencyTables>,
  identity: KeyIdentity,
  claim: { requestHash: string; lockToken: string; lockTimeoutMs: number },
): Promise<boolean> {
  const inserted = await db
    .insertInto('platform.idempotency_keys')
    .values({
      ...identity,
      request_hash: claim.requestHash,
      status: 'in_progress',
      lock_token: claim.lockToken,
      locked_until: sql<Date>`now() + ${claim.lockTimeoutMs} * interval '1 millisecond'`,
    })
    .onConflict((conflict) => conflict.doNothing())
    .returning('key')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function findKey(
  db: Kysely<IdempotencyTables>,
  identity: KeyIdentity,
): Promise<StoredKey | undefined> {
  const row = await db
    .selectFrom('platform.idempotency_keys')
    .select([
      'request_hash',
      'status',
      'response_status',
      'response_headers',
      'response_body',
      sql<boolean>`coalesce(locked_until <= now(), false)`.as('is_lock_expired'),
    ])
    .where((eb) => eb.and({ ...identity }))
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    requestHash: row.request_hash,
    status: row.status,
    isLockExpired: row.is_lock_expired,
    response:
      row.response_status === null
        ? undefined
        : { statusCode: row.response_status, headers: row.response_headers ?? {}, body: row.response_body },
  };
}

/** Takes over a claim whose holder has not finished within its lock timeout. */
export async function updateExpiredClaim(
  db: Kysely<IdempotencyTables>,
  identity: KeyIdentity,
  claim: { lockToken: string; lockTimeoutMs: number },
): Promise<boolean> {
  const updated = await db
    .updateTable('platform.idempotency_keys')
    .set({
      lock_token: claim.lockToken,
      locked_until: sql<Date>`now() + ${claim.lockTimeoutMs} * interval '1 millisecond'`,
    })
    .where((eb) => eb.and({ ...identity }))
    .where('status', '=', 'in_progress')
    .where('locked_until', '<=', sql<Date>`now()`)
    .returning('key')
    .executeTakeFirst();
  return updated !== undefined;
}

/** Stores the response; false when the claim identified by lockToken no longer holds the key. */
export async function updateCompleted(
  db: Kysely<IdempotencyTables>,
  identity: KeyIdentity,
  lockToken: string,
  response: StoredResponse,
): Promise<boolean> {
  const updated = await db
    .updateTable('platform.idempotency_keys')
    .set({
      status: 'completed',
      lock_token: null,
      locked_until: null,
      response_status: response.statusCode,
      response_headers: JSON.stringify(response.headers) as unknown as Record<string, string>,
      response_body: JSON.stringify(response.body ?? null),
      completed_at: sql<Date>`now()`,
    })
    .where((eb) => eb.and({ ...identity }))
    .where('lock_token', '=', lockToken)
    .returning('key')
    .executeTakeFirst();
  return updated !== undefined;
}

/** Drops an unfinished claim so the client's retry can run the request again. */
export async function deleteClaim(
  db: Kysely<IdempotencyTables>,
  identity: KeyIdentity,
  lockToken: string,
): Promise<void> {
  await db
    .deleteFrom('platform.idempotency_keys')
    .where((eb) => eb.and({ ...identity }))
    .where('lock_token', '=', lockToken)
    .execute();
}

/** Deletes up to `limit` records created before `cutoff`; returns how many went. */
export async function deleteExpiredKeys(
  db: Kysely<IdempotencyTables>,
  cutoff: Date,
  limit: number,
): Promise<number> {
  const result = await sql<{ count: string }>`
    with doomed as (
      select scope, method, route, key from platform.idempotency_keys
      where created_at < ${cutoff}
      limit ${limit}
    )
    delete from platform.idempotency_keys k
    using doomed
    where k.scope = doomed.scope and k.method = doomed.method and k.route = doomed.route and k.key = doomed.key
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * SQL that lets a service complete a claim inside its own single write
 * statement (as CTEs), instead of a BEGIN / write / complete / COMMIT
 * transaction: one round trip instead of four, atomic all the same because a
 * statement is. `heldClaim` locks the key row only while this request still
 * holds it; `completeWhen(condition)` stores the response only if `condition`
 * (e.g. "the insert returned a row") selects anything.
 */
export type ClaimCompletionSql = {
  heldClaim: RawBuilder<unknown>;
  completeWhen: (condition: RawBuilder<unknown>) => RawBuilder<unknown>;
};

export function claimCompletionSql(
  identity: KeyIdentity,
  lockToken: string,
  response: StoredResponse,
): ClaimCompletionSql {
  const matchesClaim = sql`scope = ${identity.scope} and method = ${identity.method}
    and route = ${identity.route} and key = ${identity.key} and lock_token = ${lockToken}`;
  return {
    heldClaim: sql`select 1 from platform.idempotency_keys where ${matchesClaim} for update`,
    completeWhen: (condition) => sql`update platform.idempotency_keys set
        status = 'completed', lock_token = null, locked_until = null,
        response_status = ${response.statusCode},
        response_headers = ${JSON.stringify(response.headers)}::jsonb,
        response_body = ${JSON.stringify(response.body ?? null)}::jsonb,
        completed_at = now()
      where ${matchesClaim} and exists (${condition})`,
  };
}
