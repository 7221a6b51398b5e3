// npm run bench -- [scenario ...] [--connections 100,500] [--duration 10] [--warmup 2] [--profile] [--note text]
// Starts bare Fastify and the real Keel server as child processes, drives them
// with autocannon from this process, prints a table and records the results.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchCredentials, loadBenchAdmin } from './credentials.ts';
import { measureLoad, warmUp } from './load.ts';
import { observePostgres, type PostgresObservation } from './postgres-observer.ts';
import { formatSummary, summariseProfile } from './profile-summary.ts';
import {
  appendResultRows,
  type Measurement,
  printTable,
  RESULTS_DIR,
  type RunEnvironment,
  type ScenarioReport,
  type ScenarioRow,
  writeScenarioReport,
} from './report.ts';
import { type Scenario, type ScenarioContext, scenarios } from './scenarios.ts';
import { findFreePort, type ServerProcess, ServerStartError, startServerProcess } from './server-process.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PROFILE_DIR = path.join(RESULTS_DIR, 'profiles');
// First start with embedded Postgres runs initdb and migrations; give it time.
const READY_TIMEOUT_MS = 180_000;

type Options = {
  scenarios: Scenario[];
  connections: number[];
  durationSeconds: number;
  warmupSeconds: number;
  isProfiled: boolean;
  note: string;
};

function parseOptions(argv: string[]): Options {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      connections: { type: 'string', short: 'c', default: '100,500' },
      duration: { type: 'string', short: 'd', default: '10' },
      warmup: { type: 'string', short: 'w', default: '2' },
      profile: { type: 'boolean', default: false },
      note: { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  const unknown = positionals.filter((name) => !scenarios.some((scenario) => scenario.name === name));
  if (unknown.length > 0) fail(`unknown scenario ${unknown.join(', ')}\n\n${usage()}`);
  const connections = values.connections.split(',').map((entry) => Number(entry.trim()));
  if (connections.some((count) => !Number.isInteger(count) || count < 1)) {
    fail('--connections takes positive integers separated by commas, e.g. 100,500');
  }
  const durationSeconds = Number(values.duration);
  const warmupSeconds = Number(values.warmup);
  if (!Number.isInteger(durationSeconds) || durationSeconds < 1) fail('--duration takes whole seconds >= 1');
  if (!Number.isInteger(warmupSeconds) || warmupSeconds < 0) fail('--warmup takes whole seconds >= 0');
  return {
    scenarios:
      positionals.length === 0
        ? [...scenarios]
        : positionals.map((name) => scenarios.find((scenario) => scenario.name === name) as Scenario),
    connections,
    durationSeconds,
    warmupSeconds,
    isProfiled: values.profile,
    note: values.note,
  };
}

function usage(): string {
  return [
    'usage: npm run bench -- [scenario ...] [options]',
    '',
    'scenarios (all when none given):',
    ...scenarios.map((scenario) => `  ${scenario.name.padEnd(22)} ${scenario.description}`),
    '',
    'options:',
    '  -c, --connections 100,500  connection counts to run each scenario at',
    '  -d, --duration 10          measured seconds per connection count',
    '  -w, --warmup 2             discarded warm-up seconds before each measurement',
    '      --profile              run the server under --cpu-prof; profiles land in bench/results/profiles/',
    '      --note text            free text for the note column of bench/results/README.md',
    '',
    'environment: DATABASE_URL (else embedded Postgres under .keel/bench), DATABASE_POOL_MAX and every',
    'other Keel variable pass through to the server.',
    '',
  ].join('\n');
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// Its own data dir so the embedded Postgres never collides with a dev server's; the
// bench admin's credentials live beside the database they belong to.
const DATA_DIR = path.join(ROOT, '.keel', process.env.DATABASE_URL ? 'bench-external' : 'bench');
const ADMIN_FILE = path.join(DATA_DIR, 'bench-admin.json');
// Far above any load a run generates: the limiter stays in the request path (its cost is measured) but never trips.
const LIFTED_LIMIT = '1000000000';

function keelEnvironment(): NodeJS.ProcessEnv {
  const admin = loadBenchAdmin(ADMIN_FILE);
  return {
    ...process.env,
    LOG_LEVEL: 'warn',
    KEEL_DEMO_DATA: 'false',
    KEEL_DATA_DIR: DATA_DIR,
    KEEL_BOOTSTRAP_ADMIN_EMAIL: admin.email,
    KEEL_BOOTSTRAP_ADMIN_PASSWORD: admin.password,
    RATE_LIMIT_DEFAULT_MAX: LIFTED_LIMIT,
    RATE_LIMIT_AUTH_PER_IP_MAX: LIFTED_LIMIT,
    RATE_LIMIT_AUTH_PER_ACCOUNT_MAX: LIFTED_LIMIT,
  };
}

const SERVER_ENTRY = {
  keel: path.join(ROOT, 'apps/server/src/main.ts'),
  'keel-unauthenticated': path.join(import.meta.dirname, 'unauthenticated-server.ts'),
  ceiling: path.join(import.meta.dirname, 'ceiling-server.ts'),
} as const;

const SERVER_NAME = {
  keel: 'keel server',
  'keel-unauthenticated': 'keel server (user-metadata unauthenticated)',
  ceiling: 'database ceiling server',
} as const;

type KeelProcesses = { keel: ServerProcess; gateway?: ServerProcess };

async function startKeel(
  isProfiled: boolean,
  scenario: Pick<Scenario, 'server' | 'hasPaymentGateway'>,
): Promise<KeelProcesses> {
  const server = scenario.server ?? 'keel';
  if (isProfiled) await mkdir(PROFILE_DIR, { recursive: true });
  const profileArgs = isProfiled ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
  const port = await findFreePort();
  const gateway = scenario.hasPaymentGateway ? await startPaymentGateway(port) : undefined;
  try {
    const keel = await startServerProcess({
      name: SERVER_NAME[server],
      nodeArgs: [...profileArgs, SERVER_ENTRY[server]],
      env: { ...keelEnvironment(), ...gateway?.keelEnvironment },
      readyPath: '/health/ready',
      readyTimeoutMs: READY_TIMEOUT_MS,
      port,
    });
    return { keel, ...(gateway === undefined ? {} : { gateway: gateway.process }) };
  } catch (error) {
    await gateway?.process.stop();
    throw error;
  }
}

/** The simulated gateway in its own process, its webhooks aimed at the Keel server about to start on `keelPort`. */
async function startPaymentGateway(keelPort: number) {
  const secrets = {
    PAYMENTS_API_KEY: `sk_bench_${randomBytes(24).toString('base64url')}`,
    PAYMENTS_WEBHOOK_SECRET: randomBytes(32).toString('base64url'),
  };
  const gatewayProcess = await startServerProcess({
    name: 'simulated payment gateway',
    nodeArgs: [path.join(import.meta.dirname, 'payment-gateway.ts')],
    env: {
      ...process.env,
      ...secrets,
      NODE_ENV: 'production',
      KEEL_WEBHOOK_URL: `http://127.0.0.1:${keelPort}/telemedicine/payments/webhooks`,
    },
    readyPath: '/ready',
    readyTimeoutMs: 30_000,
  });
  return {
    process: gatewayProcess,
    keelEnvironment: { ...secrets, PAYMENTS_GATEWAY_URL: gatewayProcess.baseUrl },
  };
}

async function startBare(): Promise<ServerProcess> {
  return startServerProcess({
    name: 'bare fastify',
    nodeArgs: [path.join(import.meta.dirname, 'bare-server.ts')],
    env: { ...process.env, NODE_ENV: 'production' },
    readyPath: '/',
    readyTimeoutMs: 30_000,
  });
}

async function measure(
  server: ServerProcess,
  options: Options,
  connections: number,
  requests: Parameters<typeof measureLoad>[0]['requests'],
  overallRate?: number,
): Promise<Measurement> {
  const load = {
    url: server.baseUrl,
    connections,
    requests,
    ...(overallRate === undefined ? {} : { overallRate }),
  };
  await warmUp({ ...load, durationSeconds: options.warmupSeconds });
  // Keel's runs only: bare Fastify has no database.
  const databaseUrl = process.env.DATABASE_URL;
  const postgres =
    requests === undefined || databaseUrl === undefined ? undefined : await observePostgres(databaseUrl);
  const before = await server.readCpu();
  const loaderBefore = process.cpuUsage();
  const startedAt = performance.now();
  const result = await measureLoad({ ...load, durationSeconds: options.durationSeconds });
  const elapsedMs = performance.now() - startedAt;
  const loaderUsage = process.cpuUsage(loaderBefore);
  const after = await server.readCpu();
  const postgresObservation = await postgres?.stop(result.totalResponses);
  const serverCpuMs = before && after ? after.cpuMs - before.cpuMs : undefined;
  return {
    ...result,
    serverCpuPercent: serverCpuMs === undefined ? undefined : (serverCpuMs / elapsedMs) * 100,
    serverCpuMicrosPerRequest:
      serverCpuMs === undefined || result.totalResponses === 0
        ? undefined
        : (serverCpuMs * 1000) / result.totalResponses,
    loaderCpuPercent: ((loaderUsage.user + loaderUsage.system) / 1000 / elapsedMs) * 100,
    memory: await server.readMemory(),
    ...(postgresObservation === undefined ? {} : { postgres: postgresObservation }),
  };
}

async function newProfiles(pid: number): Promise<string[]> {
  try {
    const files = await readdir(PROFILE_DIR);
    return files
      .filter((file) => file.endsWith('.cpuprofile') && file.includes(`.${pid}.`))
      .map((file) => path.join(PROFILE_DIR, file));
  } catch {
    return [];
  }
}

function describePostgres(observation: PostgresObservation): string {
  const cpu = observation.cpuMicrosPerResponse;
  const lines = [
    `    postgres: ${cpu === undefined ? 'CPU not readable' : `${cpu.toFixed(0)} µs CPU per response`}; ` +
      `sessions over ${observation.samples} samples, most frequent:`,
    ...observation.topWaits
      .slice(0, 5)
      .map((entry) => `      ${String(entry.samples).padStart(5)}  ${entry.wait}  ${entry.statement}`),
  ];
  return lines.join('\n');
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const environment: RunEnvironment = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverageAtStart: os.loadavg()[0] ?? 0,
    database: process.env.DATABASE_URL ? 'external' : 'embedded',
    databasePoolMax: process.env.DATABASE_POOL_MAX ?? 'default',
    durationSeconds: options.durationSeconds,
    warmupSeconds: options.warmupSeconds,
    connections: options.connections,
    isProfiled: options.isProfiled,
  };
  progress(
    `commit ${environment.commit}, node ${environment.node}, ${environment.cores} cores, load ${environment.loadAverageAtStart.toFixed(2)}, ` +
      `${environment.database} database, ${options.durationSeconds}s + ${options.warmupSeconds}s warm-up per run`,
  );

  progress('measuring bare fastify (the ceiling)');
  const bareServer = await startBare();
  const bare: Measurement[] = [];
  try {
    for (const connections of options.connections) {
      bare.push(await measure(bareServer, options, connections, undefined));
      progress(`  bare @${connections}: ${bare.at(-1)?.requestsPerSecond.toFixed(0)} req/s`);
    }
  } finally {
    await bareServer.stop();
  }

  const allRows: ScenarioRow[] = [];
  const failures: string[] = [];
  for (const scenario of options.scenarios) {
    progress(
      `${scenario.name}: starting ${SERVER_NAME[scenario.server ?? 'keel']}${options.isProfiled ? ' under --cpu-prof' : ''}`,
    );
    const { keel: server, gateway } = await startKeel(options.isProfiled, scenario);
    const rows: ScenarioRow[] = [];
    let observations: Record<string, number> = {};
    let logLinesDuringRun = 0;
    // When the load ran, so the profile summary leaves out seeding and shutdown.
    let loadStartedAt = Number.NaN;
    let loadEndedAt = Number.NaN;
    let stoppedAt = Number.NaN;
    try {
      progress(`${scenario.name}: preparing`);
      const context: ScenarioContext = {
        credentials: () => benchCredentials(server.baseUrl, ADMIN_FILE),
        adminFile: ADMIN_FILE,
      };
      const prepared = await scenario.prepare(server.baseUrl, context);
      loadStartedAt = performance.now();
      for (const connections of options.connections) {
        const measurement = await measure(
          server,
          options,
          connections,
          prepared.requests,
          scenario.overallRate,
        );
        const exit = server.exitStatus();
        if (exit) {
          // Numbers from a run during which the server went away are not a measurement of it.
          progress(
            `${scenario.name}: the keel server exited during the run (code ${exit.code}, signal ${exit.signal}); ` +
              'skipping the rest of this scenario',
          );
          for (const line of server.recentOutput().slice(-10)) progress(`  | ${line}`);
          failures.push(`${scenario.name}: server exited during the @${connections} run`);
          break;
        }
        const bareAtConnections = bare.find((entry) => entry.connections === connections);
        const bareRequestsPerSecond = bareAtConnections?.requestsPerSecond ?? Number.NaN;
        rows.push({
          ...measurement,
          scenario: scenario.name,
          bareRequestsPerSecond,
          bareServerCpuMicrosPerRequest: bareAtConnections?.serverCpuMicrosPerRequest,
          ratioToBare: measurement.requestsPerSecond / bareRequestsPerSecond,
        });
        progress(
          `  ${scenario.name} @${connections}: ${measurement.requestsPerSecond.toFixed(0)} req/s, ` +
            `p99 ${measurement.latencyMs.p99.toFixed(1)} ms, non-2xx ${measurement.non2xx}, errors ${measurement.errors}`,
        );
        if (measurement.postgres) progress(describePostgres(measurement.postgres));
      }
      loadEndedAt = performance.now();
      observations = await prepared.observations();
    } finally {
      logLinesDuringRun = server.logLinesAfterReady();
      const wasRunning = server.exitStatus() === undefined;
      const exit = await server.stop();
      stoppedAt = performance.now();
      await gateway?.stop();
      if (wasRunning && exit.code !== 0) {
        progress(
          `${scenario.name}: keel server exited with code ${exit.code} (signal ${exit.signal}) on SIGTERM`,
        );
      }
    }
    const logLinesAtShutdown = server.logLinesAfterReady() - logLinesDuringRun;
    if (logLinesDuringRun + logLinesAtShutdown > 0) {
      progress(
        `${scenario.name}: the server logged ${logLinesDuringRun} line(s) at warn or above during the run ` +
          `and ${logLinesAtShutdown} while shutting down; the last few:`,
      );
      for (const line of server.recentOutput().slice(-3)) progress(`  | ${truncate(line, 400)}`);
    }
    const profiles = options.isProfiled ? await newProfiles(server.pid) : [];
    const report: ScenarioReport = {
      scenario: scenario.name,
      description: scenario.description,
      environment,
      bare,
      results: rows,
      observations,
      serverLogLines: { duringRun: logLinesDuringRun, atShutdown: logLinesAtShutdown },
      profile: profiles[0] ? path.relative(ROOT, profiles[0]) : undefined,
    };
    allRows.push(...rows);
    if (options.isProfiled) {
      // The profiler costs the server CPU: profiled numbers are not recorded as results.
      const profile = profiles[0];
      if (profile) {
        const window = Number.isNaN(loadEndedAt)
          ? undefined
          : { fromMsBeforeEnd: stoppedAt - loadStartedAt, toMsBeforeEnd: stoppedAt - loadEndedAt };
        const summary = formatSummary(await summariseProfile(profile, window), 20);
        await writeFile(`${profile}.summary.txt`, `${summary}\n`);
        progress(
          `${scenario.name}: CPU profile written to ${path.relative(ROOT, profile)} (summary: .summary.txt)`,
        );
        process.stderr.write(`${summary}\n`);
      } else {
        progress(
          `${scenario.name}: no .cpuprofile for pid ${server.pid} in ${path.relative(ROOT, PROFILE_DIR)}`,
        );
      }
    } else {
      const note = [`${environment.database} db, pool ${environment.databasePoolMax}`, options.note];
      await writeScenarioReport(report);
      await appendResultRows(report, note.filter(Boolean).join('; '));
    }
  }

  process.stdout.write(`\n${printTable(allRows, bare)}\n\n`);
  const results = path.relative(ROOT, RESULTS_DIR);
  process.stdout.write(
    'p50/p95/p99 are ranked over every response of the measured run. ' +
      (options.isProfiled
        ? `Profiled run: numbers not recorded; profiles in ${path.relative(ROOT, PROFILE_DIR)}/\n`
        : `Results: ${results}/<scenario>.json and ${results}/README.md\n`),
  );
  if (failures.length > 0) {
    process.stderr.write(
      `bench: incomplete run:\n${failures.map((failure) => `  - ${failure}`).join('\n')}\n`,
    );
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  if (error instanceof ServerStartError) {
    process.stderr.write(`bench: ${error.message}\n`);
    for (const line of error.output) process.stderr.write(`  | ${line}\n`);
  } else {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
});
