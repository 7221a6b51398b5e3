import { Kysely } from 'kysely';
import type { Db } from '../db/index.ts';
import { CryptoError, type CryptoErrorCode, isCryptoError } from './crypto.errors.ts';
import { ciphertextPrefix, type FieldEncryption } from './field-encryption.ts';
import {
  countRowsOutsidePrefix,
  type EncryptedColumn,
  findRowsOutsidePrefix,
  IDENTIFIER_PATTERN,
  type RowId,
  updateValueIfUnchanged,
} from './rotation.repository.ts';

/**
 * Where the rows live: the platform's `Db` handle (each batch then runs with
 * retry on transient failures, behind the database breaker) or a bare Kysely
 * instance (no retry; not a transaction, since each batch opens its own).
 */
/** Rotation needs plain units of work and transactions, nothing else of `Db`. */
type RotationDb<Schema> = Pick<Db<Schema>, 'run' | 'transaction'>;

export type RotationDatabase<Schema = unknown> = RotationDb<Schema> | Kysely<Schema>;

export type RotateEncryptedColumnOptions<Schema = unknown> = {
  db: RotationDatabase<Schema>;
  /** `schema.table` or `table`: lower-case unquoted identifiers only. */
  table: string;
  /** A unique, ordered column (the primary key): uuid, text or integer. */
  idColumn: string;
  /** The text column holding `kv1` values; nulls are skipped. */
  column: string;
  /** The AAD each value was encrypted with, from its row id (as text). */
  aad: (rowId: string) => string;
  /** Rows per batch (1-10,000): one select, then one short transaction of conditional updates. */
  batchSize: number;
  /** Its active key is the target; every older key must still be in its keyring. */
  encryption: FieldEncryption;
  /** Called after every batch; awaited, so it may pause, log or read. */
  onProgress?: (progress: RotationProgress) => void | Promise<void>;
  /** Stops before the next batch; the run returns `isComplete: false` and can simply be started again. */
  signal?: AbortSignal;
};

export type RotationCounts = {
  batches: number;
  /** Rows selected as not under the active key. */
  scanned: number;
  /** Rows written back under the active key. */
  rotated: number;
  /** Rows changed by someone else between our read and our write; left as they were. */
  conflicts: number;
  /** Rows that failed to decrypt (unknown key, wrong AAD, altered, not an envelope); left as they were. */
  failed: number;
};

export type RotationProgress = RotationCounts & { lastId: string };

export type RotationFailure = { id: string; code: CryptoErrorCode };

export type RotationResult = RotationCounts & {
  /** The first 100 failures, for the operator: ids and codes, no values. */
  failures: RotationFailure[];
  /** True when the pass reached the end of the table; false when stopped by `signal`. */
  isComplete: boolean;
};

const MAX_BATCH_SIZE = 10_000;
const MAX_REPORTED_FAILURES = 100;

type Change = { id: RowId; expected: string; replacement: string };

/**
 * Re-wraps every value of one encrypted column under the keyring's active key,
 * in batches, while the application keeps reading and writing.
 *
 * Cheap path: values are verified (decrypted with their AAD) and only their
 * 32-byte data key is re-wrapped; the encrypted data itself is not touched.
 *
 * Safe to stop and re-run at any time: it selects only rows not yet under the
 * active key, and it writes with `where id = $id and column = $old`, so a
 * concurrent application write is never overwritten (it is counted as a
 * conflict). Rows that conflict, fail, or are written under an old key by a
 * not-yet-upgraded instance after the pass went by are picked up by the next
 * run; deploy the new keyring to every instance before rotating.
 *
 * @example
 * const result = await rotateEncryptedColumn({
 *   db: database.typed<UserMetadataSchema>(),
 *   table: 'user_metadata.users',
 *   idColumn: 'id',
 *   column: 'phone_encrypted',
 *   aad: (id) => `user_metadata.users:phone:${id}`,
 *   batchSize: 500,
 *   encryption,
 *   onProgress: (progress) => logger.info(progress, 'rotating phone numbers'),
 * });
 * if (result.conflicts > 0 || result.failed > 0) logger.warn(result, 'run the rotation again');
 */
export async function rotateEncryptedColumn<Schema>(
  options: RotateEncryptedColumnOptions<Schema>,
): Promise<RotationResult> {
  const target = toEncryptedColumn(options);
  const { batchSize, encryption, signal } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new CryptoError('crypto.invalid_input', `batchSize must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  }
  const database = asDb(options.db);
  const prefix = ciphertextPrefix(encryption.activeKeyId);
  const counts: RotationCounts = { batches: 0, scanned: 0, rotated: 0, conflicts: 0, failed: 0 };
  const failures: RotationFailure[] = [];
  let afterId: RowId | undefined;

  for (;;) {
    if (signal?.aborted) return { ...counts, failures, isComplete: false };
    const rows = await database.run((db) =>
      findRowsOutsidePrefix(db, target, { prefix, afterId, limit: batchSize }),
    );
    const lastRow = rows.at(-1);
    if (lastRow === undefined) break;

    // Crypto work happens before the transaction so row locks are held only
    // for the updates themselves.
    const changes: Change[] = [];
    for (const row of rows) {
      try {
        changes.push({
          id: row.id,
          expected: row.value,
          replacement: encryption.rewrap(row.value, options.aad(String(row.id))),
        });
      } catch (error) {
        if (!isCryptoError(error)) throw error;
        counts.failed += 1;
        if (failures.length < MAX_REPORTED_FAILURES) failures.push({ id: String(row.id), code: error.code });
      }
    }

    // One transaction per batch: one commit instead of one per row. A retry
    // after a transient failure repeats every conditional update, which is harmless.
    const rotated =
      changes.length === 0
        ? 0
        : await database.transaction(async (trx) => {
            let written = 0;
            for (const change of changes) {
              if (await updateValueIfUnchanged(trx, target, change)) written += 1;
            }
            return written;
          });

    counts.batches += 1;
    counts.scanned += rows.length;
    counts.rotated += rotated;
    counts.conflicts += changes.length - rotated;
    afterId = lastRow.id;
    await options.onProgress?.({ ...counts, lastId: String(lastRow.id) });
    if (rows.length < batchSize) break;
  }
  return { ...counts, failures, isComplete: true };
}

/**
 * How many set values of a column are not under the active key: 0 once a
 * rotation is done. A full scan; for checks and dashboards, not hot paths.
 *
 * @example
 * const remaining = await countValuesToRotate({ db, table: 'user_metadata.users', column: 'phone_encrypted', encryption });
 */
export async function countValuesToRotate<Schema>(options: {
  db: RotationDatabase<Schema>;
  table: string;
  column: string;
  encryption: FieldEncryption;
}): Promise<number> {
  const target = toEncryptedColumn({ ...options, idColumn: options.column });
  return asDb(options.db).run((db) =>
    countRowsOutsidePrefix(db, target, ciphertextPrefix(options.encryption.activeKeyId)),
  );
}

/**
 * Validates the names before any of them reaches SQL. The error names the
 * option, not the value, which may be an injection attempt headed for a log.
 */
export function toEncryptedColumn(names: {
  table: string;
  idColumn: string;
  column: string;
}): EncryptedColumn {
  const parts = names.table.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER_PATTERN.test(part))) {
    throw invalidIdentifier('table');
  }
  if (!IDENTIFIER_PATTERN.test(names.idColumn)) throw invalidIdentifier('idColumn');
  if (!IDENTIFIER_PATTERN.test(names.column)) throw invalidIdentifier('column');
  const [first, second] = parts as [string, string | undefined];
  return second === undefined
    ? { schema: undefined, table: first, idColumn: names.idColumn, column: names.column }
    : { schema: first, table: second, idColumn: names.idColumn, column: names.column };
}

function invalidIdentifier(option: string): CryptoError {
  return new CryptoError(
    'crypto.invalid_identifier',
    `${option} must be a lower-case SQL identifier (schema.table for tables)`,
    { option },
  );
}

function asDb<Schema>(db: RotationDatabase<Schema>): RotationDb<unknown> {
  // Rotation issues raw SQL only, so the caller's table types do not matter here.
  const untyped = db as unknown as RotationDatabase<unknown>;
  if (!(untyped instanceof Kysely)) return untyped;
  return {
    run: (work) => work(untyped),
    transaction: (work) => untyped.transaction().execute(work),
  };
}
