import type { Database } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { CryptoError } from './crypto.errors.ts';
import type { FieldEncryption } from './field-encryption.ts';
import { withRotationLock } from './rotation.repository.ts';
import {
  countValuesToRotate,
  type RotationProgress,
  type RotationResult,
  rotateEncryptedColumn,
  toEncryptedColumn,
} from './rotation.ts';

/** One encrypted column a service registers for background key rotation. */
export type EncryptedColumnSpec = {
  /** `schema.table`: lower-case unquoted identifiers. */
  table: string;
  /** The primary key (uuid, text or integer). */
  idColumn: string;
  /** The text column holding `kv1` values. */
  column: string;
  /** The AAD each value was encrypted with, from its row id. */
  aad: (rowId: string) => string;
};

export type ColumnRotationReport = {
  table: string;
  column: string;
  /** Values not under the active key when the pass counted them; 0 means the column was only counted. */
  pending: number;
  /** The rotation run; null when nothing was pending, the lock was busy, or the column failed first. */
  result: RotationResult | null;
  /** Why counting or rotating this column threw (a database error, say); the next pass tries again. */
  error?: string;
};

export type RotationPassReport = {
  /**
   * `completed`: every column was counted and, where needed, rotated to the end.
   * `stopped`: `stop()` ended the pass between batches.
   * `lock_busy`: another process holds the rotation lock and is doing the work; nothing was rotated.
   */
  outcome: 'completed' | 'stopped' | 'lock_busy';
  columns: ColumnRotationReport[];
  /**
   * True when another pass may find work: the pass did not complete, or some
   * column had conflicts, failures or an error. False does not prove the
   * columns are clean (an instance on the old keyring may write under the old
   * key afterwards); `countValuesToRotate` does.
   */
  hasWorkLeft: boolean;
};

export type EncryptionRotationTask = {
  /** Stops the timer, ends a running pass before its next batch, and resolves once that pass has ended. */
  stop(): Promise<void>;
  /** Runs one pass now, after any pass already running (passes never overlap). */
  runOnce(): Promise<RotationPassReport>;
};

export type EncryptionRotationSettings = {
  database: Database;
  /** Its active key is the target; older keys must still be in its keyring. */
  encryption: FieldEncryption;
  columns: readonly EncryptedColumnSpec[];
  /** Rows per batch (`KEEL_KEY_ROTATION_BATCH_SIZE`), 1-10,000. */
  batchSize: number;
  /** How often the background pass runs; 0 runs no timer (only `runOnce`, as the CLI does). */
  intervalMs: number;
  logger: Logger;
  /** Called after every batch of every column; awaited. Metrics and tests hook in here. */
  onProgress?: (progress: RotationProgress & { table: string; column: string }) => void | Promise<void>;
};

/**
 * Advisory lock key for rotation passes; any constant works as long as every
 * Keel process uses the same one (see db/migrations.ts and audit.repository.ts for the others).
 */
export const ENCRYPTION_ROTATION_LOCK_KEY = 7_271_639_010;

const MAX_BATCH_SIZE = 10_000;

/**
 * Re-encrypts every registered column to the keyring's active key in the
 * background, every `intervalMs` (the timer does not keep the process alive).
 *
 * Each pass first counts, per column, the values not under the active key
 * (`countValuesToRotate`); when every count is 0 that is all it does. Only
 * with work pending does it take the rotation lock and run
 * `rotateEncryptedColumn` on the columns that need it, logging progress per
 * batch (ids and counts), a summary per column, and failures (row ids and
 * error codes, never values or keys).
 *
 * Several processes may run it: a pass that finds the lock taken skips
 * (`lock_busy`). The lock only avoids duplicate work; rotation itself writes
 * with conditional updates and is safe to run concurrently. Within one
 * process passes never overlap. `stop()` ends a pass between batches; a later
 * pass (here or in another process) carries on where it stopped, since done
 * rows are no longer selected.
 *
 * @example
 * const rotation = startEncryptionKeyRotation({
 *   database,
 *   encryption: fieldCrypto.encryption,
 *   columns: [{ table: 'user_metadata.users', idColumn: 'id', column: 'phone_encrypted', aad: (id) => `user_metadata.users:phone:${id}` }],
 *   batchSize: config.KEEL_KEY_ROTATION_BATCH_SIZE,
 *   intervalMs: 60_000,
 *   logger,
 * });
 * // on shutdown:
 * await rotation.stop();
 */
export function startEncryptionKeyRotation(settings: EncryptionRotationSettings): EncryptionRotationTask {
  const { batchSize, intervalMs } = settings;
  // Misconfiguration fails at start-up, not as a warning on every pass.
  for (const spec of settings.columns) toEncryptedColumn(spec);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new CryptoError('crypto.invalid_input', `batchSize must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  }
  if (!Number.isInteger(intervalMs) || intervalMs < 0) {
    throw new CryptoError('crypto.invalid_input', 'intervalMs must be a non-negative integer');
  }

  const stopping = new AbortController();
  let running: Promise<RotationPassReport> | undefined;

  function startPass(): Promise<RotationPassReport> {
    // Chain after the running pass so two never overlap; a failed pass must not block the next.
    const previous = running ?? Promise.resolve(undefined);
    const pass = previous.then(
      () => runPass(settings, stopping.signal),
      () => runPass(settings, stopping.signal),
    );
    running = pass;
    const clear = () => {
      if (running === pass) running = undefined;
    };
    pass.then(clear, clear);
    return pass;
  }

  const timer =
    intervalMs === 0
      ? undefined
      : setInterval(() => {
          // A long pass (a big table) must not queue up ticks behind it.
          if (running !== undefined || stopping.signal.aborted) return;
          startPass().catch((error: unknown) =>
            settings.logger.warn(
              { err: { message: errorMessage(error) } },
              'encryption key rotation pass failed',
            ),
          );
        }, intervalMs);
  timer?.unref();

  return {
    runOnce() {
      if (stopping.signal.aborted)
        return Promise.resolve({ outcome: 'stopped', columns: [], hasWorkLeft: true });
      return startPass();
    },
    async stop() {
      clearInterval(timer);
      stopping.abort();
      await running?.catch(() => undefined);
    },
  };
}

async function runPass(
  settings: EncryptionRotationSettings,
  signal: AbortSignal,
): Promise<RotationPassReport> {
  const { database, encryption, logger } = settings;
  const db = database.typed<unknown>();
  const columns: ColumnRotationReport[] = [];
  if (signal.aborted) return { outcome: 'stopped', columns, hasWorkLeft: true };

  // The idle path: one count per column, no lock, no connection held.
  for (const spec of settings.columns) {
    const report: ColumnRotationReport = { table: spec.table, column: spec.column, pending: 0, result: null };
    try {
      report.pending = await countValuesToRotate({ db, table: spec.table, column: spec.column, encryption });
    } catch (error) {
      report.error = errorMessage(error);
      logger.warn(
        { table: spec.table, column: spec.column, err: { message: report.error } },
        'could not count values to rotate',
      );
    }
    columns.push(report);
  }
  if (columns.every((report) => report.pending === 0)) {
    return {
      outcome: 'completed',
      columns,
      hasWorkLeft: columns.some((report) => report.error !== undefined),
    };
  }

  const outcome = await withRotationLock(database.pool, ENCRYPTION_ROTATION_LOCK_KEY, async () => {
    for (const [index, spec] of settings.columns.entries()) {
      const report = columns[index];
      if (report === undefined || report.pending === 0) continue;
      if (signal.aborted) return 'stopped';
      report.result = await rotateColumn(settings, spec, report, signal);
      if (report.result?.isComplete === false) return 'stopped';
    }
    return 'completed';
  });
  if (outcome === undefined) {
    logger.debug({ activeKeyId: encryption.activeKeyId }, 'another process is rotating encryption keys');
    return { outcome: 'lock_busy', columns, hasWorkLeft: true };
  }
  const hasWorkLeft =
    outcome !== 'completed' ||
    columns.some(
      (report) =>
        report.error !== undefined ||
        (report.result !== null && (report.result.conflicts > 0 || report.result.failed > 0)),
    );
  return { outcome, columns, hasWorkLeft };
}

/** Rotates one column; a thrown failure is logged and recorded on the report, so other columns still run. */
async function rotateColumn(
  settings: EncryptionRotationSettings,
  spec: EncryptedColumnSpec,
  report: ColumnRotationReport,
  signal: AbortSignal,
): Promise<RotationResult | null> {
  const { encryption, logger } = settings;
  const where = { table: spec.table, column: spec.column, activeKeyId: encryption.activeKeyId };
  logger.info({ ...where, pending: report.pending }, 'rotating encrypted column to the active key');
  try {
    const result = await rotateEncryptedColumn({
      db: settings.database.typed<unknown>(),
      table: spec.table,
      idColumn: spec.idColumn,
      column: spec.column,
      aad: spec.aad,
      batchSize: settings.batchSize,
      encryption,
      signal,
      async onProgress(progress) {
        logger.info({ ...where, ...progress }, 'encryption key rotation progress');
        await settings.onProgress?.({ ...progress, table: spec.table, column: spec.column });
      },
    });
    const { failures, ...counts } = result;
    logger.info({ ...where, pending: report.pending, ...counts }, 'encryption key rotation summary');
    if (result.failed > 0) {
      // Ids and codes only: the operator finds the rows, the log never holds their values.
      logger.warn(
        { ...where, failed: result.failed, failures },
        'some values could not be rotated and stay under their old key; inspect these rows',
      );
    }
    return result;
  } catch (error) {
    report.error = errorMessage(error);
    logger.warn({ ...where, err: { message: report.error } }, 'encryption key rotation of a column failed');
    return null;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
