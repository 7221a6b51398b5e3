import { Writable } from 'node:stream';
import { isAppError } from '@keel/platform/errors';
import { createLogger } from '@keel/platform/observability';
import { describe, expect, it } from 'vitest';
import {
  createDoctorSearchCache,
  NO_DOCTOR_SEARCH_CACHE,
  SEARCH_CACHE_GENERATION_KEY,
  type SearchCacheStore,
} from './doctor-search.cache.ts';
import type { DoctorSearchPage } from './doctor-search.ts';

/** An in-memory stand-in for Redis that can be broken on demand. */
class FakeStore implements SearchCacheStore {
  status = 'ready';
  isFailing = false;
  readonly values = new Map<string, string>();
  readonly expirySeconds = new Map<string, number>();

  async get(key: string): Promise<string | null> {
    this.failIfBroken();
    return this.values.get(key) ?? null;
  }

  async set(key: string, value: string, _mode: 'EX', seconds: number): Promise<unknown> {
    this.failIfBroken();
    this.values.set(key, value);
    this.expirySeconds.set(key, seconds);
    return 'OK';
  }

  async incr(key: string): Promise<number> {
    this.failIfBroken();
    const next = Number(this.values.get(key) ?? '0') + 1;
    this.values.set(key, String(next));
    return next;
  }

  private failIfBroken(): void {
    if (this.isFailing) throw Object.assign(new Error('Command timed out'), { code: 'ETIMEDOUT' });
  }
}

function setUp(ttlSeconds = 30) {
  const store = new FakeStore();
  const lines: { level: string; msg: string }[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(JSON.parse(String(chunk)));
      callback();
    },
  });
  let nowMs = Date.parse('2030-01-01T00:00:00Z');
  const clock = { now: () => new Date(nowMs) };
  const cache = createDoctorSearchCache({
    store,
    ttlSeconds,
    logger: createLogger({ level: 'info', destination }),
    clock,
  });
  let loads = 0;
  const load = async (): Promise<DoctorSearchPage> => {
    loads += 1;
    return { items: [], nextCursor: `page-${loads}` };
  };
  return {
    store,
    cache,
    load,
    loads: () => loads,
    lines,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

describe('createDoctorSearchCache', () => {
  it('answers a repeated search from the store, with the TTL', async () => {
    const { cache, load, loads, store } = setUp(45);
    const first = await cache.getOrLoad('query', load);
    const second = await cache.getOrLoad('query', load);
    expect(second).toEqual(first);
    expect(loads()).toBe(1);
    const [pageKey] = [...store.expirySeconds.keys()];
    expect(pageKey).toMatch(/^telemedicine:search:v1:0:[0-9a-f]{64}$/);
    expect(store.expirySeconds.get(pageKey ?? '')).toBe(45);
  });

  it('keeps different searches apart', async () => {
    const { cache, load, loads } = setUp();
    await cache.getOrLoad('one', load);
    await cache.getOrLoad('two', load);
    expect(loads()).toBe(2);
  });

  it('loads again after an invalidation, under the next generation', async () => {
    const { cache, load, loads, store } = setUp();
    await cache.getOrLoad('query', load);
    await cache.invalidate();
    const page = await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(page.nextCursor).toBe('page-2');
    expect(store.values.get(SEARCH_CACHE_GENERATION_KEY)).toBe('1');
    expect(
      [...store.values.keys()].filter((key) => key.startsWith('telemedicine:search:v1:1:')),
    ).toHaveLength(1);
  });

  it('treats an unreadable cached value as a miss', async () => {
    const { cache, load, loads, store } = setUp();
    await cache.getOrLoad('query', load);
    for (const key of store.values.keys()) store.values.set(key, '{"not":"a page"}');
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
  });

  it('falls back to the database when the store fails, logging once per outage', async () => {
    const { cache, load, loads, store, lines, advance } = setUp();
    store.isFailing = true;
    await cache.getOrLoad('query', load);
    advance(10_000);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);

    store.isFailing = false;
    advance(10_000);
    await cache.getOrLoad('query', load);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(3);
    expect(lines.map((line) => line.msg)).toEqual([
      'search cache unavailable; searching the database',
      'search cache available again',
    ]);
  });

  it('skips a store that just failed for a while instead of waiting on it again', async () => {
    const { cache, load, store, advance } = setUp();
    store.isFailing = true;
    await cache.getOrLoad('query', load);
    store.isFailing = false;
    await cache.getOrLoad('query', load);
    expect(store.values.size).toBe(0);
    advance(5000);
    await cache.getOrLoad('query', load);
    expect(store.values.size).toBe(1);
  });

  it('bypasses a store that is not connected', async () => {
    const { cache, load, loads, store, lines } = setUp();
    store.status = 'reconnecting';
    await cache.getOrLoad('query', load);
    await cache.getOrLoad('query', load);
    expect(loads()).toBe(2);
    expect(lines).toHaveLength(1);
  });

  it('rejects an invalidation it could not make with kind unavailable, so the event is retried', async () => {
    const { cache, store } = setUp();
    store.isFailing = true;
    const error = await cache.invalidate().catch((caught: unknown) => caught);
    expect(isAppError(error) && error.kind).toBe('unavailable');
    expect(isAppError(error) && error.code).toBe('telemedicine.search_cache_unavailable');
  });
});

describe('NO_DOCTOR_SEARCH_CACHE', () => {
  it('always loads and has nothing to invalidate', async () => {
    const { load, loads } = setUp();
    await NO_DOCTOR_SEARCH_CACHE.getOrLoad('query', load);
    await NO_DOCTOR_SEARCH_CACHE.getOrLoad('query', load);
    await NO_DOCTOR_SEARCH_CACHE.invalidate();
    expect(loads()).toBe(2);
  });
});
