import type { Clock } from '@keel/platform/module';
import type { TelemedicineDatabase } from '../database.ts';
import { findRollupGroups } from './analytics.repository.ts';
import { type AnalyticsReport, resolveAnalyticsRange, summariseAnalytics } from './analytics.ts';

export type AnalyticsService = {
  /** The report over whole UTC days (defaults: the last 30 days), from the rollup alone. */
  getTelemedicineAnalytics(query: { from?: string; to?: string }): Promise<AnalyticsReport>;
};

export function createAnalyticsService(deps: { db: TelemedicineDatabase; clock: Clock }): AnalyticsService {
  return {
    async getTelemedicineAnalytics(query) {
      const range = resolveAnalyticsRange(query, deps.clock.now());
      const rows = await deps.db.run((db) => findRollupGroups(db, range));
      return summariseAnalytics(range, rows);
    },
  };
}
