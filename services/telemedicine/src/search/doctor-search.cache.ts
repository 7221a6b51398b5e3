import type { Clock } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import { searchCacheUnavailable } from './doctor-search.errors.ts';
import { type DoctorSearchPage, sha256 } from './doctor-search.ts';

/**
 * Result pages of doctor search, cached under a global generation number.
 *
 * Why one global generation rather than per-doctor keys: a page is the answer
 * to a query, and a change to any doctor (verified, re-priced, a slot opened)
 * can add that doctor to pages that never listed them. Per-doctor keys can
 * only find the pages a doctor is already on, so they would keep serving
 * pages the doctor newly belongs to. Bumping one counter makes every page
 * unreachable at once: correctness over hit rate (search traffic is read
 * heavy, changes are comparatively rare, and the TTL is short anyway). The
 * unreachable pages are never deleted; they expire by their TTL.
 */
export type DoctorSearchCache = {
  /** The cached page for this fingerprint, or `load()`'s (then cached). Never fails because of the cache. */
  getOrLoad(fingerprint: string, load: () => Promise<DoctorSearchPage>): Promise<DoctorSearchPage>;
  /** Makes every cached page unreachable; throws `unavailable` when it could not (the caller retries). */
  invalidate(): Promise<void>;
};

/** The part of the Redis client the cache uses (ioredis satisfies it; tests pass a map). */
export type SearchCacheStore = {
  readonly status: string;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, expiryMode: 'EX', seconds: number): Promise<unknown>;
  incr(key: string): Promise<number>;
};

export const SEARCH_CACHE_GENERATION_KEY = 'telemedicine:search:generation';
const PAGE_KEY_PREFIX = 'telemedicine:search:v1';
// After a failed command the cache is skipped for a while: a hung Redis
// answers nothing for the client's full command timeout, which every search
// would otherwise wait out before falling back.
const BYPASS_AFTER_FAILURE_MS = 5000;

/** No cache: every search reads the database, and there is nothing to invalidate. */
export const NO_DOCTOR_SEARCH_CACHE: DoctorSearchCache = {
  getOrLoad: (_fingerprint, load) => load(),
  invalidate: async () => {},
};

export function createDoctorSearchCache(options: {
  store: SearchCacheStore;
  ttlSeconds: number;
  logger: Logger;
  clock: Clock;
}): DoctorSearchCache {
  const { store, ttlSeconds, logger, clock } = options;
  let isFailing = false;
  let bypassUntilMs = 0;

  // One line when an outage starts and one when it ends, not one per search.
  function noteFailure(error: unknown): void {
    bypassUntilMs = clock.now().getTime() + BYPASS_AFTER_FAILURE_MS;
    if (isFailing) return;
    isFailing = true;
    // Only message and code: ioredis errors can carry the command's arguments.
    const { message, code } = error as { message?: string; code?: string };
    logger.warn({ err: { message, code } }, 'search cache unavailable; searching the database');
  }
  function noteSuccess(): void {
    if (!isFailing) return;
    isFailing = false;
    logger.info('search cache available again');
  }
  function isUsable(): boolean {
    if (store.status !== 'ready') {
      noteFailure({ message: `redis is ${store.status}` });
      return false;
    }
    return clock.now().getTime() >= bypassUntilMs;
  }

  return {
    async getOrLoad(fingerprint, load) {
      if (!isUsable()) return load();
      let key: string;
      try {
        // The generation is read before the database: a page computed from
        // data older than an invalidation is then stored under the older
        // generation, where nobody looks any more.
        const generation = (await store.get(SEARCH_CACHE_GENERATION_KEY)) ?? '0';
        key = `${PAGE_KEY_PREFIX}:${generation}:${sha256(fingerprint)}`;
        const cached = await store.get(key);
        noteSuccess();
        const page = cached === null ? undefined : parsePage(cached);
        if (page !== undefined) return page;
      } catch (error) {
        noteFailure(error);
        return load();
      }
      const page = await load();
      try {
        await store.set(key, JSON.stringify(page), 'EX', ttlSeconds);
      } catch (error) {
        noteFailure(error);
      }
      return page;
    },

    async invalidate() {
      try {
        await store.incr(SEARCH_CACHE_GENERATION_KEY);
      } catch (error) {
        noteFailure(error);
        throw searchCacheUnavailable();
      }
      noteSuccess();
    },
  };
}

// Only this code writes these keys; a value that does not parse (a half
// deployed format change) is a miss and gets overwritten.
function parsePage(value: string): DoctorSearchPage | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<DoctorSearchPage> | null;
    if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.items)) return undefined;
    if (parsed.nextCursor !== null && typeof parsed.nextCursor !== 'string') return undefined;
    return parsed as DoctorSearchPage;
  } catch {
    return undefined;
  }
}
