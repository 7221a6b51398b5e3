import { LRUCache } from 'lru-cache';
import type { Clock } from '../../module/index.ts';
import type { Logger } from '../../observability/index.ts';
import type { RedisClient } from '../../redis/index.ts';

/**
 * A short-lived cache in front of the database. Entries expire after their
 * TTL, so anything read from it is at most `ttlMs` stale: that bound is what
 * lets a revoked session or a disabled user be refused within seconds without
 * a database read on every request. A `ttlMs` of 0 or less stores nothing.
 */
export type TtlCache<Value> = {
  get(key: string): Promise<Value | undefined>;
  set(key: string, value: Value, ttlMs: number): Promise<void>;
  delete(keys: readonly string[]): Promise<void>;
};

/**
 * An in-process cache (lru-cache) with a TTL per entry, bounded to
 * `maxEntries` (the least recently used entry goes first). Each process has
 * its own: a `delete` here does not reach other instances, whose entries
 * expire on their TTL. `clock` replaces lru-cache's monotonic timer in tests.
 *
 * @example
 * const cache = createMemoryTtlCache<SessionState>({ maxEntries: 10_000 });
 * await cache.set(sessionId, state, config.AUTH_SESSION_CACHE_TTL_MS);
 */
export function createMemoryTtlCache<Value extends object>(options: {
  maxEntries: number;
  clock?: Clock;
}): TtlCache<Value> {
  const { clock } = options;
  const cache = new LRUCache<string, Value>({
    max: options.maxEntries,
    ...(clock === undefined
      ? {}
      : {
          perf: { now: () => clock.now().getTime() },
          // lru-cache otherwise reuses one reading for a millisecond of real time.
          ttlResolution: 0,
        }),
  });
  return {
    async get(key) {
      return cache.get(key);
    },
    async set(key, value, ttlMs) {
      // lru-cache reads ttl 0 as "never expires"; here it means "do not cache".
      if (ttlMs <= 0) return;
      cache.set(key, value, { ttl: ttlMs });
    },
    async delete(keys) {
      for (const key of keys) cache.delete(key);
    },
  };
}

/**
 * A cache shared by every instance through Redis: values are stored as JSON
 * (so they must be JSON-safe: a `Date` comes back as a string) under
 * `prefix + key` with a `PX` expiry, and `delete` reaches every instance.
 *
 * Redis failures never fail the request and never serve a guess: `get`
 * answers `undefined`, so the caller reads the database (the source of
 * truth), and `set`/`delete` log and carry on. A lost `delete` leaves the old
 * entry until its TTL ends, the same staleness bound the cache already has.
 *
 * @example
 * const cache = createRedisTtlCache<SessionState>({ redis, prefix: 'keel:session-state:', logger });
 * const state = (await cache.get(sessionId)) ?? (await loadSessionState(db, sessionId));
 */
export function createRedisTtlCache<Value>(options: {
  redis: RedisClient;
  prefix: string;
  logger: Logger;
}): TtlCache<Value> {
  const { redis, prefix, logger } = options;
  // The Redis client logs the outage itself; per-request lines here would
  // repeat it on every request, so lookups log at debug only.
  return {
    async get(key) {
      let stored: string | null;
      try {
        stored = await redis.get(prefix + key);
      } catch (error) {
        logger.debug({ err: describeError(error), prefix }, 'ttl cache read failed; using the database');
        return undefined;
      }
      if (stored === null) return undefined;
      try {
        return JSON.parse(stored) as Value;
      } catch {
        logger.warn({ prefix }, 'ttl cache entry is not JSON; ignoring it');
        return undefined;
      }
    },
    async set(key, value, ttlMs) {
      if (ttlMs <= 0) return;
      try {
        await redis.set(prefix + key, JSON.stringify(value), 'PX', Math.ceil(ttlMs));
      } catch (error) {
        logger.debug({ err: describeError(error), prefix }, 'ttl cache write failed');
      }
    },
    async delete(keys) {
      if (keys.length === 0) return;
      try {
        await redis.del(...keys.map((key) => prefix + key));
      } catch (error) {
        // Worth a warning: other instances keep the old entry until its TTL ends.
        logger.warn(
          { err: describeError(error), prefix, count: keys.length },
          'ttl cache delete failed; entries expire on their TTL',
        );
      }
    },
  };
}

// ioredis errors can carry the failed command and its arguments (cached
// values); only the message and code are safe to log.
function describeError(error: unknown): { message: string; code?: string } {
  if (!(error instanceof Error)) return { message: String(error) };
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' ? { message: error.message, code } : { message: error.message };
}
