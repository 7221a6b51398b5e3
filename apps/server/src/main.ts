import { readFileSync } from 'node:fs';
import { startAuditPartitionMaintenance, startAuditSealer } from '@keel/platform/audit';
import { ConfigError, loadConfig, PlatformConfigSchema, parseList } from '@keel/platform/config';
import { startIdempotencyPurge } from '@keel/platform/idempotency';
import { systemClock } from '@keel/platform/module';
import { connectNats, createJetStreamRelay } from '@keel/platform/nats';
import { createLogger, createMetrics, startTracing } from '@keel/platform/observability';
import {
  backgroundSettingsFrom,
  createBackground,
  openDatabase,
  openPlatformSecurity,
} from '@keel/platform/server';
import closeWithGrace from 'close-with-grace';
import { v7 as uuidv7 } from 'uuid';
import { buildApp } from './app.ts';
import { bootstrapAdmin, createDemoAccounts } from './bootstrap-admin.ts';
import { startKeyRotation } from './key-rotation.ts';
import { selectModules } from './services.ts';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.LOG_LEVEL });
  const tracing = config.OTEL_EXPORTER_OTLP_ENDPOINT
    ? startTracing({ serviceName: config.OTEL_SERVICE_NAME, endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT })
    : undefined;
  const modules = selectModules(parseList(config.SERVICES));

  const opened = await openDatabase({ config, logger, modules });
  const context = { config, database: opened.database, logger, clock: systemClock, ids: { uuid: uuidv7 } };
  const security = await openPlatformSecurity({ ...context, modules });
  const admin = await bootstrapAdmin({ config, security, isEmbedded: opened.isEmbedded, logger });
  // Demo data after identity: services may seed sign-in accounts (the demo patient).
  const demoAccounts =
    admin.demoPassword === undefined ? undefined : createDemoAccounts(security, admin.demoPassword);
  if (config.KEEL_DEMO_DATA ?? opened.isEmbedded) {
    for (const module of modules) {
      await module.seedDemoData?.(demoAccounts === undefined ? context : { ...context, demoAccounts });
    }
  }

  // With NATS_URL every committed event is also relayed to JetStream, and the
  // subscriptions EVENTS_JETSTREAM_SUBSCRIPTIONS names consume from there.
  const nats = config.NATS_URL
    ? await connectNats({
        servers: config.NATS_URL,
        name: 'keel',
        logger: logger.child({ component: 'nats' }),
      })
    : undefined;
  const relay = nats
    ? createJetStreamRelay({
        connection: nats,
        logger,
        stream: {
          maxAgeMs: config.NATS_STREAM_MAX_AGE_DAYS * 86_400_000,
          duplicateWindowMs: config.NATS_DUPLICATE_WINDOW_SECONDS * 1000,
        },
      })
    : undefined;
  const jetstreamSubscriptions = parseList(config.EVENTS_JETSTREAM_SUBSCRIPTIONS);
  if (jetstreamSubscriptions.length > 0 && nats === undefined) {
    throw new Error('EVENTS_JETSTREAM_SUBSCRIPTIONS needs NATS_URL');
  }
  const background = createBackground({
    ...backgroundSettingsFrom(config, {
      connectionString: opened.url,
      database: opened.database,
      logger,
      clock: systemClock,
    }),
    isPruningEvents: true,
    publishers: relay ? [relay] : [],
    ...(nats ? { jetstream: { connection: nats, subscriptionNames: jetstreamSubscriptions } } : {}),
  });
  const metrics = createMetrics();
  relay?.registerMetrics(metrics.registry);
  const app = await buildApp({
    ...context,
    security,
    background,
    metrics,
    modules,
    areMigrationsApplied: () => true,
    version,
  });
  // KEEL_ROLE: `all` does everything; `web` serves the API and leaves the
  // background work below to `worker` processes, which serve only probes and
  // metrics. Every process registers the subscriptions (so emits fan out) and
  // can send jobs.
  const isWorking = config.KEEL_ROLE !== 'web';
  // Seal audit events into the hash chain every second; keep monthly partitions 3 months ahead.
  const sealer = isWorking
    ? startAuditSealer({ database: opened.database, intervalMs: 1000, logger })
    : undefined;
  const partitions = isWorking
    ? startAuditPartitionMaintenance({
        database: opened.database,
        intervalMs: 6 * 3_600_000,
        monthsAhead: 3,
        logger,
      })
    : undefined;
  // After every module registered its subscriptions and queues, before the
  // server accepts requests: an event emitted by the first request already
  // fans out to every subscriber.
  await background.start();
  const rotation = isWorking
    ? startKeyRotation({ database: opened.database, security, config, logger })
    : undefined;
  const purge = isWorking
    ? startIdempotencyPurge(opened.database, {
        retentionHours: config.IDEMPOTENCY_RETENTION_HOURS,
        intervalMs: 15 * 60_000,
        logger,
      })
    : undefined;

  // Stop accepting, let in-flight requests finish, then close pools; a hung
  // shutdown is cut off after SHUTDOWN_TIMEOUT_MS and exits non-zero.
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after a fatal error');
    else logger.info({ signal }, 'shutting down');
    purge?.stop();
    sealer?.stop();
    partitions?.stop();
    await rotation?.stop();
    await app.close();
    // After the last request (whose events must still be delivered by some
    // process), before the pool closes: handlers finish, running jobs are
    // finished or handed back.
    await background.stop();
    await nats?.close();
    const isDrained = await opened.database.drain({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS / 4 });
    if (!isDrained) logger.warn('database work still running at shutdown; closing anyway');
    await security.close();
    await opened.close();
    await tracing?.shutdown();
    logger.info('shutdown complete');
  });

  await app.listen({ host: config.HOST, port: config.PORT });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const base = `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${port}`;
  printBanner([
    `Keel ${version} is up (services: ${modules.map((module) => module.name).join(', ')}; role: ${config.KEEL_ROLE})`,
    ...(config.KEEL_ROLE === 'worker'
      ? []
      : [`  API      ${base}`, `  Docs     ${base}/docs`, `  OpenAPI  ${base}/openapi.json`]),
    `  Metrics  ${base}/metrics`,
    `  Health   ${base}/health/ready`,
    `  Database ${opened.isEmbedded ? 'embedded PostgreSQL' : 'external PostgreSQL'} ${opened.displayUrl}`,
    ...admin.bannerLines,
    ...(demoAccounts === undefined || demoAccounts.emails().length === 0
      ? []
      : [`  Demo     ${demoAccounts.emails().join(', ')} (same password as the admin)`]),
  ]);
}

function loadConfigOrExit() {
  try {
    return loadConfig(PlatformConfigSchema, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

function printBanner(lines: string[]): void {
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`Keel failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
