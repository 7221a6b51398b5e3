import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../module/index.ts';
import { createLogger } from '../../observability/index.ts';
import {
  closeRedisClient,
  createRedisClient,
  type RedisClient,
  waitForRedisReady,
} from '../../redis/index.ts';
import { captureLogs } from '../../testing/test-app.ts';
import { createMemoryTtlCache, createRedisTtlCache } from './session-state-cache.ts';

type SessionState = { accountId: string; isRevoked: boolean };

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Port 1 refuses connections at once: a Redis that is down, deterministically.
const DEAD_REDIS_URL = 'redis://127.0.0.1:1';

function buildState(overrides: Partial<SessionState> = {}): SessionState {
  return { accountId: randomUUID(), isRevoked: false, ...overrides };
}

/** A clock tests move by hand. */
function createManualClock(): Clock & { advance(ms: number): void } {
  let now = Date.parse('2026-01-01T00:00:00Z');
  return {
    now: () => new Date(now),
    advance(ms) {
      now += ms;
    },
  };
}

describe('createMemoryTtlCache', () => {
  it('returns what was set until the TTL passes', async () => {
    const clock = createManualClock();
    const cache = createMemoryTtlCache<SessionState>({ maxEntries: 10, clock });
    const state = buildState();
    await cache.set('session-1', state, 5000);

    clock.advance(4999);
    expect(await cache.get('session-1')).toEqual(state);
    clock.advance(2);
    expect(await cache.get('session-1')).toBeUndefined();
  });

  it('returns undefined for a key that was never set', async () => {
    const cache = createMemoryTtlCache<SessionState>({ maxEntries: 10 });
    expect(await cache.get('missing')).toBeUndefined();
  });

  it('forgets deleted keys and keeps the others', async () => {
    const cache = createMemoryTtlCache<SessionState>({ maxEntries: 10, clock: createManualClock() });
    const kept = buildState();
    await cache.set('a', buildState(), 5000);
    await cache.set('b', buildState(), 5000);
    await cache.set('c', kept, 5000);

    await cache.delete(['a', 'b', 'never-set']);

    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('c')).toEqual(kept);
  });

  it('evicts the least recently used entry when it holds maxEntries', async () => {
    const cache = createMemoryTtlCache<SessionState>({ maxEntries: 2, clock: createManualClock() });
    await cache.set('old', buildState(), 5000);
    await cache.set('recent', buildState(), 5000);
    await cache.get('old');
    await cache.set('new', buildState(), 5000);

    expect(await cache.get('recent')).toBeUndefined();
    expect(await cache.get('old')).toBeDefined();
    expect(await cache.get('new')).toBeDefined();
  });

  it('stores nothing when the TTL is 0 (caching disabled)', async () => {
    const clock = createManualClock();
    const cache = createMemoryTtlCache<SessionState>({ maxEntries: 10, clock });
    await cache.set('session-1', buildState(), 0);
    expect(await cache.get('session-1')).toBeUndefined();
  });
});

describe('createRedisTtlCache', () => {
  const openClients: RedisClient[] = [];

  afterEach(async () => {
    await Promise.all(openClients.splice(0).map((client) => closeRedisClient(client)));
  });

  async function openCache(options: { prefix: string; url?: string; isReady?: boolean }) {
    const { stream, logs } = captureLogs();
    const logger = createLogger({ level: 'debug', destination: stream });
    const redis = createRedisClient({ url: options.url ?? REDIS_URL, logger, name: 'keel-test' });
    openClients.push(redis);
    if (options.isReady !== false) await waitForRedisReady(redis, { timeoutMs: 5000 });
    return {
      cache: createRedisTtlCache<SessionState>({ redis, prefix: options.prefix, logger }),
      redis,
      logs,
    };
  }

  function uniquePrefix(): string {
    return `keel-test:session-state:${randomUUID()}:`;
  }

  it('shares entries and deletions between two instances', async () => {
    const prefix = uniquePrefix();
    const first = await openCache({ prefix });
    const second = await openCache({ prefix });
    const state = buildState();

    await first.cache.set('session-1', state, 60_000);
    expect(await second.cache.get('session-1')).toEqual(state);

    await second.cache.delete(['session-1']);
    expect(await first.cache.get('session-1')).toBeUndefined();
  });

  it('keeps instances with different prefixes apart', async () => {
    const first = await openCache({ prefix: uniquePrefix() });
    const second = await openCache({ prefix: uniquePrefix() });
    await first.cache.set('session-1', buildState(), 60_000);
    expect(await second.cache.get('session-1')).toBeUndefined();
  });

  it('stores entries under the prefix with a PX expiry no longer than the TTL', async () => {
    const prefix = uniquePrefix();
    const { cache, redis } = await openCache({ prefix });
    await cache.set('session-1', buildState(), 60_000);
    const remainingMs = await redis.pttl(`${prefix}session-1`);
    expect(remainingMs).toBeGreaterThan(0);
    expect(remainingMs).toBeLessThanOrEqual(60_000);
  });

  it('stops returning an entry once Redis expires it', async () => {
    const { cache } = await openCache({ prefix: uniquePrefix() });
    await cache.set('session-1', buildState(), 20);
    await vi.waitFor(async () => expect(await cache.get('session-1')).toBeUndefined(), {
      timeout: 2000,
      interval: 10,
    });
  });

  it('stores nothing when the TTL is 0 (caching disabled)', async () => {
    const prefix = uniquePrefix();
    const { cache, redis } = await openCache({ prefix });
    await cache.set('session-1', buildState(), 0);
    expect(await redis.exists(`${prefix}session-1`)).toBe(0);
  });

  it('treats an entry that is not JSON as a miss', async () => {
    const prefix = uniquePrefix();
    const { cache, redis } = await openCache({ prefix });
    await redis.set(`${prefix}session-1`, '{not json', 'PX', 60_000);
    expect(await cache.get('session-1')).toBeUndefined();
  });

  it('answers undefined instead of throwing when Redis is down, so callers read the database', async () => {
    const { cache, redis } = await openCache({ prefix: uniquePrefix(), url: DEAD_REDIS_URL, isReady: false });
    await new Promise<void>((resolve) => redis.once('error', () => resolve()));

    await expect(cache.get('session-1')).resolves.toBeUndefined();
    await expect(cache.set('session-1', buildState(), 5000)).resolves.toBeUndefined();
  });

  it('logs a delete that Redis could not apply and does not throw', async () => {
    const { cache, redis, logs } = await openCache({
      prefix: uniquePrefix(),
      url: DEAD_REDIS_URL,
      isReady: false,
    });
    await new Promise<void>((resolve) => redis.once('error', () => resolve()));

    await expect(cache.delete(['session-1', 'session-2'])).resolves.toBeUndefined();
    expect(logs.lines()).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'ttl cache delete failed; entries expire on their TTL',
        count: 2,
      }),
    );
  });
});
