import type { KeelApp } from '@keel/platform/http';
import { closeRedisClient, createRedisClient, waitForRedisReady } from '@keel/platform/redis';
import type { TelemedicineDependencies } from '../composition-root.ts';
import {
  createDoctorSearchCache,
  type DoctorSearchCache,
  NO_DOCTOR_SEARCH_CACHE,
} from './doctor-search.cache.ts';
import { createDoctorSearchCacheMetrics } from './doctor-search.metrics.ts';
import { registerDoctorSearchRoutes } from './doctor-search.routes.ts';
import { createDoctorSearchService } from './doctor-search.service.ts';
import { createDoctorListingChangedSubscription } from './on-doctor-listing-changed.handler.ts';

// Startup waits this long for the cache's connection; a Redis that is down
// only costs the cache, so the app starts anyway.
const REDIS_READY_TIMEOUT_MS = 2000;

/** Doctor search (`searchDoctors`), its Redis page cache and the cache's invalidation subscriber. */
export function wireSearch(app: KeelApp, deps: TelemedicineDependencies): void {
  const cache = searchCacheOf(app, deps);
  // Subscribed even without a cache (the handler is then a no-op): the set
  // of subscribers must not depend on configuration, or turning the cache
  // off would leave a registered subscriber whose deliveries pile up.
  deps.background.subscribe(createDoctorListingChangedSubscription(cache));
  registerDoctorSearchRoutes(app, createDoctorSearchService({ db: deps.db, clock: deps.clock, cache }));
}

function searchCacheOf(app: KeelApp, deps: TelemedicineDependencies): DoctorSearchCache {
  const url = deps.config.REDIS_URL;
  const ttlSeconds = deps.settings.searchCacheTtlSeconds;
  // No Redis, no cache: an in-process cache cannot be invalidated across
  // processes (an event is handled by one process, the others would keep
  // serving their stale pages), and search is cheap enough without it.
  if (url === undefined || ttlSeconds === 0) return NO_DOCTOR_SEARCH_CACHE;
  const logger = deps.logger.child({ component: 'telemedicine.search-cache' });
  const redis = createRedisClient({ url, logger, name: 'telemedicine-search' });
  const cache = createDoctorSearchCache({
    store: redis,
    ttlSeconds,
    coalesceMs: deps.settings.searchCacheCoalesceMs,
    logger,
    clock: deps.clock,
    // Only with a cache: a process without one exports no cache series rather than zeros that look like a cold cache.
    metrics: createDoctorSearchCacheMetrics(deps.metrics),
  });
  app.addHook('onReady', async () => {
    // Not fatal: the client logs the failed connection, and searches skip the cache until it is up.
    await waitForRedisReady(redis, { timeoutMs: REDIS_READY_TIMEOUT_MS }).catch(() => undefined);
    // Every process publishes: the publish script lets exactly one bump per marked invalidation.
    cache.start();
  });
  // One hook, so the publisher is stopped before its connection closes.
  app.addHook('onClose', async () => {
    await cache.stop();
    await closeRedisClient(redis);
  });
  return cache;
}
