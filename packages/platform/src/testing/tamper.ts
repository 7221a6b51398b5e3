import type { TestDatabase } from './test-database.ts';

/**
 * Runs one statement as the superuser with every trigger off, as an attacker
 * with database access would: tamper-evidence tests edit rows behind the
 * append-only triggers with it. Fails unless exactly one row changed.
 *
 * @example
 * await tamperWithRow(testDb, 'update platform.audit_events set outcome = $1 where id = $2', ['failure', id]);
 */
export async function tamperWithRow(
  testDb: TestDatabase,
  statement: string,
  parameters: unknown[] = [],
): Promise<void> {
  const client = await testDb.database.pool.connect();
  try {
    await client.query('begin');
    await client.query('set local session_replication_role = replica');
    const result = await client.query(statement, parameters);
    if (result.rowCount !== 1) throw new Error(`tampering touched ${result.rowCount} rows, expected 1`);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}
