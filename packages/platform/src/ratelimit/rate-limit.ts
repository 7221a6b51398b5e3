import { createHash } from 'node:crypto';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PlatformConfig } from '../config/index.ts';
import type { KeelApp } from '../http/index.ts';
import type { RedisClient } from '../redis/index.ts';
import {
  type RateLimitSnapshot,
  rateLimitExceeded,
  rateLimitHeaders,
  rateLimitUnavailable,
} from './rate-limit.errors.ts';

export type RateLimitPolicy = 'default' | 'auth';

export type RateLimitSettings = {
  isEnabled: boolean;
  /** The `default` policy: `defaultMax` requests per caller per `windowSeconds`. */
  windowSeconds: number;
  defaultMax: number;
  /** The `auth` policy: per route, `authPerIpMax` per client IP and `authPerAccountMax` per account. */
  authWindowSeconds: number;
  authPerIpMax: number;
  authPerAccountMax: number;
};

/**
 * A hook that counts the request against one limit and throws 429
 * `rate_limit.exceeded` past it. Fits `onRequest`, `preValidation` and
 * `preHandler`.
 */
export type RateLimitHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export type RateLimiters = {
  /**
   * Limits the `auth` policy per client IP, with a counter per `name` (the
   * same name shares one counter). Needs no body: use it as an `onRequest`
   * hook so a throttled request is refused before its body is read.
   */
  perIp(name: string): RateLimitHook;
  /**
   * Limits the `auth` policy per account: `key` names it (an email, the
   * account of an MFA challenge), normalised (trimmed, NFC, lower case) and
   * SHA-256 hashed before it becomes a store key. Requests for which `key`
   * answers `undefined` are not counted. Use it as a `preValidation` hook
   * (the body is parsed but not yet validated, so `key` must check its
   * shape): an invalid body still counts, and it runs before the platform's
   * `preHandler` hooks (an idempotency claim must not store a 429).
   */
  perAccount(name: string, key: (request: FastifyRequest) => string | undefined): RateLimitHook;
};

export type RateLimitingOptions = {
  settings: RateLimitSettings;
  /** Shared store for every instance; without it each process counts alone (in memory). */
  redis?: RedisClient;
  /** Prefix of every Redis key; tests pass their own. */
  nameSpace?: string;
};

const DEFAULT_NAME_SPACE = 'keel-rl:';
// Probes and scrapers must never be throttled: a throttled liveness probe
// restarts a healthy pod, and the docs are static.
const EXEMPT_PREFIXES = ['/health/', '/docs'];
const EXEMPT_URLS = new Set(['/metrics', '/openapi.json']);
const LIMITER_NAME = /^[a-z0-9_.-]{1,64}$/;
// The in-memory store is an LRU: past this many callers the least recent lose their count.
const MEMORY_STORE_MAX_KEYS = 10_000;

/**
 * Maps the `RATE_LIMIT_*` variables to settings.
 *
 * @example
 * const settings = rateLimitSettingsFrom(config);
 */
export function rateLimitSettingsFrom(config: PlatformConfig): RateLimitSettings {
  return {
    isEnabled: config.RATE_LIMIT_ENABLED,
    windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
    defaultMax: config.RATE_LIMIT_DEFAULT_MAX,
    authWindowSeconds: config.RATE_LIMIT_AUTH_WINDOW_SECONDS,
    authPerIpMax: config.RATE_LIMIT_AUTH_PER_IP_MAX,
    authPerAccountMax: config.RATE_LIMIT_AUTH_PER_ACCOUNT_MAX,
  };
}

/**
 * Installs the `default` policy on every route registered from now on (so
 * call it before registering service modules), keyed by the authenticated
 * principal (`user:<id>`, `api_key:<id>`) or else the client IP, and returns
 * the `auth` policy's per-IP and per-account hooks. Counters live in Redis
 * when `redis` is given. Health, metrics and docs routes are never limited.
 * With `isEnabled: false` nothing is installed and the hooks do nothing.
 *
 * Failures of the store: the `default` policy lets the request through (an
 * outage of Redis must not take the API down; the Redis client logs it), the
 * `auth` policy refuses with 503 `rate_limit.unavailable` (fail closed).
 *
 * @example
 * const limiters = await installRateLimiting(app, { settings: rateLimitSettingsFrom(config), redis });
 * app.post('/auth/login', {
 *   config: { access: 'public' },
 *   onRequest: [limiters.perIp('login')],
 *   preValidation: [limiters.perAccount('login', (request) => emailOf(request.body))],
 * }, login);
 */
export async function installRateLimiting(app: KeelApp, options: RateLimitingOptions): Promise<RateLimiters> {
  const { settings } = options;
  if (!settings.isEnabled) return { perIp: () => allowRequest, perAccount: () => allowRequest };

  // The plugin stores and counts; Keel's own hooks apply every limit (see
  // `enforce`). The plugin's global hook would not do: it overwrites the
  // RateLimit headers other limits set, and its `app.rateLimit()` hooks skip
  // any request another limiter of the plugin already counted.
  await app.register(rateLimit, {
    global: false,
    // These are the `default` policy's, read by `app.createRateLimit()` below.
    max: settings.defaultMax,
    timeWindow: settings.windowSeconds * 1000,
    keyGenerator: (request) =>
      request.principal === undefined
        ? `default:ip:${normalizeIP(request.ip)}`
        : `default:${request.principal.kind}:${request.principal.id}`,
    skipOnError: false,
    // Only for routes that opt into the plugin directly with `config.rateLimit`:
    // the plugin throws what this returns, and Keel's error handler renders it.
    hook: 'onRequest',
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      rateLimitExceeded({ limit: context.max, remaining: 0, resetSeconds: toResetSeconds(context.ttl) }),
    nameSpace: options.nameSpace ?? DEFAULT_NAME_SPACE,
    cache: MEMORY_STORE_MAX_KEYS,
    ...(options.redis === undefined ? {} : { redis: options.redis }),
  });

  const checkDefault = app.createRateLimit();
  const limitByCaller: RateLimitHook = async (request, reply) => {
    let result: LimitResult;
    try {
      result = await checkDefault(request);
    } catch (error) {
      // Fail open: a Redis outage must not take the whole API down. The Redis
      // client logs the outage once; a line per request would drown it.
      request.log.debug({ err: { message: (error as Error).message } }, 'rate limit could not be checked');
      return;
    }
    enforce(result, reply);
  };
  // A route-level onRequest hook, first among the route's own: Fastify runs
  // route-level hooks after every app-level hook of the same kind, so after
  // the access hook has set `request.principal`, yet before the body is read
  // and before app-level preHandler hooks (an idempotency claim would store a
  // 429 as the key's response). Probes are left alone at registration, so
  // nothing runs for them per request.
  app.addHook('onRoute', (route) => {
    if (isExemptUrl(route.url)) return;
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [limitByCaller, ...own];
  });

  // One counter per (kind, name): in memory each `createRateLimit` owns its
  // store, so a second call with the same name must reuse the first's check.
  // Not `app.rateLimit()`: its hook returns early once any limiter of the
  // plugin ran for the request, so after the default policy it never counts.
  const checks = new Map<string, LimitCheck>();
  const checkFor = (kind: 'ip' | 'account', name: string, keyOf: (request: FastifyRequest) => string) => {
    if (!LIMITER_NAME.test(name)) throw new Error(`Rate limiter name must match ${LIMITER_NAME.source}`);
    const id = `${kind}:${name}`;
    const existing = checks.get(id);
    if (existing !== undefined) return existing;
    const check = app.createRateLimit({
      max: kind === 'ip' ? settings.authPerIpMax : settings.authPerAccountMax,
      timeWindow: settings.authWindowSeconds * 1000,
      keyGenerator: (request) => `auth:${name}:${kind}:${keyOf(request)}`,
      skipOnError: false,
    });
    checks.set(id, check);
    return check;
  };
  // The account key a perAccount hook computed, handed to its key generator.
  const accountKeys = new WeakMap<FastifyRequest, Map<string, string>>();

  return {
    perIp: (name) => {
      const check = checkFor('ip', name, (request) => normalizeIP(request.ip));
      return async (request, reply) => enforce(await checkOrFail(check, request), reply);
    },
    perAccount: (name, key) => {
      const check = checkFor('account', name, (request) => accountKeys.get(request)?.get(name) ?? '');
      return async (request, reply) => {
        const account = key(request);
        if (account === undefined) return;
        const keys = accountKeys.get(request) ?? new Map<string, string>();
        keys.set(name, hashAccountKey(account));
        accountKeys.set(request, keys);
        enforce(await checkOrFail(check, request), reply);
      };
    },
  };
}

type LimitCheck = ReturnType<KeelApp['createRateLimit']>;
type LimitResult = Awaited<ReturnType<LimitCheck>>;

async function allowRequest(): Promise<void> {}

async function checkOrFail(check: LimitCheck, request: FastifyRequest): Promise<LimitResult> {
  try {
    return await check(request);
  } catch (error) {
    // Message only: store errors can carry the command and its keys.
    request.log.warn({ err: { message: (error as Error).message } }, 'auth rate limit could not be checked');
    throw rateLimitUnavailable();
  }
}

function enforce(result: LimitResult, reply: FastifyReply): void {
  if (result.isAllowed) return;
  const snapshot: RateLimitSnapshot = {
    limit: result.max,
    remaining: result.remaining,
    resetSeconds: toResetSeconds(result.ttl),
  };
  if (result.isExceeded) throw rateLimitExceeded({ ...snapshot, remaining: 0 });
  // Several limits apply to one request; the headers describe the one
  // closest to running out, as the RateLimit header draft asks.
  const shown = Number(reply.getHeader('ratelimit-remaining'));
  if (Number.isNaN(shown) || snapshot.remaining < shown) reply.headers(rateLimitHeaders(snapshot));
}

function toResetSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

// Account keys are often emails: a digest keeps them out of Redis keys and
// MONITOR output. Case and whitespace variants must share one counter.
function hashAccountKey(key: string): string {
  return createHash('sha256').update(key.trim().normalize('NFC').toLowerCase()).digest('hex');
}

function isExemptUrl(url: string): boolean {
  return EXEMPT_URLS.has(url) || EXEMPT_PREFIXES.some((prefix) => url.startsWith(prefix));
}
