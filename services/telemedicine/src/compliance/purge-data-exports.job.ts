import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { Clock } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import type { TelemedicineDatabase } from '../database.ts';
import { deleteExpiredArchives } from './compliance.repository.ts';

export const PURGE_DATA_EXPORTS_QUEUE = 'telemedicine.purge-data-exports';
/** Hourly: an archive outlives its expiry by at most an hour (downloads are refused from the expiry on). */
export const PURGE_DATA_EXPORTS_CRON = '17 * * * *';

/**
 * Erases expired export archives: a copy of a patient's whole record should
 * not sit in the database after the patient had their week to fetch it.
 */
export function createPurgeDataExportsQueue(deps: {
  db: TelemedicineDatabase;
  clock: Clock;
  logger: Logger;
}): JobQueueDefinition<Record<string, never>> {
  return {
    name: PURGE_DATA_EXPORTS_QUEUE,
    retryLimit: 2,
    retryDelaySeconds: 60,
    deadLetter: true,
    policy: 'singleton',
    handler: async () => {
      const erased = await deps.db.run((db) => deleteExpiredArchives(db, deps.clock.now()));
      if (erased > 0) deps.logger.info({ erased }, 'expired data export archives erased');
    },
  };
}
