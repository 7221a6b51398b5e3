import type { Clock } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import { searchCacheUnavailable } from './doctor-search.errors.ts';
import {
  type DoctorSearchCacheMetrics,
  NO_DOCTOR_SEARCH_CACHE_METRICS,
  type SearchCacheBypassReason,
} from './doctor-search.metrics.ts';
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
 * heavy and the TTL is short anyway). The unreachable pages are never
 * deleted; they expire by their TTL.
 *
 * Why invalidations are coalesced: every booking, hold expiry and
 * cancellation is a listing event, so at a hundred bookings a second a bump
 * per event would empty the cache a hundred times a second and every search
 * would reach Postgres. An event only marks the cache dirty; every process
 * runs a publisher that, once per `coalesceMs`, turns a set dirty flag into
 * one bump (one Lua script, so the flag is never cleared without the bump and
 * exactly one process bumps per flag). The price is staleness: a page can be
 * served up to the event's delivery lag plus one interval (plus the 100 ms a
 * process may keep reading an old generation) after the change.
 * Search is advisory: booking re-checks the slot under its lock anyway.
 */
export type DoctorSearchCache = {
  /** The cached page for this fingerprint, or `load()`'s (then cached). Never fails because of the cache. */
  getOrLoad(fingerprint: string, load: () => Promise<DoctorSearchPage>): Promise<DoctorSearchPage>;
  /** Marks every cached page stale (published within one interval); throws `unavailable` when it could not (the caller retries). */
  invalidate(): Promise<void>;
  /** Publishes a marked invalidation now: true when this call bumped the generation. Never throws. */
  publishInvalidation(): Promise<boolean>;
  /** Starts publishing marked invalidations every `coalesceMs`. */
  start(): void;
  /** Stops publishing; resolves once a publish under way has finished. */
  stop(): Promise<void>;
};

/** The part of the Redis client the cache uses (ioredis satisfies it). */
export type SearchCacheStore = {
  readonly status: string;
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
  set(key: string, value: string, expiryMode: 'EX', seconds: number): Promise<unknown>;
  eval(script: string, numberOfKeys: number, ...args: (string | number)[]): Promise<unknown>;
};

export const SEARCH_CACHE_GENERATION_KEY = 'telemedicine:search:generation';
export const SEARCH_CACHE_DIRTY_KEY = 'telemedicine:search:dirty';
export const SEARCH_CACHE_PAGE_KEY_PREFIX = 'telemedicine:search:v1';
// After a failed command the cache is skipped for a while: a hung Redis
// answers nothing for the client's full command timeout, which every search
// would otherwise wait out before falling back.
const BYPASS_AFTER_FAILURE_MS = 5000;
// Pages read or written in the last second are kept in process, under the
// same generation-bearing key: the generation is still read from Redis on
// every search, so an invalidation reaches them exactly as it reaches Redis,
// while the page itself (a few kilobytes to fetch and parse) is not read
// again for each of the hundreds of identical searches a second. The age
// bound keeps them within a second of the Redis TTL.
const RECENT_PAGE_MAX_AGE_MS = 1000;
// The generation itself is read from Redis at most this often per process
// (and at once when this process publishes): a hot search is then answered
// without a round trip, for at most this much more staleness on top of the
// coalescing interval.
const GENERATION_MAX_AGE_MS = 100;
const MAX_RECENT_PAGES = 1000;
// GETDEL and INCR in one script: Redis runs it atomically, so a process that
// dies or times out in between cannot clear the flag without bumping, and of
// several processes publishing at once exactly one sees the flag.
const PUBLISH_INVALIDATION_SCRIPT = `
if redis.call('GETDEL', KEYS[1]) then
  return redis.call('INCR', KEYS[2])
end
return 0
`;

/** No cache: every search reads the database, and there is nothing to invalidate. */
export const NO_DOCTOR_SEARCH_CACHE: DoctorSearchCache = {
  getOrLoad: (_fingerprint, load) => load(),
  invalidate: async () => {},
  publishInvalidation: async () => false,
  start: () => {},
  stop: async () => {},
};

export function createDoctorSearchCache(options: {
  store: SearchCacheStore;
  ttlSeconds: number;
  coalesceMs: number;
  logger: Logger;
  clock: Clock;
  /** Hits, misses, waits, bypasses and published invalidations; counts nothing when omitted. */
  metrics?: DoctorSearchCacheMetrics;
  /** Prepended to every key; tests isolate themselves with it. */
  keyPrefix?: string;
}): DoctorSearchCache {
  const { store, ttlSeconds, coalesceMs, logger, clock } = options;
  const metrics = options.metrics ?? NO_DOCTOR_SEARCH_CACHE_METRICS;
  const keyPrefix = options.keyPrefix ?? '';
  const generationKey = `${keyPrefix}${SEARCH_CACHE_GENERATION_KEY}`;
  const dirtyKey = `${keyPrefix}${SEARCH_CACHE_DIRTY_KEY}`;
  const pageKeyPrefix = `${keyPrefix}${SEARCH_CACHE_PAGE_KEY_PREFIX}`;
  let isFailing = false;
  let bypassUntilMs = 0;
  // Concurrent misses of one page in this process share one database query.
  const loading = new Map<string, Promise<DoctorSearchPage>>();
  const recent = new Map<string, { page: DoctorSearchPage; expiresAtMs: number }>();
  let knownGeneration: { value: string; readAtMs: number } | undefined;
  let readingGeneration: Promise<string> | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let publishing: Promise<boolean> | undefined;

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
  function isConnected(): boolean {
    if (store.status === 'ready') return true;
    noteFailure({ message: `redis is ${store.status}` });
    return false;
  }
  /** Why a search must skip the cache now, or undefined when it may use it. */
  function bypassReason(): SearchCacheBypassReason | undefined {
    if (!isConnected()) return 'disconnected';
    if (clock.now().getTime() < bypassUntilMs) return 'backing_off';
    return undefined;
  }

  function remember(key: string, page: DoctorSearchPage): void {
    // Cleared rather than evicted one by one: the set of distinct searches in a second is small.
    if (recent.size >= MAX_RECENT_PAGES) recent.clear();
    recent.set(key, { page, expiresAtMs: clock.now().getTime() + RECENT_PAGE_MAX_AGE_MS });
  }

  function recall(key: string): DoctorSearchPage | undefined {
    const entry = recent.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs > clock.now().getTime()) return entry.page;
    recent.delete(key);
    return undefined;
  }

  /** The current generation, from Redis at most every GENERATION_MAX_AGE_MS; concurrent reads share one GET. */
  function currentGeneration(): Promise<string> {
    const nowMs = clock.now().getTime();
    if (knownGeneration !== undefined && nowMs - knownGeneration.readAtMs < GENERATION_MAX_AGE_MS) {
      return Promise.resolve(knownGeneration.value);
    }
    readingGeneration ??= store
      .get(generationKey)
      .then((value) => {
        knownGeneration = { value: value ?? '0', readAtMs: nowMs };
        return knownGeneration.value;
      })
      .finally(() => {
        readingGeneration = undefined;
      });
    return readingGeneration;
  }

  async function loadAndStore(key: string, load: () => Promise<DoctorSearchPage>): Promise<DoctorSearchPage> {
    const pending = loading.get(key);
    if (pending !== undefined) {
      metrics.record({ kind: 'coalesced' });
      return pending;
    }
    metrics.record({ kind: 'miss' });
    const page = load();
    loading.set(key, page);
    // The entry stays until the page is stored, so a miss that arrives while
    // it is being written joins this load instead of starting another.
    try {
      const loaded = await page;
      try {
        await store.set(key, JSON.stringify(loaded), 'EX', ttlSeconds);
        remember(key, loaded);
      } catch (error) {
        noteFailure(error);
      }
      return loaded;
    } finally {
      loading.delete(key);
    }
  }

  async function publishInvalidation(): Promise<boolean> {
    // Not the search bypass: publishing waits on nobody, and publishing as
    // soon as Redis answers again ends the staleness sooner.
    if (!isConnected()) return false;
    try {
      const generation = await store.eval(PUBLISH_INVALIDATION_SCRIPT, 2, dirtyKey, generationKey);
      noteSuccess();
      const isBumped = typeof generation === 'number' && generation > 0;
      // This process stops serving the old generation at once; others within GENERATION_MAX_AGE_MS.
      if (isBumped) {
        knownGeneration = { value: String(generation), readAtMs: clock.now().getTime() };
        metrics.record({ kind: 'invalidation_published' });
      }
      return isBumped;
    } catch (error) {
      // The flag is still set (the script either ran whole or not at all), so the next tick retries.
      noteFailure(error);
      return false;
    }
  }

  return {
    async getOrLoad(fingerprint, load) {
      const reason = bypassReason();
      if (reason !== undefined) {
        metrics.record({ kind: 'bypassed', reason });
        return load();
      }
      let key: string;
      try {
        // The generation is read before the database: a page computed from
        // data older than an invalidation is then stored under the older
        // generation, where nobody looks any more.
        const generation = await currentGeneration();
        key = `${pageKeyPrefix}:${generation}:${sha256(fingerprint)}`;
        const recalled = recall(key);
        if (recalled !== undefined) {
          noteSuccess();
          metrics.record({ kind: 'hit', layer: 'process' });
          return recalled;
        }
        const cached = await store.get(key);
        noteSuccess();
        const page = cached === null ? undefined : parsePage(cached);
        if (page !== undefined) {
          remember(key, page);
          metrics.record({ kind: 'hit', layer: 'redis' });
          return page;
        }
      } catch (error) {
        noteFailure(error);
        metrics.record({ kind: 'bypassed', reason: 'failed' });
        return load();
      }
      return loadAndStore(key, load);
    },

    async invalidate() {
      try {
        await store.set(dirtyKey, '1');
      } catch (error) {
        noteFailure(error);
        throw searchCacheUnavailable();
      }
      noteSuccess();
    },

    publishInvalidation,

    start() {
      if (ticker !== undefined) return;
      ticker = setInterval(() => {
        // A slow Redis must not stack publishes up; the next tick catches up.
        if (publishing !== undefined) return;
        publishing = publishInvalidation().finally(() => {
          publishing = undefined;
        });
      }, coalesceMs);
      // The ticker alone must not keep a process alive.
      ticker.unref();
    },

    async stop() {
      clearInterval(ticker);
      ticker = undefined;
      await publishing;
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
