import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, PlatformConfigSchema } from '../config/index.ts';
import type { KeelApp } from '../http/index.ts';
import { type ServiceModule, systemClock } from '../module/index.ts';
import { createLogger, createMetrics } from '../observability/index.ts';
import { type CapturedLogs, captureLogs } from '../testing/test-app.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { backgroundSettingsFrom, createBackground } from './background.ts';
import { buildKeelApp, migrationSourcesFor, platformMigrations } from './build-app.ts';
import { openPlatformSecurity, type PlatformSecurity } from './security.ts';

let testDb: TestDatabase;
let security: PlatformSecurity;
const openApps: KeelApp[] = [];
const config = loadConfig(PlatformConfigSchema, {
  NODE_ENV: 'test',
  KEEL_DATA_DIR: mkdtempSync(join(tmpdir(), 'keel-build-app-')),
});

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  security = await openPlatformSecurity({
    config,
    database: testDb.database,
    logger: createLogger({ level: 'silent' }),
    clock: systemClock,
    ids: { uuid: randomUUID },
    modules: [],
  });
});

afterEach(async () => {
  await Promise.all(openApps.splice(0).map((app) => app.close()));
});

afterAll(async () => {
  await testDb?.drop();
});

/** A throwaway module whose routes report which service label they carry. */
function buildWidgetsModule(overrides: Partial<ServiceModule> = {}): ServiceModule {
  return {
    name: 'widgets',
    schema: 'widgets',
    routePrefix: '/widgets',
    migrationsDirectory: '/nonexistent/widgets/migrations',
    register(app, context) {
      context.logger.info('widgets registered');
      app.get('/ping', { config: { access: 'public' } }, async (request) => ({
        service: request.routeOptions.config.service,
        url: request.routeOptions.url,
      }));
      app.get('/:id', { config: { access: 'public' } }, async (request) => ({
        service: request.routeOptions.config.service,
        url: request.routeOptions.url,
      }));
    },
    ...overrides,
  };
}

function unstartedBackground() {
  return createBackground(
    backgroundSettingsFrom(config, {
      database: testDb.database,
      logger: createLogger({ level: 'silent' }),
      clock: systemClock,
    }),
  );
}

async function buildApp(
  options: {
    modules?: ServiceModule[];
    areMigrationsApplied?: () => boolean;
    role?: (typeof config)['KEEL_ROLE'];
  } = {},
): Promise<{ app: KeelApp; logs: CapturedLogs; metrics: ReturnType<typeof createMetrics> }> {
  const { stream, logs } = captureLogs();
  const metrics = createMetrics({ collectProcessMetrics: false });
  const app = await buildKeelApp({
    config: { ...config, KEEL_ROLE: options.role ?? config.KEEL_ROLE },
    security,
    database: testDb.database,
    logger: createLogger({ level: 'info', destination: stream }),
    metrics,
    modules: options.modules ?? [buildWidgetsModule()],
    background: unstartedBackground(),
    clock: systemClock,
    ids: { uuid: randomUUID },
    areMigrationsApplied: options.areMigrationsApplied ?? (() => true),
    version: '0.0.0-test',
  });
  openApps.push(app);
  await app.ready();
  return { app, logs, metrics };
}

describe('buildKeelApp module mounting', () => {
  it('mounts module routes under the module route prefix', async () => {
    const { app } = await buildApp();
    const mounted = await app.inject({ method: 'GET', url: '/widgets/ping' });
    expect(mounted.statusCode).toBe(200);
    expect(mounted.json().url).toBe('/widgets/ping');

    const unprefixed = await app.inject({ method: 'GET', url: '/ping' });
    expect(unprefixed.statusCode).toBe(404);
    expect(unprefixed.json().code).toBe('request.route_not_found');
  });

  it('labels every module route with the module name as its service', async () => {
    const { app } = await buildApp();
    for (const url of ['/widgets/ping', '/widgets/42']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.json().service).toBe('widgets');
    }
  });

  it('counts module requests under the service label and leaves platform routes out', async () => {
    const { app, metrics } = await buildApp();
    await app.inject({ method: 'GET', url: '/widgets/42' });
    await app.inject({ method: 'GET', url: '/health/live' });
    const total = await metrics.totalRequests.get();
    expect(total.values).toEqual([
      { labels: { route: '/widgets/:id', method: 'GET', service: 'widgets' }, value: 1 },
    ]);
  });

  it('hands each module a logger that names the service', async () => {
    const { logs } = await buildApp();
    const line = logs.lines().find((entry) => entry.msg === 'widgets registered');
    expect(line).toMatchObject({ service: 'widgets' });
  });

  it('keeps two modules apart when they share no prefix', async () => {
    const gadgets = buildWidgetsModule({ name: 'gadgets', schema: 'gadgets', routePrefix: '/gadgets' });
    const { app } = await buildApp({ modules: [buildWidgetsModule(), gadgets] });
    expect((await app.inject({ method: 'GET', url: '/gadgets/ping' })).json().service).toBe('gadgets');
    expect((await app.inject({ method: 'GET', url: '/widgets/ping' })).json().service).toBe('widgets');
  });

  it('fails to start when a module registers a route without an access rule', async () => {
    const careless = buildWidgetsModule({
      register(app) {
        app.get('/open', async () => ({ ok: true }));
      },
    });
    const { stream } = captureLogs();
    const building = buildKeelApp({
      config,
      security,
      database: testDb.database,
      logger: createLogger({ level: 'silent', destination: stream }),
      metrics: createMetrics({ collectProcessMetrics: false }),
      modules: [careless],
      background: unstartedBackground(),
      clock: systemClock,
      ids: { uuid: randomUUID },
      areMigrationsApplied: () => true,
      version: '0.0.0-test',
    });
    await expect(building).rejects.toMatchObject({ name: 'MissingAccessRuleError' });
  });
});

describe('buildKeelApp process roles', () => {
  it('serves a worker only its probes and metrics: every other route answers 404 as if it did not exist', async () => {
    const { app } = await buildApp({ role: 'worker' });

    for (const url of ['/health/live', '/health/ready', '/metrics']) {
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
    }
    const refused = [
      { method: 'GET' as const, url: '/widgets/ping' },
      { method: 'GET' as const, url: '/docs' },
      { method: 'GET' as const, url: '/openapi.json' },
      { method: 'GET' as const, url: '/.well-known/jwks.json' },
      // Before authentication: no credentials check, no body parsing.
      { method: 'POST' as const, url: '/auth/login', payload: '{not json' },
      { method: 'GET' as const, url: '/admin/events/dead-letters' },
    ];
    for (const request of refused) {
      const response = await app.inject({ ...request, headers: { 'content-type': 'application/json' } });
      expect(response.statusCode, request.url).toBe(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 404, code: 'request.route_not_found' });
    }
  });

  it('serves the same routes in the web and all roles', async () => {
    for (const role of ['web', 'all'] as const) {
      const { app } = await buildApp({ role });
      expect((await app.inject({ method: 'GET', url: '/widgets/ping' })).statusCode, role).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode, role).toBe(200);
    }
  });
});

describe('buildKeelApp readiness', () => {
  it('answers /health/ready 200 with every check ok when migrations are applied', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'ready',
      checks: { database: { status: 'ok' }, migrations: { status: 'ok' }, breaker: { status: 'ok' } },
    });
  });

  it('answers /health/ready 503 with the migrations check failing when migrations are not applied', async () => {
    const { app } = await buildApp({ areMigrationsApplied: () => false });
    const response = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({
      status: 'not_ready',
      checks: { migrations: { status: 'failing' }, database: { status: 'ok' } },
    });
  });

  it('answers /health/live 200 even when not ready', async () => {
    const { app } = await buildApp({ areMigrationsApplied: () => false });
    const response = await app.inject({ method: 'GET', url: '/health/live' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('exposes the database gauges on /metrics', async () => {
    const { app } = await buildApp();
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('keel_db_circuit_state 0');
    expect(response.body).toContain('keel_db_pool_total');
  });
});

describe('buildKeelApp service metrics', () => {
  /** A module that counts its pings on a counter of its own. */
  function buildCountingModule(overrides: Partial<ServiceModule> = {}): ServiceModule {
    return buildWidgetsModule({
      register(app, context) {
        const pings = context.metrics.counter({
          name: 'pings_total',
          help: 'Pings answered',
          labelNames: ['kind'],
        });
        app.get('/ping', { config: { access: 'public' } }, async () => {
          pings.inc({ kind: 'plain' });
          return { ok: true };
        });
      },
      ...overrides,
    });
  }

  it('serves a metric a module registered on /metrics, prefixed with the service name', async () => {
    const { app } = await buildApp({ modules: [buildCountingModule()] });
    await app.inject({ method: 'GET', url: '/widgets/ping' });
    await app.inject({ method: 'GET', url: '/widgets/ping' });
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('# TYPE keel_widgets_pings_total counter');
    expect(response.body).toContain('keel_widgets_pings_total{kind="plain"} 2');
  });

  it('gives two modules the same short name under names of their own', async () => {
    const gadgets = buildCountingModule({ name: 'gadgets', schema: 'gadgets', routePrefix: '/gadgets' });
    const { app } = await buildApp({ modules: [buildCountingModule(), gadgets] });
    await app.inject({ method: 'GET', url: '/gadgets/ping' });
    const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(body).toContain('keel_gadgets_pings_total{kind="plain"} 1');
    expect(body).not.toContain('keel_widgets_pings_total{');
  });

  it('fails to start, naming the module, when a module metric clashes with a platform one', async () => {
    // A module named db asking for pool_total would shadow the pool gauge keel_db_pool_total.
    const clashing = buildWidgetsModule({
      name: 'db',
      register(_app, context) {
        context.metrics.counter({ name: 'pool_total', help: 'Not the pool' });
      },
    });
    const building = buildKeelApp({
      config,
      security,
      database: testDb.database,
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics({ collectProcessMetrics: false }),
      modules: [clashing],
      background: unstartedBackground(),
      clock: systemClock,
      ids: { uuid: randomUUID },
      areMigrationsApplied: () => true,
      version: '0.0.0-test',
    }).then((app) => {
      openApps.push(app);
      return app.ready();
    });
    await expect(building).rejects.toMatchObject({
      name: 'ServiceMetricNameError',
      message: expect.stringContaining('keel_db_pool_total'),
    });
  });
});

describe('migrationSourcesFor', () => {
  it('lists the platform migrations first, then one source per module', () => {
    const widgets = buildWidgetsModule();
    expect(migrationSourcesFor([widgets])).toEqual([
      platformMigrations,
      { service: 'widgets', schema: 'widgets', directory: '/nonexistent/widgets/migrations' },
    ]);
  });
});
