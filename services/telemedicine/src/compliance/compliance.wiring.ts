import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerComplianceRoutes } from './compliance.routes.ts';
import { createComplianceService } from './compliance.service.ts';
import { createExportDataQueue } from './export-data.job.ts';
import {
  createPurgeDataExportsQueue,
  PURGE_DATA_EXPORTS_CRON,
  PURGE_DATA_EXPORTS_QUEUE,
} from './purge-data-exports.job.ts';

/** Builds the compliance feature (access log, data exports, consents) and registers its routes and jobs. */
export function wireCompliance(app: KeelApp, deps: TelemedicineDependencies): void {
  deps.background.addJobQueue(
    createExportDataQueue({
      db: deps.db,
      database: deps.database,
      encryption: deps.encryption,
      clock: deps.clock,
      notifier: deps.notifier,
    }),
  );
  deps.background.addJobQueue(
    createPurgeDataExportsQueue({
      db: deps.db,
      clock: deps.clock,
      logger: deps.logger.child({ component: 'telemedicine-data-exports' }),
    }),
  );
  deps.background.schedule(PURGE_DATA_EXPORTS_QUEUE, PURGE_DATA_EXPORTS_CRON);
  registerComplianceRoutes(
    app,
    createComplianceService({
      db: deps.db,
      database: deps.database,
      encryption: deps.encryption,
      clock: deps.clock,
      ids: deps.ids,
      jobs: deps.background.jobs,
    }),
  );
}
