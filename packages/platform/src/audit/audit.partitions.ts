import type { Database } from '../db/database.ts';
import { sqlState } from '../db/pg-errors.ts';
import type { Clock } from '../module/service-module.ts';
import { systemClock } from '../module/service-module.ts';
import type { Logger } from '../observability/logger.ts';
import {
  type AuditTables,
  createMonthlyPartition,
  lockPartitionMaintenance,
  type PartitionStatus,
  setLockTimeout,
} from './audit.repository.ts';

/**
 * - `created` / `exists`: the month has its partition;
 * - `blocked_by_default`: rows of that month already sit in the DEFAULT
 *   partition, so Postgres refuses the new partition; the rows stay there;
 * - `busy`: another process is maintaining partitions, or the table lock was
 *   not granted within the lock timeout; the next run tries again.
 */
export type AuditPartitionStatus = PartitionStatus | 'busy';

export type AuditPartitionResult = {
  /** `audit_events_yYYYYmMM` */
  name: string;
  /** Inclusive, UTC. */
  rangeStart: Date;
  /** Exclusive, UTC. */
  rangeEnd: Date;
  status: AuditPartitionStatus;
};

const LOCK_NOT_AVAILABLE = '55P03';
const DEFAULT_LOCK_TIMEOUT_MS = 2000;

/**
 * Creates the monthly partitions of `platform.audit_events` for the month of
 * `now` (UTC) and `monthsAhead` months after it; idempotent.
 *
 * Creating a partition locks the whole table, so each month gets its own
 * short transaction with a lock timeout: behind a long-running writer it gives
 * up (`busy`) instead of queueing and stalling every writer behind it.
 *
 * Caveat: a partition cannot be created for a month the DEFAULT partition
 * already holds rows of (Postgres would have to move them, and audit rows are
 * never deleted). That month is reported `blocked_by_default` and its rows stay
 * in DEFAULT, readable and sealed. Creating partitions months ahead keeps
 * DEFAULT empty in practice; a blocked month needs a planned manual move (see
 * README.md).
 *
 * @example
 * const results = await ensureAuditPartitions(database, { now: clock.now(), monthsAhead: 3 });
 */
export async function ensureAuditPartitions(
  database: Database,
  options: { now: Date; monthsAhead: number; lockTimeoutMs?: number },
): Promise<AuditPartitionResult[]> {
  const db = database.typed<AuditTables>();
  const results: AuditPartitionResult[] = [];
  for (let offset = 0; offset <= options.monthsAhead; offset += 1) {
    const rangeStart = new Date(
      Date.UTC(options.now.getUTCFullYear(), options.now.getUTCMonth() + offset, 1),
    );
    const rangeEnd = new Date(Date.UTC(rangeStart.getUTCFullYear(), rangeStart.getUTCMonth() + 1, 1));
    let status: AuditPartitionStatus;
    try {
      status = await db.transaction(async (trx) => {
        if (!(await lockPartitionMaintenance(trx))) return 'busy' as const;
        await setLockTimeout(trx, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
        return createMonthlyPartition(trx, rangeStart.toISOString().slice(0, 10));
      });
    } catch (error) {
      if (sqlState(error) !== LOCK_NOT_AVAILABLE) throw error;
      status = 'busy';
    }
    results.push({ name: partitionName(rangeStart), rangeStart, rangeEnd, status });
  }
  return results;
}

export function partitionName(monthStart: Date): string {
  const month = String(monthStart.getUTCMonth() + 1).padStart(2, '0');
  return `audit_events_y${monthStart.getUTCFullYear()}m${month}`;
}

export type AuditPartitionMaintenanceSettings = {
  database: Database;
  intervalMs: number;
  monthsAhead: number;
  logger: Logger;
  clock?: Clock;
};

/**
 * Runs `ensureAuditPartitions` once at start (a server down for months may
 * have run past its partitions) and then every `intervalMs`, in the
 * background. Logs created partitions, and warns about blocked months.
 *
 * @example
 * const maintenance = startAuditPartitionMaintenance({ database, intervalMs: 6 * 3_600_000, monthsAhead: 3, logger });
 * // on shutdown:
 * maintenance.stop();
 */
export function startAuditPartitionMaintenance(settings: AuditPartitionMaintenanceSettings): {
  stop: () => void;
  runOnce: () => Promise<AuditPartitionResult[]>;
} {
  const clock = settings.clock ?? systemClock;
  const runOnce = () =>
    ensureAuditPartitions(settings.database, { now: clock.now(), monthsAhead: settings.monthsAhead });
  const run = () => {
    runOnce()
      .then((results) => {
        for (const result of results) {
          if (result.status === 'created') {
            settings.logger.info({ partition: result.name }, 'created audit partition');
          } else if (result.status === 'blocked_by_default') {
            settings.logger.warn(
              { partition: result.name },
              'audit partition cannot be created: the DEFAULT partition holds rows of that month (see audit README)',
            );
          }
        }
      })
      .catch((error: unknown) =>
        settings.logger.warn(
          { err: { message: (error as Error).message } },
          'audit partition maintenance failed',
        ),
      );
  };
  const first = setTimeout(run, 0);
  first.unref();
  const timer = setInterval(run, settings.intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearTimeout(first);
      clearInterval(timer);
    },
    runOnce,
  };
}
