import type { Database } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { computeSealHash, GENESIS_HASH } from './audit.chain.ts';
import {
  type AuditTables,
  deletePendingSeals,
  findChainHead,
  findPendingEvents,
  insertSeals,
  lockSealer,
  type NewSeal,
} from './audit.repository.ts';

export type SealResult = {
  /** Events added to the chain. */
  sealed: number;
  /** Queue entries dropped because their event had vanished before it was sealed. */
  orphaned: number;
  /** Another sealer held the lock, so this call stopped early. */
  wasLockBusy: boolean;
};

export const DEFAULT_SEAL_BATCH_SIZE = 500;

/**
 * Seals every queued audit event into the hash chain, `batchSize` events per
 * transaction, and returns how many it sealed.
 *
 * Why the chain follows sealing order, not ids: writers take identity values
 * when they insert but commit in any order, so a sealer chaining by id would
 * either wait forever for a gap that is a rolled-back insert or skip an event
 * that commits late. Instead each batch chains whatever has committed, in
 * (occurred_at, id) order, and an event that commits late joins a later batch.
 * That order is recorded in `audit_seals.position`, a table of its own
 * because `audit_events` is append-only and the seal is only known after the
 * event has committed.
 *
 * Why a transaction-level advisory lock: the chain has one head, so exactly
 * one sealer may extend it at a time, across processes. `pg_try_advisory_xact_lock`
 * makes a second sealer give up at once instead of queueing, and the lock
 * ends with the transaction, so a crashed sealer never leaves it held (and,
 * unlike a session lock, it works behind a transaction-pooling PgBouncer).
 * Writers never touch this lock.
 *
 * @example
 * const { sealed } = await sealAuditEvents(database, 100);
 */
export async function sealAuditEvents(
  database: Database,
  batchSize = DEFAULT_SEAL_BATCH_SIZE,
  options: { maxBatches?: number } = {},
): Promise<SealResult> {
  const db = database.typed<AuditTables>();
  const total: SealResult = { sealed: 0, orphaned: 0, wasLockBusy: false };
  const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const outcome = await db.transaction(async (trx) => {
      if (!(await lockSealer(trx))) return undefined;
      // Read after taking the lock: the previous holder's seals are committed by then.
      const head = await findChainHead(trx);
      const pending = await findPendingEvents(trx, batchSize);
      let position = head?.position ?? 0;
      let prevHash = head?.hash ?? GENESIS_HASH;
      const seals: NewSeal[] = [];
      let orphaned = 0;
      for (const event of pending) {
        if (event.columns === undefined) orphaned += 1;
        if (event.columns === undefined || event.isSealed) continue;
        position += 1;
        const hash = computeSealHash(prevHash, event.columns);
        seals.push({ position, eventId: event.eventId, occurredAt: event.occurredAt, prevHash, hash });
        prevHash = hash;
      }
      await insertSeals(trx, seals);
      await deletePendingSeals(trx, pending);
      return { sealed: seals.length, orphaned, read: pending.length };
    });
    if (outcome === undefined) {
      total.wasLockBusy = true;
      return total;
    }
    total.sealed += outcome.sealed;
    total.orphaned += outcome.orphaned;
    if (outcome.read < batchSize) return total;
  }
  return total;
}

export type AuditSealerSettings = {
  database: Database;
  intervalMs: number;
  logger: Logger;
  batchSize?: number;
  /** Bounds one run, so a flood of writes cannot keep a run going forever; the next tick continues. */
  maxBatchesPerRun?: number;
};

/**
 * Runs `sealAuditEvents` every `intervalMs` in the background (the timer does
 * not keep the process alive). Every process may run one: the advisory lock
 * lets one seal at a time and the others skip that tick.
 *
 * @example
 * const sealer = startAuditSealer({ database, intervalMs: 1000, logger });
 * // on shutdown:
 * sealer.stop();
 */
export function startAuditSealer(settings: AuditSealerSettings): {
  stop: () => void;
  runOnce: () => Promise<SealResult>;
} {
  const runOnce = () =>
    sealAuditEvents(settings.database, settings.batchSize ?? DEFAULT_SEAL_BATCH_SIZE, {
      maxBatches: settings.maxBatchesPerRun ?? 20,
    });
  let isRunning = false;
  const timer = setInterval(() => {
    // A slow run (a big backlog) must not overlap the next tick in the same process.
    if (isRunning) return;
    isRunning = true;
    runOnce()
      .then((result) => {
        if (result.sealed > 0) settings.logger.debug({ sealed: result.sealed }, 'sealed audit events');
        if (result.orphaned > 0) {
          settings.logger.warn(
            { orphaned: result.orphaned },
            'queued audit events vanished before they were sealed; investigate tampering',
          );
        }
      })
      .catch((error: unknown) =>
        settings.logger.warn({ err: { message: (error as Error).message } }, 'audit sealing failed'),
      )
      .finally(() => {
        isRunning = false;
      });
  }, settings.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), runOnce };
}
