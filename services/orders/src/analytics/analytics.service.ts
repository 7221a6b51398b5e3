import type { Db } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { OutletAccess } from '../access/outlet-access.ts';
import { analyticsOutletRequired, invalidAnalyticsRange, outletNotFound } from './analytics.errors.ts';
import { type AnalyticsSchema, findRollup, hasOutlet } from './analytics.repository.ts';
import {
  type AnalyticsGranularity,
  type AnalyticsSummary,
  describeRangeProblem,
  summariseRollup,
} from './analytics.ts';

export type AnalyticsQuery = {
  outletId: string | undefined;
  from: Date;
  to: Date;
  granularity: AnalyticsGranularity;
};

export type OrderAnalytics = AnalyticsSummary & AnalyticsQuery;

export type AnalyticsService = {
  getOrderAnalytics(principal: Principal, query: AnalyticsQuery): Promise<OrderAnalytics>;
};

export function createAnalyticsService(deps: {
  db: Db<AnalyticsSchema>;
  access: OutletAccess;
}): AnalyticsService {
  return {
    async getOrderAnalytics(principal, query) {
      const problem = describeRangeProblem(query.from, query.to);
      if (problem !== undefined) throw invalidAnalyticsRange(problem);
      const { outletId } = query;
      if (outletId === undefined) {
        // Without an outlet the report spans the whole chain: only for callers scoped to all of it.
        if ((await deps.access.scopeOf(principal)).kind !== 'all') throw analyticsOutletRequired();
      } else {
        await deps.access.assertCanActForOutlet(principal, outletId, () => outletNotFound(outletId));
        if (!(await deps.db.run((db) => hasOutlet(db, outletId)))) throw outletNotFound(outletId);
      }
      const rows = await deps.db.run((db) => findRollup(db, query));
      return { ...query, ...summariseRollup(rows) };
    },
  };
}
