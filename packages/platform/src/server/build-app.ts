import { fileURLToPath } from 'node:url';
import { registerAdminRoutes } from '../auth/admin.routes.ts';
import { registerAuthRoutes } from '../auth/auth.routes.ts';
import { type PlatformConfig, parseList } from '../config/index.ts';
import type { Database, MigrationSource } from '../db/index.ts';
import { createHttpApp, type KeelApp, registerPlatformRoutes } from '../http/index.ts';
import { installIdempotency } from '../idempotency/index.ts';
import type { Clock, IdGenerator, ServiceModule, ServiceMountContext } from '../module/index.ts';
import { createServiceMetrics, type HttpMetrics, type Logger } from '../observability/index.ts';
import { installRateLimiting, rateLimitSettingsFrom } from '../ratelimit/index.ts';
import type { Background } from './background.ts';
import { registerOperationsRoutes } from './operations.routes.ts';
import type { PlatformSecurity } from './security.ts';

export const platformMigrations: MigrationSource = {
  service: 'platform',
  schema: 'platform',
  directory: fileURLToPath(new URL('../../migrations', import.meta.url)),
};

export function migrationSourcesFor(modules: ServiceModule[]): MigrationSource[] {
  return [
    platformMigrations,
    ...modules.map((module) => ({
      service: module.name,
      schema: module.schema,
      directory: module.migrationsDirectory,
    })),
  ];
}

export type KeelAppDependencies = {
  config: PlatformConfig;
  database: Database;
  logger: Logger;
  metrics: HttpMetrics;
  modules: ServiceModule[];
  clock: Clock;
  ids: IdGenerator;
  security: PlatformSecurity;
  /** Collects the modules' subscriptions and job queues; the caller starts it after the app is built. */
  background: Background;
  /** Whether migrations finished; readiness reports it. */
  areMigrationsApplied: () => boolean;
  version: string;
};

/**
 * Assembles the HTTP app from the platform and the selected service modules.
 * Shared by `apps/server` and the testing kit, so tests run the very wiring
 * production runs. Never listens.
 */
export async function buildKeelApp(deps: KeelAppDependencies): Promise<KeelApp> {
  const { config, database, logger, metrics } = deps;
  const app = await createHttpApp({
    logger,
    metrics,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    corsOrigins: parseList(config.CORS_ORIGINS),
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    tracing: config.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined,
    authenticate: deps.security.identity.authenticate,
    ...(config.KEEL_ROLE === 'worker' ? { servedRoutes: WORKER_ROUTES } : {}),
    openapi: {
      title: 'Keel API',
      version: deps.version,
      description:
        'Keel services on one platform core. Errors are RFC 9457 problem+json with a stable `code`.',
    },
  });
  database.registerMetrics(metrics.registry);
  deps.background.registerMetrics(metrics.registry);
  // Before any route: the limiter attaches itself to routes as they are added.
  const limiters = await installRateLimiting(app, {
    settings: rateLimitSettingsFrom(config),
    ...(deps.security.redis ? { redis: deps.security.redis } : {}),
  });
  installIdempotency(app, { database, lockTimeoutMs: config.IDEMPOTENCY_LOCK_TIMEOUT_MS, logger });
  registerPlatformRoutes(app, {
    metrics,
    readinessChecks: {
      database: async () => {
        await database.ping();
        return { status: 'ok' };
      },
      migrations: async () =>
        deps.areMigrationsApplied()
          ? { status: 'ok' }
          : { status: 'failing', detail: 'migrations not applied' },
      breaker: async () => {
        const state = database.breakerState();
        return state === 'open'
          ? { status: 'failing', detail: 'database circuit breaker is open' }
          : { status: 'ok', detail: state };
      },
    },
  });

  registerAuthRoutes(app, { identity: deps.security.identity, limiters });
  registerAdminRoutes(app, { identity: deps.security.identity, database });
  registerOperationsRoutes(app, { database, background: deps.background });

  const context: Omit<ServiceMountContext, 'metrics'> = {
    config,
    database,
    logger,
    clock: deps.clock,
    ids: deps.ids,
    notifier: deps.security.notifier,
    background: deps.background.registry,
  };
  for (const module of deps.modules) {
    await app.register(
      async (scope) => {
        scope.addHook('onRoute', (route) => {
          route.config = { ...route.config, service: module.name };
        });
        await module.register(scope, {
          ...context,
          logger: logger.child({ service: module.name }),
          metrics: createServiceMetrics(metrics.registry, module.name),
        });
      },
      { prefix: module.routePrefix },
    );
  }
  return app;
}

/**
 * What a worker process (KEEL_ROLE=worker) serves: the orchestrator's probes
 * and the metrics scrape. It mounts every module like any process (that is how
 * their subscriptions and job queues are registered: the same wiring
 * everywhere), but serves none of their routes.
 */
const WORKER_ROUTES: ReadonlySet<string> = new Set(['/health/live', '/health/ready', '/metrics']);

/** TRUST_PROXY: `false`, `true`, a hop count, or a comma list of addresses/CIDRs. */
export function parseTrustProxy(value: string): boolean | number | string[] {
  if (value === 'false' || value === '') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return parseList(value);
}
