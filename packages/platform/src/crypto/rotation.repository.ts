import { type Kysely, type RawBuilder, sql } from 'kysely';
import type pg from 'pg';

/**
 * A text column of encrypted values and the key that orders its rows.
 * Every name has passed `IDENTIFIER_PATTERN` and is quoted with `sql.id`, so
 * none can break out of the statement.
 */
export type EncryptedColumn = {
  schema: string | undefined;
  table: string;
  idColumn: string;
  column: string;
};

/** A row id as the driver returns it (uuid, text, bigint as string; integer as number). */
export type RowId = string | number;

export type EncryptedRow = { id: RowId; value: string };

/**
 * Unquoted PostgreSQL identifiers in their folded (lower-case) form. Anything
 * else is refused rather than quoted-and-hoped-for.
 */
export const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

function tableOf(target: Pick<EncryptedColumn, 'schema' | 'table'>): RawBuilder<unknown> {
  return target.schema === undefined ? sql.id(target.table) : sql.id(target.schema, target.table);
}

/**
 * The next rows after `afterId` (in id order) whose value is set and not
 * wrapped by the key with `prefix`. Keyset pagination, so one pass visits each
 * row once even when some rows cannot be rotated and stay behind.
 */
export async function findRowsOutsidePrefix(
  db: Kysely<unknown>,
  target: EncryptedColumn,
  query: { prefix: string; afterId: RowId | undefined; limit: number },
): Promise<EncryptedRow[]> {
  const id = sql.id(target.idColumn);
  const column = sql.id(target.column);
  // starts_with needs no LIKE escaping: `_` is legal in key ids and would be a wildcard.
  const after = query.afterId === undefined ? sql`` : sql`and ${id} > ${query.afterId}`;
  const result = await sql<EncryptedRow>`
    select ${id} as id, ${column} as value
    from ${tableOf(target)}
    where ${column} is not null and not starts_with(${column}, ${query.prefix}) ${after}
    order by ${id}
    limit ${query.limit}`.execute(db);
  return result.rows;
}

/**
 * Writes `replacement` only if the row still holds `expected`. Under READ
 * COMMITTED a concurrent writer's committed change makes the WHERE false on
 * re-check, so an application write between our read and this update wins.
 */
export async function updateValueIfUnchanged(
  db: Kysely<unknown>,
  target: EncryptedColumn,
  change: { id: RowId; expected: string; replacement: string },
): Promise<boolean> {
  const id = sql.id(target.idColumn);
  const column = sql.id(target.column);
  const result = await sql<{ id: RowId }>`
    update ${tableOf(target)}
    set ${column} = ${change.replacement}
    where ${id} = ${change.id} and ${column} = ${change.expected}
    returning ${id} as id`.execute(db);
  return result.rows.length === 1;
}

/** How many set values are not wrapped by the key with `prefix` (a full scan). */
export async function countRowsOutsidePrefix(
  db: Kysely<unknown>,
  target: Omit<EncryptedColumn, 'idColumn'>,
  prefix: string,
): Promise<number> {
  const column = sql.id(target.column);
  const result = await sql<{ count: string }>`
    select count(*) as count
    from ${tableOf(target)}
    where ${column} is not null and not starts_with(${column}, ${prefix})`.execute(db);
  return Number(result.rows[0]?.count ?? 0);
}

/**
 * Runs `work` while holding the rotation lock; undefined when another process holds it.
 *
 * Why a transaction-level lock held open on a dedicated connection:
 * `rotateEncryptedColumn` runs each batch through the pool (any connection,
 * one short transaction per batch), so no single batch transaction spans the
 * pass. A session lock (`pg_try_advisory_lock`) on a checked-out client would
 * span it too, but behind a transaction-pooling PgBouncer the unlock may reach
 * another server connection and the lock leaks. `pg_try_advisory_xact_lock`
 * inside an open transaction pins the connection everywhere and ends with it:
 * on rollback, on a crash, or if the server kills the idle transaction (in
 * which case the pass simply goes on unlocked, which is safe). The transaction
 * only ever takes this lock: it gets no transaction id and, under READ
 * COMMITTED, keeps no snapshot, so holding it does not hold back vacuum. It
 * costs one pool connection for the length of a pass that has work.
 */
export async function withRotationLock<T>(
  pool: pg.Pool,
  lockKey: number,
  work: () => Promise<T>,
): Promise<T | undefined> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query('begin');
    const result = await client.query<{ is_locked: boolean }>(
      'select pg_try_advisory_xact_lock($1::bigint) as is_locked',
      [lockKey],
    );
    if (result.rows[0]?.is_locked !== true) return undefined;
    return await work();
  } finally {
    try {
      await client.query('rollback');
    } catch (error) {
      // A broken connection must not go back to the pool.
      failure = error instanceof Error ? error : new Error(String(error));
    }
    client.release(failure);
  }
}
