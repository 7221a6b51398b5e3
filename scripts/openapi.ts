// Writes docs/api/openapi.json from the route schemas of every service, or
// with --check fails when the committed file is stale.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, PlatformConfigSchema } from '@keel/platform/config';
import { createDatabase } from '@keel/platform/db';
import { systemClock } from '@keel/platform/module';
import { createLogger, createMetrics } from '@keel/platform/observability';
import {
  backgroundSettingsFrom,
  buildKeelApp,
  createBackground,
  openPlatformSecurity,
} from '@keel/platform/server';
import { v7 as uuidv7 } from 'uuid';
import { ALL_MODULES } from '../apps/server/src/services.ts';

const OUTPUT = new URL('../docs/api/openapi.json', import.meta.url);
const { version } = JSON.parse(
  await readFile(new URL('../apps/server/package.json', import.meta.url), 'utf8'),
) as {
  version: string;
};

// Throwaway keys: the document does not depend on them.
const keyDirectory = await mkdtemp(join(tmpdir(), 'keel-openapi-'));
const config = loadConfig(PlatformConfigSchema, { KEEL_DATA_DIR: keyDirectory });
const logger = createLogger({ level: 'silent' });
// The pool connects lazily; generating the document never touches a database.
const database = createDatabase(
  {
    url: 'postgres://openapi@127.0.0.1:1/unused',
    poolMax: 1,
    statementTimeoutMs: 1000,
    connectTimeoutMs: 100,
    retryMaxAttempts: 1,
    retryBudgetMs: 100,
    breakerThreshold: 1,
    breakerHalfOpenAfterMs: 1000,
  },
  logger,
);
const context = { config, database, logger, clock: systemClock, ids: { uuid: uuidv7 } };
const security = await openPlatformSecurity({ ...context, modules: ALL_MODULES });
const app = await buildKeelApp({
  ...context,
  metrics: createMetrics({ collectProcessMetrics: false }),
  modules: ALL_MODULES,
  security,
  // Never started: generating the document runs no background work.
  background: createBackground(backgroundSettingsFrom(config, { database, logger, clock: systemClock })),
  areMigrationsApplied: () => true,
  version,
});
await app.ready();
const document = `${JSON.stringify(app.swagger(), null, 2)}\n`;
await app.close();
await security.close();
await database.close();
await rm(keyDirectory, { recursive: true, force: true });

if (process.argv.includes('--check')) {
  const committed = await readFile(OUTPUT, 'utf8').catch(() => '');
  if (committed !== document) {
    process.stderr.write('docs/api/openapi.json is stale: run `npm run openapi` and commit the result.\n');
    process.exit(1);
  }
  process.stdout.write('docs/api/openapi.json is up to date.\n');
} else {
  await writeFile(OUTPUT, document);
  process.stdout.write(`Wrote ${OUTPUT.pathname}\n`);
}
