import { type RawBuilder, sql } from 'kysely';

/** A row as its columns: JSON-representable values only (a `Date` is sent as ISO-8601 text). */
export type ColumnValues = Readonly<Record<string, unknown>>;

/**
 * `insert into <table> (<columns>) select … where exists (<condition>)`, to
 * embed as a data-modifying CTE: the rows are written only if `condition`
 * selects anything, by the same statement that decided it. That is what lets
 * a write that depends on another (a booking on the slot it holds) be one
 * autocommit statement instead of a transaction of several round trips.
 *
 * The rows travel as one jsonb parameter and take the table's own column
 * types (`jsonb_populate_recordset`): no cast per value, and one parameter
 * however many rows. Every row must name the same columns; columns left out
 * get their defaults.
 *
 * @example
 * await sql`
 *   with held as (update app.slots set status = 'HELD' where id = ${slotId} and status = 'OPEN' returning id),
 *   booking as (${insertRowsWhen('app.bookings', [{ id, slot_id: slotId }], sql`select 1 from held`)})
 *   select exists (select 1 from held) as is_held`.execute(writer);
 */
export function insertRowsWhen(
  table: string,
  rows: readonly ColumnValues[],
  condition: RawBuilder<unknown>,
): RawBuilder<unknown> {
  const [first] = rows;
  if (first === undefined) throw new Error('insertRowsWhen: no rows to insert');
  const columns = Object.keys(first);
  for (const row of rows) {
    const names = Object.keys(row);
    if (names.length !== columns.length || names.some((name, index) => name !== columns[index])) {
      throw new Error(`insertRowsWhen: every row must name the columns ${columns.join(', ')}, in that order`);
    }
  }
  const list = sql.join(columns.map((column) => sql.ref(column)));
  const picked = sql.join(columns.map((column) => sql.ref(`r.${column}`)));
  return sql`insert into ${sql.table(table)} (${list})
    select ${picked} from jsonb_populate_recordset(null::${sql.table(table)}, ${JSON.stringify(rows)}::jsonb) as r
    where exists (${condition})`;
}
