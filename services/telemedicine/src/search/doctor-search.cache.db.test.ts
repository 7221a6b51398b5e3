import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAppError } from '@keel/platform/errors';
import { createLogger, createServiceMetrics, Registry } from '@keel/platform/observability';
import {
  closeRedisClient,
  createRedisClient,
  type RedisClient,
  waitForRedisReady,
} from '@keel/platform/redis';
import { captureLogs } from '@keel/platform/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createDoctorSearchCache,
  type DoctorSearchCache,
  NO_DOCTOR_SEARCH_CACHE,
  SEARCH_CACHE_DIRTY_KEY,
  SEARCH_CACHE_GENERATION_KEY,
  SEARCH_CACHE_PAGE_KEY_PREFIX,
  type SearchCacheStore,
} from './doctor-search.cache.ts';
import { createDoctorSearchCacheMetrics, type DoctorSearchCacheMetrics } from './doctor-search.metrics.ts';
import type { DoctorSearchPage } from './doctor-search.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Real Redis (so the publish script runs for real) that can be broken, disconnected or held on demand. */
class BreakableStore implements SearchCacheStore {
  isFailing = false;
  statusOverride: string | undefined;
  // While set, eval waits for it: a publish that is still under way.
  evalGate: Promise<void> | undefined;
  evalCalls = 0;
  readsAnswered = 0;
  readonly client: RedisClient;

  constructor(client: RedisClient) {
    this.client = client;
  }

  get status(): string {
    return this.statusOverride ?? this.client.status;
  }

  async get(key: string): Promise<string | null> {
    this.failIfBroken();
    const value = await this.client.get(key);
    this.readsAnswered += 1;
    return value;
  }

  set(key: string, value: string): Promise<unknown>;
  set(key: string, value: string, expiryMode: 'EX', seconds: number): Promise<unknown>;
  async set(key: string, value: string, expiryMode?: 'EX', seconds?: number): Promise<unknown> {
    this.failIfBroken();
    if (expiryMode === undefined || seconds === undefined) return this.client.set(key, value);
    return this.client.set(key, value, expiryMode, seconds);
  }

  async eval(script: string, numberOfKeys: number, ...args: (string | number)[]): Promise<unknown> {
    this.evalCalls += 1;
    this.failIfBroken();
    await this.evalGate;
    return this.client.eval(script, numberOfKeys, ...args);
  }

  private failIfBroken(): void {
    if (this.isFailing) throw Object.assign(new Error('Command timed out'), { code: 'ETIMEDOUT' });
  }
}

// Two connections stand for two server processes sharing one Redis.
let redis: RedisClient;
let otherRedis: RedisClient;
const prefixesUsed: string[] = [];
const startedCaches: DoctorSearchCache[] = [];

beforeAll(async () => {
  const logger = createLogger({ level: 'silent' });
  redis = createRedisClient({ url: REDIS_URL, logger, name: 'search-cache-test' });
  otherRedis = createRedisClient({ url: REDIS_URL, logger, name: 'search-cache-test-other' });
  await Promise.all([
    waitForRedisReady(redis, { timeoutMs: 5000 }),
    waitForRedisReady(otherRedis, { timeoutMs: 5000 }),
  ]);
});

afterEach(async () => {
  await Promise.all(startedCaches.splice(0).map((cache) => cache.stop()));
  for (const prefix of prefixesUsed.splice(0)) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
});

afterAll(async () => {
  await Promise.all([closeRedisClient(redis), closeRedisClient(otherRedis)]);
});

function setUp(options: { ttlSeconds?: number; coalesceMs?: number } = {}) {
  // Keys are global constants in production; a prefix per test keeps tests (and runs) apart.
  const prefix = `keel-test:${randomUUID()}:`;
  prefixesUsed.push(prefix);
  const { stream, logs } = captureLogs();
  let nowMs = Date.parse('2030-01-01T00:00:00Z');
  const clock = { now: () => new Date(nowMs) };
  // The first cache's counters, on a registry of its own as a server's would be; other caches count nothing.
  const registry = new Registry();
  const metrics = createDoctorSearchCacheMetrics(createServiceMetrics(registry, 'telemedicine'));
  function createCache(store: SearchCacheStore, cacheMetrics?: DoctorSearchCacheMetrics): DoctorSearchCache {
    return createDoctorSearchCache({
      store,
      ttlSeconds: options.ttlSeconds ?? 30,
      coalesceMs: options.coalesceMs ?? 1000,
      logger: createLogger({ level: 'info', destination: stream }),
      clock,
      ...(cacheMetrics === undefined ? {} : { metrics: cacheMetrics }),
      keyPrefix: prefix,
    });
  }
  const store = new BreakableStore(redis);
  let loads = 0;
  const load = async (): Promise<DoctorSearchPage> => {
    loads += 1;
    return { items: [], nextCursor: `page-${loads}` };
  };
  return {
    store,
    cache: createCache(store, metrics),
    createCache,
    counts: () => countsIn(registry),
    load,
    loads: () => loads,
    messages: () => logs.lines().map((line) => line.msg),
    warnings: () => logs.lines().filter((line) => line.level === 'warn'),
    generation: () => redis.get(`${prefix}${SEARCH_CACHE_GENERATION_KEY}`),
    dirtyFlag: () => redis.get(`${prefix}${SEARCH_CACHE_DIRTY_KEY}`),
    pageKeys: (generation = '*') => redis.keys(`${prefix}${SEARCH_CACHE_PAGE_KEY_PREFIX}:${generation}:*`),
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

/** Every cache counter's value by series (`hits{layer="redis"}`), without the `keel_telemedicine_search_cache_` prefix. */
async function countsIn(registry: Registry): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const metric of await registry.getMetricsAsJSON()) {
    const name = metric.name.replace(/^keel_telemedicine_search_cache_/, '').replace(/_total$/, '');
    for (const { labels, value } of metric.values) {
      const labelText = Object.entries(labels)
        .map(([label, labelValue]) => `${label}="${labelValue}"`)
        .join(',');
      counts[labelText === '' ? name : `${name}{${labelText}}`] = value;
    }
  }
  return counts;
}

/** The counts of a cache that has seen nothing, with `changes` applied. */
function countsWith(changes: Record<string, number>): Record<string, number> {
  return {
    'hits{layer="process"}': 0,
    'hits{layer="redis"}': 0,
    misses: 0,
    coalesced: 0,
    'bypasses{reason="disconnected"}': 0,
    'bypasses{reason="backing_off"}': 0,
    'bypasses{reason="failed"}': 0,
    invalidations_published: 0,
    ...changes,
  };
}

function started(cache: DoctorSearchCache): DoctorSearchCache {
  startedCaches.push(cache);
  cache.start();
  return cache;
}

describe('createDoctorSearchCache', () => {
  it('answers a repeated search from the store, with the TTL', async () => {
    const { cache, load, loads, pageKeys } = setUp({ ttlSeconds: 45 });
    const first = await cache.getOrLoad('query', load);
    const second = await cache.getOrLoad('query', load);
    expect(second).toEqual(first);
    expect(loads()).toBe(1);
    const keys = await pageKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/:telemedicine:search:v1:0:[0-9a-f]{64}$/);
    const ttl = await redis.ttl(keys[0] ?? '');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(45);
  });

  it('keeps different searches apart', async () => {
    const { cache, load, loads } = setUp();
    await cache.getOrLoad('one', load);
    await cache.getOrLoad('two', load);
    expect(loads()).toBe(2);
  });

  it('keeps serving cached pages after an invalidation until it is published, then loads anew', async () => {
    const { cache, load, loads, generation, dirtyFlag, pageKeys } = setUp();
    await cache.getOrLoad('query', load);
    await cache.invalidate();
    expect(await dirtyFlag()).toBe('1');
    expect((await cache.getOrLoad('query', load)).nextCursor).toBe('page-1');
    expect(loads()).toBe(1);

    expect(await cache.publishInvalidation()).toBe(true);
    const page = await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(page.nextCursor).toBe('page-2');
    expect(await generation()).toBe('1');
    expect(await pageKeys('1')).toHaveLength(1);
  });

  it('publishes any number of marked invalidations as one bump, once', async () => {
    const { cache, generation, dirtyFlag } = setUp();
    expect(await cache.publishInvalidation()).toBe(false);
    expect(await generation()).toBeNull();

    await Promise.all([cache.invalidate(), cache.invalidate(), cache.invalidate()]);
    expect(await cache.publishInvalidation()).toBe(true);
    expect(await cache.publishInvalidation()).toBe(false);
    expect(await generation()).toBe('1');
    expect(await dirtyFlag()).toBeNull();
  });

  it('bumps exactly once when two processes publish the same mark at once', async () => {
    const { cache, createCache, load, loads, generation } = setUp();
    const other = createCache(new BreakableStore(otherRedis));
    await cache.invalidate();
    const published = await Promise.all([cache.publishInvalidation(), other.publishInvalidation()]);
    expect(published.filter(Boolean)).toHaveLength(1);
    expect(await generation()).toBe('1');

    // Both see the new generation, so one's page is the other's hit.
    await cache.getOrLoad('query', load);
    await other.getOrLoad('query', load);
    expect(loads()).toBe(1);
  });

  it('keeps the mark when a publish fails, so the next publish bumps', async () => {
    const { cache, store, generation, dirtyFlag, warnings } = setUp();
    await cache.invalidate();
    store.isFailing = true;
    expect(await cache.publishInvalidation()).toBe(false);
    expect(warnings()).toHaveLength(1);
    expect(await dirtyFlag()).toBe('1');

    store.isFailing = false;
    expect(await cache.publishInvalidation()).toBe(true);
    expect(await generation()).toBe('1');
  });

  it('publishes nothing while the store is not connected', async () => {
    const { cache, store, dirtyFlag } = setUp();
    await cache.invalidate();
    store.statusOverride = 'reconnecting';
    expect(await cache.publishInvalidation()).toBe(false);
    expect(store.evalCalls).toBe(0);
    expect(await dirtyFlag()).toBe('1');
  });

  it('rejects an invalidation it could not mark with kind unavailable, so the event is retried', async () => {
    const { cache, store, dirtyFlag } = setUp();
    store.isFailing = true;
    const error = await cache.invalidate().catch((caught: unknown) => caught);
    expect(isAppError(error) && error.kind).toBe('unavailable');
    expect(isAppError(error) && error.code).toBe('telemedicine.search_cache_unavailable');
    expect(await dirtyFlag()).toBeNull();
  });

  it('shares one load among concurrent misses of the same page', async () => {
    const { cache, store } = setUp();
    let loads = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const load = async (): Promise<DoctorSearchPage> => {
      loads += 1;
      await gate;
      return { items: [], nextCursor: 'shared' };
    };
    const searches = Array.from({ length: 20 }, () => cache.getOrLoad('query', load));
    // Every search has missed before the load ends: one generation read shared by all, twenty page reads.
    await vi.waitFor(() => expect(store.readsAnswered).toBe(21));
    release();
    const pages = await Promise.all(searches);
    expect(loads).toBe(1);
    expect(pages.every((page) => page.nextCursor === 'shared')).toBe(true);
  });

  it('rejects every waiter of a failed load, caches nothing and loads again next time', async () => {
    const { cache, store, load, loads, pageKeys } = setUp();
    let failedLoads = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const failingLoad = async (): Promise<DoctorSearchPage> => {
      failedLoads += 1;
      await gate;
      throw new Error('database unavailable');
    };
    const searches = Array.from({ length: 5 }, () =>
      cache.getOrLoad('query', failingLoad).catch((error: unknown) => error),
    );
    await vi.waitFor(() => expect(store.readsAnswered).toBe(6));
    release();
    const outcomes = await Promise.all(searches);
    expect(failedLoads).toBe(1);
    expect(outcomes.every((outcome) => outcome instanceof Error)).toBe(true);
    expect(await pageKeys()).toHaveLength(0);

    expect((await cache.getOrLoad('query', load)).nextCursor).toBe('page-1');
    expect(loads()).toBe(1);
  });

  it('publishes marked invalidations on its own once started, and no more once stopped', async () => {
    const { cache, generation, dirtyFlag } = setUp({ coalesceMs: 10 });
    started(cache);
    await cache.invalidate();
    await vi.waitFor(async () => expect(await generation()).toBe('1'));
    expect(await dirtyFlag()).toBeNull();

    await cache.stop();
    await cache.invalidate();
    // Many intervals pass without a publish.
    await sleep(200);
    expect(await dirtyFlag()).toBe('1');
    expect(await generation()).toBe('1');
  });

  it('never runs a publish while the previous one is still under way, and stop waits for it', async () => {
    const { cache, store } = setUp({ coalesceMs: 10 });
    let release = () => {};
    store.evalGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    started(cache);
    // Released in any case: the cleanup's stop() would otherwise wait on it forever.
    try {
      await vi.waitFor(() => expect(store.evalCalls).toBe(1));
      await sleep(100);
      expect(store.evalCalls).toBe(1);

      let isStopped = false;
      const stopping = cache.stop().then(() => {
        isStopped = true;
      });
      await sleep(20);
      expect(isStopped).toBe(false);
      release();
      await stopping;
      expect(store.evalCalls).toBe(1);
    } finally {
      release();
    }
  });

  it('treats an unreadable cached value as a miss', async () => {
    const { cache, load, loads, pageKeys, advance } = setUp();
    await cache.getOrLoad('query', load);
    for (const key of await pageKeys()) await redis.set(key, '{"not":"a page"}', 'KEEPTTL');
    advance(1001);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
  });

  it('serves a page it just read from process memory for a second, then from the store again', async () => {
    const { cache, load, loads, pageKeys, advance } = setUp();
    const first = await cache.getOrLoad('query', load);
    // Were the store read, this would be a miss (unreadable value) and a second load.
    for (const key of await pageKeys()) await redis.set(key, '{"not":"a page"}', 'KEEPTTL');
    advance(999);
    expect(await cache.getOrLoad('query', load)).toEqual(first);
    expect(loads()).toBe(1);
    advance(2);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
  });

  it('reads the generation from the store at most every 100 ms, and sees another process publish after that', async () => {
    const { cache, createCache, load, loads, store, advance } = setUp();
    const other = createCache(new BreakableStore(otherRedis));
    await cache.getOrLoad('query', load);
    const readsBefore = store.readsAnswered;
    await cache.getOrLoad('query', load);
    expect(store.readsAnswered).toBe(readsBefore);

    await other.invalidate();
    expect(await other.publishInvalidation()).toBe(true);
    advance(99);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(1);
    advance(2);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
  });

  it('lets a published invalidation reach pages held in process memory at once', async () => {
    const { cache, load, loads } = setUp();
    await cache.getOrLoad('query', load);
    await cache.invalidate();
    expect(await cache.publishInvalidation()).toBe(true);
    const page = await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(page.nextCursor).toBe('page-2');
  });

  it('falls back to the database when the store fails, logging once per outage', async () => {
    const { cache, load, loads, store, messages, warnings, advance } = setUp();
    store.isFailing = true;
    await cache.getOrLoad('query', load);
    advance(10_000);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(warnings()).toHaveLength(1);

    store.isFailing = false;
    advance(10_000);
    await cache.getOrLoad('query', load);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(3);
    expect(messages()).toEqual([
      'search cache unavailable; searching the database',
      'search cache available again',
    ]);
  });

  it('skips a store that just failed for a while instead of waiting on it again', async () => {
    const { cache, load, store, advance, pageKeys } = setUp();
    store.isFailing = true;
    await cache.getOrLoad('query', load);
    store.isFailing = false;
    await cache.getOrLoad('query', load);
    expect(await pageKeys()).toHaveLength(0);
    advance(5000);
    await cache.getOrLoad('query', load);
    expect(await pageKeys()).toHaveLength(1);
  });

  it('bypasses a store that is not connected', async () => {
    const { cache, load, loads, store, messages } = setUp();
    store.statusOverride = 'reconnecting';
    await cache.getOrLoad('query', load);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(messages()).toHaveLength(1);
  });
});

describe('createDoctorSearchCache metrics', () => {
  it('counts nothing before the first search', async () => {
    const { counts } = setUp();
    expect(await counts()).toEqual(countsWith({}));
  });

  it('counts a miss, then a hit from process memory, then one from Redis once memory has aged out', async () => {
    const { cache, load, counts, advance } = setUp();
    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(countsWith({ misses: 1 }));

    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(countsWith({ misses: 1, 'hits{layer="process"}': 1 }));

    advance(1001);
    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(
      countsWith({ misses: 1, 'hits{layer="process"}': 1, 'hits{layer="redis"}': 1 }),
    );
  });

  it('counts a page another process stored as a Redis hit', async () => {
    const { cache, createCache, load, loads, counts } = setUp();
    await createCache(new BreakableStore(otherRedis)).getOrLoad('query', load);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(1);
    expect(await counts()).toEqual(countsWith({ 'hits{layer="redis"}': 1 }));
  });

  it('counts searches that waited for a concurrent load of their page as coalesced, not as misses', async () => {
    const { cache, store, counts } = setUp();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const load = async (): Promise<DoctorSearchPage> => {
      await gate;
      return { items: [], nextCursor: null };
    };
    const searches = Array.from({ length: 5 }, () => cache.getOrLoad('query', load));
    await vi.waitFor(() => expect(store.readsAnswered).toBe(6));
    release();
    await Promise.all(searches);
    expect(await counts()).toEqual(countsWith({ misses: 1, coalesced: 4 }));
  });

  it('counts one published invalidation for any number of marks, and the miss after it', async () => {
    const { cache, load, counts } = setUp();
    await cache.getOrLoad('query', load);
    await Promise.all([cache.invalidate(), cache.invalidate(), cache.invalidate()]);
    expect(await counts()).toEqual(countsWith({ misses: 1 }));

    expect(await cache.publishInvalidation()).toBe(true);
    expect(await cache.publishInvalidation()).toBe(false);
    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(countsWith({ misses: 2, invalidations_published: 1 }));
  });

  it('leaves a bump another process published to that process', async () => {
    const { cache, createCache, counts } = setUp();
    const other = createCache(new BreakableStore(otherRedis));
    await cache.invalidate();
    expect(await other.publishInvalidation()).toBe(true);
    expect(await cache.publishInvalidation()).toBe(false);
    expect(await counts()).toEqual(countsWith({}));
  });

  it('counts bypasses by reason when the store fails, backs off, then is disconnected', async () => {
    const { cache, store, load, loads, counts, advance } = setUp();
    store.isFailing = true;
    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(countsWith({ 'bypasses{reason="failed"}': 1 }));

    // Within the back-off the store is not asked, even though it would answer now.
    store.isFailing = false;
    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(
      countsWith({ 'bypasses{reason="failed"}': 1, 'bypasses{reason="backing_off"}': 1 }),
    );

    advance(5000);
    store.statusOverride = 'reconnecting';
    await cache.getOrLoad('query', load);
    expect(await counts()).toEqual(
      countsWith({
        'bypasses{reason="failed"}': 1,
        'bypasses{reason="backing_off"}': 1,
        'bypasses{reason="disconnected"}': 1,
      }),
    );
    expect(loads()).toBe(3);
  });
});

describe('NO_DOCTOR_SEARCH_CACHE', () => {
  it('always loads and has nothing to invalidate or publish', async () => {
    const { load, loads } = setUp();
    NO_DOCTOR_SEARCH_CACHE.start();
    await NO_DOCTOR_SEARCH_CACHE.getOrLoad('query', load);
    await NO_DOCTOR_SEARCH_CACHE.getOrLoad('query', load);
    await NO_DOCTOR_SEARCH_CACHE.invalidate();
    expect(await NO_DOCTOR_SEARCH_CACHE.publishInvalidation()).toBe(false);
    await NO_DOCTOR_SEARCH_CACHE.stop();
    expect(loads()).toBe(2);
  });
});
