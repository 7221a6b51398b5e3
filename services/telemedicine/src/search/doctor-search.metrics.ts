import { assertNever } from '@keel/platform/errors';
import type { ServiceMetrics } from '@keel/platform/observability';

/** Where a cached page came from: this process's memory (pages read in the last second) or Redis. */
export type SearchCacheLayer = 'process' | 'redis';

/**
 * Why a search skipped the cache for the database: the client is not
 * connected, a command failed in the last few seconds, or a command of this
 * very search failed.
 */
export type SearchCacheBypassReason = 'disconnected' | 'backing_off' | 'failed';

/**
 * What the cache did. Every `getOrLoad` of a real cache is exactly one of
 * `hit`, `miss`, `coalesced` or `bypassed`, so their sum is the searches the
 * cache saw and `hit` over that sum is the hit ratio.
 */
export type SearchCacheEvent =
  | { kind: 'hit'; layer: SearchCacheLayer }
  /** Not cached: this search queries Postgres (and stores the page). */
  | { kind: 'miss' }
  /** Not cached, and another search of this process is already loading the page: this one waits for it. */
  | { kind: 'coalesced' }
  | { kind: 'bypassed'; reason: SearchCacheBypassReason }
  /** This process bumped the generation (one bump for any number of marked invalidations). */
  | { kind: 'invalidation_published' };

export type DoctorSearchCacheMetrics = { record(event: SearchCacheEvent): void };

/** Counts nothing: for caches built without a registry (unit tests, tools). */
export const NO_DOCTOR_SEARCH_CACHE_METRICS: DoctorSearchCacheMetrics = { record: () => {} };

const LAYERS: readonly SearchCacheLayer[] = ['process', 'redis'];
const BYPASS_REASONS: readonly SearchCacheBypassReason[] = ['disconnected', 'backing_off', 'failed'];

/**
 * The search cache's counters, on the service's metrics
 * (`keel_telemedicine_search_cache_*`). Per process: a fleet's hit ratio is
 * the sum over processes, and since exactly one process bumps per marked
 * invalidation, the sum of `invalidations_published_total` is the fleet's
 * generation bumps.
 */
export function createDoctorSearchCacheMetrics(metrics: ServiceMetrics): DoctorSearchCacheMetrics {
  const hits = metrics.counter({
    name: 'search_cache_hits_total',
    help: 'Doctor searches answered from the cache, by layer (process memory or redis)',
    labelNames: ['layer'],
  });
  const misses = metrics.counter({
    name: 'search_cache_misses_total',
    help: 'Doctor searches not in the cache that loaded their page from Postgres',
  });
  const coalesced = metrics.counter({
    name: 'search_cache_coalesced_total',
    help: 'Doctor searches not in the cache that waited for the same page being loaded by another search of the process',
  });
  const bypasses = metrics.counter({
    name: 'search_cache_bypasses_total',
    help: 'Doctor searches that skipped a failing cache for Postgres, by reason (disconnected, backing_off, failed)',
    labelNames: ['reason'],
  });
  const invalidationsPublished = metrics.counter({
    name: 'search_cache_invalidations_published_total',
    help: 'Search cache generation bumps this process published',
  });
  // Every series exists from the first scrape, at zero: a ratio or rate over
  // a series that appears only with its first increment misses that increment.
  for (const layer of LAYERS) hits.inc({ layer }, 0);
  for (const reason of BYPASS_REASONS) bypasses.inc({ reason }, 0);
  return {
    record(event) {
      switch (event.kind) {
        case 'hit':
          hits.inc({ layer: event.layer });
          return;
        case 'miss':
          misses.inc();
          return;
        case 'coalesced':
          coalesced.inc();
          return;
        case 'bypassed':
          bypasses.inc({ reason: event.reason });
          return;
        case 'invalidation_published':
          invalidationsPublished.inc();
          return;
        default:
          assertNever(event);
      }
    },
  };
}
