import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadConfig, type PlatformConfig, PlatformConfigSchema } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { KeelApp } from '../http/index.ts';
import { type Clock, type IdGenerator, type ServiceModule, systemClock } from '../module/index.ts';
import { createRecordingNotifier, type Notification } from '../notifier/index.ts';
import { createLogger, createMetrics, type HttpMetrics, type Logger } from '../observability/index.ts';
import {
  type Background,
  backgroundSettingsFrom,
  buildKeelApp,
  createBackground,
  openPlatformSecurity,
  type PlatformSecurity,
} from '../server/index.ts';
import { createTestDatabase, type TestDatabase } from './test-database.ts';

/** Log lines a test app wrote, parsed; lets tests assert on what was (not) logged. */
export type CapturedLogs = { lines: () => Record<string, unknown>[]; text: () => string };

export type TestApp = {
  app: KeelApp;
  config: PlatformConfig;
  metrics: HttpMetrics;
  logger: Logger;
  logs: CapturedLogs;
  security: PlatformSecurity;
  /** The clock the app runs on (tests that move time move this one). */
  clock: Clock;
  /** What the app sent through its notifier (password reset tokens, …). */
  notifications: Notification[];
  /** Event bus and jobs, prepared (subscriptions registered, jobs runner started) but, unless `isBackgroundRunning`, not dispatching: call `background.drainEvents()`. */
  background: Background;
  close: () => Promise<void>;
};

// Generated signing and encryption keys for tests live here, not in the
// developer's .keel/, and are shared by every test app of the process.
let testDataDirectory: string | undefined;
function testKeyDirectory(): string {
  testDataDirectory ??= mkdtempSync(join(tmpdir(), 'keel-test-keys-'));
  return testDataDirectory;
}

export function captureLogs(): { stream: Writable; logs: CapturedLogs } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  const text = () => chunks.join('');
  return {
    stream,
    logs: {
      text,
      lines: () =>
        text()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Record<string, unknown>),
    },
  };
}

/**
 * The production wiring (`buildKeelApp`) on a test database, with logs captured.
 *
 * @example
 * const { app } = await buildTestApp({ database: testDb.database, modules: [userMetadataModule] });
 * const response = await app.inject({ method: 'GET', url: '/health/live' });
 */
export async function buildTestApp(options: {
  database: Database;
  /** The database's connection string: needed when a module has job queues (pg-boss opens its own pool). */
  databaseUrl?: string;
  modules: ServiceModule[];
  env?: Record<string, string>;
  clock?: Clock;
  ids?: IdGenerator;
  /** Deliver events and work jobs in the background, as a server does (default false: drain by hand). */
  isBackgroundRunning?: boolean;
}): Promise<TestApp> {
  const config = loadConfig(PlatformConfigSchema, {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    KEEL_DATA_DIR: testKeyDirectory(),
    ...options.env,
  });
  const { stream, logs } = captureLogs();
  const logger = createLogger({ level: config.LOG_LEVEL, destination: stream });
  const metrics = createMetrics({ collectProcessMetrics: false });
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? { uuid: uuidv7 };
  const notifier = createRecordingNotifier();
  const security = await openPlatformSecurity({
    config,
    database: options.database,
    logger,
    clock,
    ids,
    modules: options.modules,
    notifier,
  });
  const background = createBackground({
    ...backgroundSettingsFrom(config, {
      // pg-boss opens its own pool on the same database the app's pool points at.
      ...connectionStringOf(options),
      database: options.database,
      logger,
      clock,
    }),
    // Tests wake on NOTIFY or drain by hand; a short poll keeps retries prompt.
    eventPollIntervalMs: 50,
    jobsPollIntervalSeconds: 0.5,
  });
  const app = await buildKeelApp({
    config,
    database: options.database,
    logger,
    metrics,
    modules: options.modules,
    clock,
    ids,
    security,
    background,
    areMigrationsApplied: () => true,
    version: '0.0.0-test',
  });
  await app.ready();
  if (options.isBackgroundRunning) await background.start();
  else await background.prepare();
  return {
    app,
    config,
    metrics,
    logger,
    logs,
    security,
    clock,
    notifications: notifier.sent,
    background,
    close: async () => {
      await app.close();
      await background.stop();
      await security.close();
    },
  };
}

function connectionStringOf(options: { database: Database; databaseUrl?: string }): {
  connectionString?: string;
} {
  const connectionString = options.databaseUrl ?? options.database.pool.options.connectionString;
  return connectionString === undefined ? {} : { connectionString };
}

export type TestAppHarness = { testDb: TestDatabase; testApp: TestApp };

/**
 * Registers Vitest hooks that give the file its own database clone and app,
 * closed after the file. Properties are set in `beforeAll`.
 *
 * @example
 * const harness = useTestApp({ modules: [userMetadataModule] });
 * it('…', async () => { await harness.testApp.app.inject({ method: 'GET', url: '/health/live' }); });
 */
export function useTestApp(options: {
  modules: ServiceModule[];
  env?: Record<string, string>;
  clock?: Clock;
  ids?: IdGenerator;
  isBackgroundRunning?: boolean;
}): TestAppHarness {
  const harness = {} as TestAppHarness;
  beforeAll(async () => {
    harness.testDb = await createTestDatabase(inject('keelTestDatabase'));
    harness.testApp = await buildTestApp({
      database: harness.testDb.database,
      databaseUrl: harness.testDb.url,
      ...options,
    });
  });
  afterAll(async () => {
    await harness.testApp?.close();
    await harness.testDb?.drop();
  });
  return harness;
}
