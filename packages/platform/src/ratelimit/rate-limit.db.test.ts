import { randomUUID } from 'node:crypto';
import type { FastifyRequest, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, PlatformConfigSchema } from '../config/index.ts';
import type { Authenticator, Principal } from '../http/access.ts';
import { createHttpApp, type KeelApp } from '../http/app.ts';
import { registerPlatformRoutes } from '../http/platform-routes.ts';
import { createLogger, createMetrics } from '../observability/index.ts';
import { closeRedisClient, createRedisClient, type RedisClient, waitForRedisReady } from '../redis/index.ts';
import { captureLogs } from '../testing/test-app.ts';
import {
  installRateLimiting,
  type RateLimiters,
  type RateLimitSettings,
  rateLimitSettingsFrom,
} from './rate-limit.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Port 1 refuses connections at once: a Redis that is down, deterministically.
const DEAD_REDIS_URL = 'redis://127.0.0.1:1';

const openApps: KeelApp[] = [];
const openClients: RedisClient[] = [];

afterEach(async () => {
  await Promise.all(openApps.splice(0).map((app) => app.close()));
  await Promise.all(openClients.splice(0).map((client) => closeRedisClient(client)));
});

function buildSettings(overrides: Partial<RateLimitSettings> = {}): RateLimitSettings {
  return {
    isEnabled: true,
    windowSeconds: 60,
    defaultMax: 100,
    authWindowSeconds: 900,
    authPerIpMax: 100,
    authPerAccountMax: 100,
    ...overrides,
  };
}

function principal(id: string): Principal {
  return { id, kind: 'user', permissions: new Set(), roles: [], isMfaAuthenticated: false };
}

/** `Authorization: Bearer <id>` authenticates as user `<id>`. */
const testAuthenticator: Authenticator = async (request) => {
  const token = request.headers.authorization?.replace(/^Bearer /, '');
  return token ? principal(token) : undefined;
};

function emailOf(request: FastifyRequest): string | undefined {
  const body = request.body as { email?: unknown } | undefined;
  return typeof body?.email === 'string' ? body.email : undefined;
}

function uniqueNameSpace(): string {
  return `keel-test:rl:${randomUUID()}:`;
}

async function openRedis(url = REDIS_URL, options: { isReady?: boolean } = {}): Promise<RedisClient> {
  const { stream } = captureLogs();
  const redis = createRedisClient({
    url,
    logger: createLogger({ level: 'info', destination: stream }),
    name: 'keel-test',
  });
  openClients.push(redis);
  if (options.isReady !== false) await waitForRedisReady(redis, { timeoutMs: 5000 });
  return redis;
}

async function buildApp(
  options: {
    settings?: Partial<RateLimitSettings>;
    redis?: RedisClient;
    nameSpace?: string;
    register?: (app: KeelApp, limiters: RateLimiters) => void;
  } = {},
): Promise<KeelApp> {
  const { stream } = captureLogs();
  const metrics = createMetrics({ collectProcessMetrics: false });
  const app = await createHttpApp({
    logger: createLogger({ level: 'info', destination: stream }),
    metrics,
    bodyLimitBytes: 2048,
    corsOrigins: [],
    trustProxy: false,
    tracing: false,
    authenticate: testAuthenticator,
    openapi: { title: 'Rate limit test', version: '0.0.0-test', description: '' },
  });
  openApps.push(app);
  const limiters = await installRateLimiting(app, {
    settings: buildSettings(options.settings),
    ...(options.redis === undefined ? {} : { redis: options.redis }),
    nameSpace: options.nameSpace ?? uniqueNameSpace(),
  });
  // Registered after the limiter, like build-app does: the exemption must hold anyway.
  registerPlatformRoutes(app, { metrics, readinessChecks: {} });
  app.get('/things', { config: { access: 'public' } }, async () => ({ ok: true }));
  app.get('/me', { config: { access: 'authenticated' } }, async (request) => ({ id: request.principal?.id }));
  options.register?.(app, limiters);
  await app.ready();
  return app;
}

/** A sign-in route limited the way the README recommends: per IP before the body, per account after parsing. */
function registerLogin(app: KeelApp, limiters: RateLimiters): void {
  app.post(
    '/login',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('login')],
      preValidation: [limiters.perAccount('login', emailOf)],
    },
    async () => ({ ok: true }),
  );
}

async function send(app: KeelApp, times: number, request: InjectOptions) {
  const statuses: number[] = [];
  for (let index = 0; index < times; index += 1) statuses.push((await app.inject(request)).statusCode);
  return statuses;
}

function login(email: string | undefined, remoteAddress = '127.0.0.1') {
  return {
    method: 'POST' as const,
    url: '/login',
    remoteAddress,
    payload: email === undefined ? {} : { email },
  };
}

describe('default policy', () => {
  it('answers the request past the limit with 429 rate_limit.exceeded as problem+json with Retry-After and RateLimit headers', async () => {
    const app = await buildApp({ settings: { defaultMax: 3, windowSeconds: 60 } });
    expect(await send(app, 3, { method: 'GET', url: '/things' })).toEqual([200, 200, 200]);

    const response = await app.inject({ method: 'GET', url: '/things' });

    expect(response.statusCode).toBe(429);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ status: 429, code: 'rate_limit.exceeded', instance: '/things' });
    const retryAfter = Number(response.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(response.headers['ratelimit-limit']).toBe('3');
    expect(response.headers['ratelimit-remaining']).toBe('0');
    expect(response.headers['ratelimit-reset']).toBe(String(retryAfter));
  });

  it('reports the remaining allowance on responses within the limit', async () => {
    const app = await buildApp({ settings: { defaultMax: 3 } });
    const first = await app.inject({ method: 'GET', url: '/things' });
    const second = await app.inject({ method: 'GET', url: '/things' });
    expect(first.headers['ratelimit-limit']).toBe('3');
    expect(first.headers['ratelimit-remaining']).toBe('2');
    expect(second.headers['ratelimit-remaining']).toBe('1');
  });

  it('counts an authenticated caller by principal so two users from one IP do not share a counter', async () => {
    const app = await buildApp({ settings: { defaultMax: 2 } });
    const asAda = { method: 'GET' as const, url: '/me', headers: { authorization: 'Bearer ada' } };
    const asBob = { method: 'GET' as const, url: '/me', headers: { authorization: 'Bearer bob' } };

    expect(await send(app, 3, asAda)).toEqual([200, 200, 429]);
    expect(await send(app, 2, asBob)).toEqual([200, 200]);
    // The anonymous caller on the same IP has its own counter too.
    expect(await send(app, 2, { method: 'GET', url: '/things' })).toEqual([200, 200]);
  });

  it('counts anonymous callers by IP', async () => {
    const app = await buildApp({ settings: { defaultMax: 1 } });
    expect(await send(app, 2, { method: 'GET', url: '/things', remoteAddress: '10.0.0.1' })).toEqual([
      200, 429,
    ]);
    expect(await send(app, 1, { method: 'GET', url: '/things', remoteAddress: '10.0.0.2' })).toEqual([200]);
  });

  it('counts requests with malformed bodies and refuses before reading the body', async () => {
    const app = await buildApp({ settings: { defaultMax: 2 }, register: registerLogin });
    const malformed = {
      method: 'POST' as const,
      url: '/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"email":',
    };
    expect(await send(app, 3, malformed)).toEqual([400, 400, 429]);
  });

  it('counts a HEAD request once', async () => {
    const app = await buildApp({ settings: { defaultMax: 2 } });
    expect(await send(app, 3, { method: 'HEAD', url: '/things' })).toEqual([200, 200, 429]);
  });

  it('never limits health, metrics and docs routes', async () => {
    const app = await buildApp({ settings: { defaultMax: 1 } });
    for (const url of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
      const responses = await Promise.all(
        Array.from({ length: 3 }, () => app.inject({ method: 'GET', url })),
      );
      expect(responses.map((response) => response.statusCode)).toEqual([200, 200, 200]);
      expect(responses[0]?.headers['ratelimit-limit']).toBeUndefined();
    }
    // The same app does limit an ordinary route.
    expect(await send(app, 2, { method: 'GET', url: '/things' })).toEqual([200, 429]);
  });
});

describe('auth policy', () => {
  it('refuses an account past its limit while other accounts from the same IP go on', async () => {
    const app = await buildApp({ settings: { authPerAccountMax: 2 }, register: registerLogin });

    expect(await send(app, 3, login('ada@example.com'))).toEqual([200, 200, 429]);
    const refused = await app.inject(login('ada@example.com'));
    expect(refused.json()).toMatchObject({ status: 429, code: 'rate_limit.exceeded' });
    expect(refused.headers['ratelimit-limit']).toBe('2');
    expect(refused.headers['retry-after']).toBeDefined();
    expect(await send(app, 1, login('bob@example.com'))).toEqual([200]);
  });

  it('counts case and whitespace variants of an account key as one account', async () => {
    const app = await buildApp({ settings: { authPerAccountMax: 2 }, register: registerLogin });
    await send(app, 2, login('Ada@Example.com'));
    expect(await send(app, 1, login(' ada@example.COM '))).toEqual([429]);
  });

  it('keeps refusing an account from another IP once its limit is reached', async () => {
    const app = await buildApp({ settings: { authPerAccountMax: 1 }, register: registerLogin });
    await send(app, 1, login('ada@example.com', '10.0.0.1'));
    expect(await send(app, 1, login('ada@example.com', '10.0.0.2'))).toEqual([429]);
  });

  it('refuses an IP past its limit whichever accounts it tries', async () => {
    const app = await buildApp({
      settings: { authPerIpMax: 3, authPerAccountMax: 10 },
      register: registerLogin,
    });
    const statuses = [];
    for (const email of ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']) {
      statuses.push((await app.inject(login(email, '10.0.0.1'))).statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(await send(app, 1, login('d@example.com', '10.0.0.2'))).toEqual([200]);
  });

  it('does not count requests whose account key is undefined against any account', async () => {
    const app = await buildApp({ settings: { authPerAccountMax: 1 }, register: registerLogin });
    expect(await send(app, 3, login(undefined))).toEqual([200, 200, 200]);
    expect(await send(app, 2, login('ada@example.com'))).toEqual([200, 429]);
  });

  it('trips per-IP and per-account limits independently when both run as preHandlers after the default policy', async () => {
    const app = await buildApp({
      settings: { defaultMax: 100, authPerIpMax: 3, authPerAccountMax: 1 },
      register: (scope, limiters) =>
        scope.post(
          '/reset',
          {
            config: { access: 'public' },
            preHandler: [limiters.perIp('reset'), limiters.perAccount('reset', emailOf)],
          },
          async () => ({ ok: true }),
        ),
    });
    const reset = (email: string) => ({ method: 'POST' as const, url: '/reset', payload: { email } });

    expect((await app.inject(reset('ada@example.com'))).statusCode).toBe(200);
    expect((await app.inject(reset('ada@example.com'))).statusCode).toBe(429);
    expect((await app.inject(reset('bob@example.com'))).statusCode).toBe(200);
    expect((await app.inject(reset('eve@example.com'))).statusCode).toBe(429);
  });

  it('shares one counter between routes that use the same limiter name', async () => {
    const app = await buildApp({
      settings: { authPerIpMax: 2 },
      register: (scope, limiters) => {
        scope.post(
          '/mfa/verify',
          { config: { access: 'public' }, onRequest: [limiters.perIp('mfa')] },
          async () => ({}),
        );
        scope.post(
          '/mfa/resend',
          { config: { access: 'public' }, onRequest: [limiters.perIp('mfa')] },
          async () => ({}),
        );
      },
    });
    expect(await send(app, 2, { method: 'POST', url: '/mfa/verify', payload: {} })).toEqual([200, 200]);
    expect(await send(app, 1, { method: 'POST', url: '/mfa/resend', payload: {} })).toEqual([429]);
  });

  it('reports the limit closest to running out in the RateLimit headers', async () => {
    const app = await buildApp({
      settings: { defaultMax: 100, authPerIpMax: 5, authPerAccountMax: 50 },
      register: registerLogin,
    });
    // The per-account hook runs last but has the most room left: the per-IP limit is shown.
    const response = await app.inject(login('ada@example.com'));
    expect(response.headers['ratelimit-limit']).toBe('5');
    expect(response.headers['ratelimit-remaining']).toBe('4');
  });

  it('rejects a limiter name that cannot be part of a store key', async () => {
    await expect(buildApp({ register: (_app, limiters) => limiters.perIp('Sign In!') })).rejects.toThrow(
      /name must match/,
    );
  });
});

describe('disabled', () => {
  it('never answers 429 when rate limiting is disabled', async () => {
    const app = await buildApp({
      settings: { isEnabled: false, defaultMax: 1, authPerIpMax: 1, authPerAccountMax: 1 },
      register: registerLogin,
    });
    expect(await send(app, 3, { method: 'GET', url: '/things' })).toEqual([200, 200, 200]);
    expect(await send(app, 3, login('ada@example.com'))).toEqual([200, 200, 200]);
    const response = await app.inject({ method: 'GET', url: '/things' });
    expect(response.headers['ratelimit-limit']).toBeUndefined();
  });
});

describe('Redis store', () => {
  it('shares the default counter between two app instances', async () => {
    const redis = await openRedis();
    const nameSpace = uniqueNameSpace();
    const first = await buildApp({ settings: { defaultMax: 3 }, redis, nameSpace });
    const second = await buildApp({ settings: { defaultMax: 3 }, redis, nameSpace });

    expect(await send(first, 2, { method: 'GET', url: '/things' })).toEqual([200, 200]);
    expect(await send(second, 2, { method: 'GET', url: '/things' })).toEqual([200, 429]);
    expect((await first.inject({ method: 'GET', url: '/things' })).statusCode).toBe(429);
  });

  it('shares auth counters between two app instances', async () => {
    const redis = await openRedis();
    const nameSpace = uniqueNameSpace();
    const settings = { authPerAccountMax: 2 };
    const first = await buildApp({ settings, redis, nameSpace, register: registerLogin });
    const second = await buildApp({ settings, redis, nameSpace, register: registerLogin });

    expect(await send(first, 2, login('ada@example.com'))).toEqual([200, 200]);
    expect(await send(second, 1, login('ada@example.com'))).toEqual([429]);
  });

  it('keeps account keys out of Redis, storing their SHA-256 instead', async () => {
    const redis = await openRedis();
    const nameSpace = uniqueNameSpace();
    const app = await buildApp({ redis, nameSpace, register: registerLogin });
    await app.inject(login('ada@example.com'));

    const keys = await redis.keys(`${nameSpace}*`);
    expect(keys).toContain(`${nameSpace}default:ip:127.0.0.1`);
    expect(keys.some((key) => key.includes('auth:login:account:'))).toBe(true);
    expect(keys.join('\n')).not.toContain('ada@example.com');
  });

  it('lets default-policy requests through while Redis is down', async () => {
    const redis = await openRedis(DEAD_REDIS_URL, { isReady: false });
    await new Promise<void>((resolve) => redis.once('error', () => resolve()));
    const app = await buildApp({ settings: { defaultMax: 1 }, redis });
    expect(await send(app, 3, { method: 'GET', url: '/things' })).toEqual([200, 200, 200]);
  });

  it('refuses auth-policy requests with 503 rate_limit.unavailable while Redis is down', async () => {
    const redis = await openRedis(DEAD_REDIS_URL, { isReady: false });
    await new Promise<void>((resolve) => redis.once('error', () => resolve()));
    const app = await buildApp({ redis, register: registerLogin });
    const response = await app.inject(login('ada@example.com'));
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'rate_limit.unavailable' });
    expect(response.headers['retry-after']).toBeDefined();
  });
});

describe('rateLimitSettingsFrom', () => {
  it('maps the RATE_LIMIT_* variables', () => {
    const config = loadConfig(PlatformConfigSchema, {
      NODE_ENV: 'test',
      RATE_LIMIT_ENABLED: 'false',
      RATE_LIMIT_WINDOW_SECONDS: '30',
      RATE_LIMIT_DEFAULT_MAX: '300',
      RATE_LIMIT_AUTH_WINDOW_SECONDS: '600',
      RATE_LIMIT_AUTH_PER_IP_MAX: '40',
      RATE_LIMIT_AUTH_PER_ACCOUNT_MAX: '7',
    });
    expect(rateLimitSettingsFrom(config)).toEqual({
      isEnabled: false,
      windowSeconds: 30,
      defaultMax: 300,
      authWindowSeconds: 600,
      authPerIpMax: 40,
      authPerAccountMax: 7,
    });
  });
});
