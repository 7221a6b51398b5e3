import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  buildTestApp,
  createTestAccount,
  createTestDatabase,
  findFreePort,
  type TestDatabase,
} from '@keel/platform/testing';
import { afterAll, beforeAll, inject } from 'vitest';
import { ALL_MODULES } from '../src/services.ts';

// Runs the real server entry (`node apps/server/src/main.ts`) as a child
// process, for tests that need what `app.inject` cannot give: a process that
// dies mid-request and a fresh one that picks up what it left.

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const OUTPUT_TAIL_LINES = 80;

export type ServerExit = { code: number | null; signal: NodeJS.Signals | null };

export type ServerProcess = {
  baseUrl: string;
  child: ChildProcess;
  /** Settles when the process has exited, however it ended. */
  exited: Promise<ServerExit>;
  hasExited: () => boolean;
  /** The last lines the process wrote to stdout and stderr. */
  recentOutput: () => string[];
};

/**
 * Spawns the server on a free port with `env` over this process's
 * environment, and resolves once `GET /health/ready` answers 200. Rejects,
 * with the tail of the child's output, if it exits first or is not ready
 * within `readyTimeoutMs` (the child is killed then).
 */
export async function startServerProcess(options: {
  env: Record<string, string>;
  readyTimeoutMs: number;
}): Promise<ServerProcess> {
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['apps/server/src/main.ts'], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, ...options.env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const tail: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exit: ServerExit | undefined;
  const exited = new Promise<ServerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  const server: ServerProcess = {
    baseUrl,
    child,
    exited,
    hasExited: () => exit !== undefined,
    recentOutput: () => [...tail],
  };

  const deadline = Date.now() + options.readyTimeoutMs;
  for (;;) {
    if (exit !== undefined) {
      throw new Error(
        `server exited before it was ready (code ${exit.code}, signal ${exit.signal}):\n${tail.join('\n')}`,
      );
    }
    if (Date.now() > deadline) {
      await killServerProcess(server);
      throw new Error(`server was not ready within ${options.readyTimeoutMs} ms:\n${tail.join('\n')}`);
    }
    if (await isReady(`${baseUrl}/health/ready`)) return server;
    await sleep(100);
  }
}

/**
 * The environment of a test's server process: the test's database and data
 * directory (processes that share it verify each other's tokens), no demo
 * data, no rate limits, quick polling. Empty means unset: whatever the
 * developer's shell exports, the children run on Postgres alone with
 * generated keys.
 */
export function isolatedServerEnvironment(options: {
  databaseUrl: string;
  dataDirectory: string;
}): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    KEEL_DATA_DIR: options.dataDirectory,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    SERVICES: 'all',
    KEEL_ROLE: 'all',
    KEEL_DEMO_DATA: 'false',
    RATE_LIMIT_ENABLED: 'false',
    EVENTS_POLL_INTERVAL_MS: '100',
    NATS_URL: '',
    REDIS_URL: '',
    EVENTS_JETSTREAM_SUBSCRIPTIONS: '',
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    AUTH_SIGNING_KEYS: '',
    KEEL_ENCRYPTION_KEYS: '',
    KEEL_BLIND_INDEX_KEY: '',
    KEEL_BOOTSTRAP_ADMIN_EMAIL: '',
    KEEL_BOOTSTRAP_ADMIN_PASSWORD: '',
  };
}

export type ServerProcessFixture = {
  /** The file's test database (after `beforeAll`). */
  readonly testDb: TestDatabase;
  /** Shared by the file's processes, so each verifies the tokens another signed. */
  readonly dataDirectory: string;
  /** Starts a server on the fixture's database and data directory, `env` over `isolatedServerEnvironment`; killed after the file. */
  start(env?: Record<string, string>): Promise<ServerProcess>;
  /** Creates accounts with `roles` through the identity service (in-process); returns their emails. */
  createAccounts(count: number, roles: string[]): Promise<string[]>;
};

/**
 * The set-up of a test file whose server processes share one test database
 * and one data directory: creates both before the file's tests, and kills
 * every process it started and removes both after them.
 */
export function useServerProcesses(options: {
  prefix: string;
  readyTimeoutMs: number;
}): ServerProcessFixture {
  let testDb: TestDatabase | undefined;
  let dataDirectory: string | undefined;
  const servers: ServerProcess[] = [];
  beforeAll(async () => {
    testDb = await createTestDatabase(inject('keelTestDatabase'));
    dataDirectory = mkdtempSync(join(tmpdir(), options.prefix));
  });
  afterAll(async () => {
    for (const server of servers) await killServerProcess(server);
    await testDb?.drop();
    if (dataDirectory) rmSync(dataDirectory, { recursive: true, force: true });
  });
  const fixture: ServerProcessFixture = {
    get testDb() {
      if (testDb === undefined) throw new Error('the server process fixture is used before beforeAll');
      return testDb;
    },
    get dataDirectory() {
      if (dataDirectory === undefined) throw new Error('the server process fixture is used before beforeAll');
      return dataDirectory;
    },
    async start(env = {}) {
      const base = isolatedServerEnvironment({
        databaseUrl: fixture.testDb.url,
        dataDirectory: fixture.dataDirectory,
      });
      const server = await startServerProcess({
        env: { ...base, ...env },
        readyTimeoutMs: options.readyTimeoutMs,
      });
      servers.push(server);
      return server;
    },
    async createAccounts(count, roles) {
      const seeding = await buildTestApp({
        database: fixture.testDb.database,
        databaseUrl: fixture.testDb.url,
        modules: ALL_MODULES,
        env: { KEEL_DATA_DIR: fixture.dataDirectory },
      });
      try {
        const emails: string[] = [];
        for (let index = 0; index < count; index += 1) {
          emails.push((await createTestAccount(seeding, { roles })).email);
        }
        return emails;
      } finally {
        await seeding.close();
      }
    },
  };
  return fixture;
}

/** Signs in through a server process; returns the Authorization header value. */
export async function logInThrough(baseUrl: string, email: string, password: string): Promise<string> {
  const response = await fetch(`${baseUrl}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  const body = (await response.json()) as { status?: string; access_token?: string };
  if (response.status !== 200 || body.status !== 'authenticated' || body.access_token === undefined) {
    throw new Error(`login failed: ${response.status} ${JSON.stringify(body)}`);
  }
  return `Bearer ${body.access_token}`;
}

/** SIGKILL: no graceful shutdown, no in-flight request finishes, no pool is closed. */
export async function killServerProcess(server: ServerProcess): Promise<ServerExit> {
  if (!server.hasExited()) server.child.kill('SIGKILL');
  return server.exited;
}

async function isReady(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}
