import type { Clock } from '@keel/platform/module';
import type { TelemedicineDatabase } from '../database.ts';
import type { DoctorSearchCache } from './doctor-search.cache.ts';
import {
  type DoctorSearchQuery,
  type DoctorSearchRow,
  findDoctorSearchRows,
  setNameMatchThreshold,
} from './doctor-search.repository.ts';
import {
  type DoctorSearchCriteria,
  type DoctorSearchInput,
  type DoctorSearchPage,
  type DoctorSearchPosition,
  decodeCursor,
  encodeCursor,
  fingerprintOf,
  normaliseSearch,
  slotWindowsOf,
} from './doctor-search.ts';

export type DoctorSearchServiceDependencies = {
  db: TelemedicineDatabase;
  clock: Clock;
  cache: DoctorSearchCache;
};

export type DoctorSearchService = {
  searchDoctors(input: DoctorSearchInput): Promise<DoctorSearchPage>;
};

export function createDoctorSearchService(deps: DoctorSearchServiceDependencies): DoctorSearchService {
  async function findRows(query: DoctorSearchQuery): Promise<DoctorSearchRow[]> {
    if (query.criteria.text === null) return deps.db.run((db) => findDoctorSearchRows(db, query));
    // The name-match threshold is a transaction-local setting.
    return deps.db.transaction(async (trx) => {
      await setNameMatchThreshold(trx);
      return findDoctorSearchRows(trx, query);
    });
  }

  async function loadPage(
    criteria: DoctorSearchCriteria,
    after: DoctorSearchPosition | undefined,
    limit: number,
  ): Promise<DoctorSearchPage> {
    // One row more than the page tells whether there is a next page.
    const rows = await findRows({
      criteria,
      slotWindows: slotWindowsOf(criteria, deps.clock.now()),
      after,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => row.item),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(criteria, last.position) : null,
    };
  }

  return {
    async searchDoctors(input) {
      const criteria = normaliseSearch(input);
      // Checked before the cache: a bad cursor is refused, never answered from it.
      const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor, criteria);
      // Availability windows move with the clock; a cached page may be up to
      // the TTL behind them (a slot that just started still listed), which
      // booking re-checks anyway.
      return deps.cache.getOrLoad(fingerprintOf(criteria, input.limit, input.cursor ?? null), () =>
        loadPage(criteria, after, input.limit),
      );
    },
  };
}
