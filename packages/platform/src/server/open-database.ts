import type { PlatformConfig } from '../config/index.ts';
import { createDatabase, type Database, runMigrations, startEmbeddedPostgres } from '../db/index.ts';
import type { ServiceModule } from '../module/index.ts';
import type { Logger } from '../observability/index.ts';
import { migrationSourcesFor } from './build-app.ts';

export type OpenedDatabase = {
  database: Database;
  isEmbedded: boolean;
  /** The connection string (with its password): for pg-boss, never for logs. */
  url: string;
  /** Safe display form: the password is masked. */
  displayUrl: string;
  close: () => Promise<void>;
};

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL when it is
 * unset, then applies platform and module migrations.
 */
export async function openDatabase(options: {
  config: PlatformConfig;
  logger: Logger;
  modules: ServiceModule[];
}): Promise<OpenedDatabase> {
  const { config, logger } = options;
  const embedded = config.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir: config.KEEL_DATA_DIR, logger });
  const url = config.DATABASE_URL ?? embedded?.url ?? '';
  const database = createDatabase(
    {
      url,
      poolMax: config.DATABASE_POOL_MAX,
      statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
      retryMaxAttempts: config.DATABASE_RETRY_MAX_ATTEMPTS,
      retryBudgetMs: config.DATABASE_RETRY_BUDGET_MS,
      breakerThreshold: config.DATABASE_BREAKER_THRESHOLD,
      breakerHalfOpenAfterMs: config.DATABASE_BREAKER_HALF_OPEN_AFTER_MS,
      traceQueries: config.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined,
    },
    logger,
  );
  try {
    await runMigrations(database.pool, migrationSourcesFor(options.modules), logger);
  } catch (error) {
    await database.close();
    await embedded?.stop();
    throw error;
  }
  return {
    database,
    isEmbedded: embedded !== undefined,
    url,
    displayUrl: maskPassword(url),
    async close() {
      await database.close();
      await embedded?.stop();
    },
  };
}

export function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
