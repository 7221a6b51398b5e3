import { existsSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LoadResult } from './load.ts';
import type { PostgresObservation } from './postgres-observer.ts';
import type { MemoryReading } from './server-process.ts';

export type RunEnvironment = {
  date: string;
  commit: string;
  node: string;
  cores: number;
  cpuModel: string;
  /** 1-minute load average when the run started: a busy machine makes every number lower. */
  loadAverageAtStart: number;
  database: 'external' | 'embedded';
  databasePoolMax: string;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number[];
  isProfiled: boolean;
};

export type Measurement = LoadResult & {
  /** Server process CPU over the measured run, in % of one core (200% = both cores of a 2-core box). */
  serverCpuPercent: number | undefined;
  /**
   * Server CPU time per response. On a shared machine req/s moves with the
   * neighbours' load; the CPU each request costs the server moves much less.
   */
  serverCpuMicrosPerRequest: number | undefined;
  /** The load generator (this process) runs on the same cores: when it nears 100% it is the limit. */
  loaderCpuPercent: number;
  memory: MemoryReading | undefined;
  /** What PostgreSQL waited on and spent during the run (external database, Keel's runs only). */
  postgres?: PostgresObservation;
};

export type ScenarioRow = Measurement & {
  scenario: string;
  bareRequestsPerSecond: number;
  bareServerCpuMicrosPerRequest: number | undefined;
  ratioToBare: number;
};

export type ScenarioReport = {
  scenario: string;
  description: string;
  environment: RunEnvironment;
  bare: Measurement[];
  results: ScenarioRow[];
  observations: Record<string, number>;
  /** Lines the server wrote at LOG_LEVEL=warn: during the measured runs, and after SIGTERM. */
  serverLogLines: { duringRun: number; atShutdown: number };
  profile: string | undefined;
};

export const RESULTS_DIR = path.join(import.meta.dirname, 'results');

const RESULTS_README_HEADER = `# Benchmark results

One row per (scenario, connection count) per run of \`npm run bench\`, newest last.
Each run also writes \`<scenario>.json\` here with every number (latency breakdown,
status codes, bare-Fastify measurements, environment).

Columns:

- **date / commit**: when, and \`git rev-parse --short HEAD\` at the time.
- **conns**: concurrent keep-alive connections held by autocannon.
- **req/s**: mean of autocannon's per-second response counts over the measured run (warm-up excluded).
- **bare req/s**: the same measurement, same run, same connections, against a plain Fastify route
  (\`bench/bare-server.ts\`): the ceiling of this machine.
- **ratio**: req/s divided by bare req/s.
- **p50 / p95 / p99**: response latency in ms, ranked by the harness over every response of the
  measured run (autocannon has no p95; its own p97.5 is in the JSON).
- **non-2xx / errors**: responses with another status; connection errors and timeouts.
- **CPU %**: server process CPU during the measured run, % of one core (200% = both cores of a 2-core box).
- **CPU µs/req / bare µs/req**: server CPU time per response, for Keel and for bare Fastify. It moves far less
  than req/s when the machine is shared, so it is the number to compare between noisy runs.
- **RSS**: server resident memory (VmRSS) after the run, MB.
- **cores / load**: machine cores and 1-minute load average at the start (a busy machine lowers everything).

Targets (at 100 connections, zero errors and zero non-2xx):

- \`user-metadata-get\` (GET /user/{id}): ≥ 35% of bare req/s, p99 < 50 ms.
- \`user-metadata-create\` (POST /user): ≥ 1,500 req/s, p99 < 150 ms.

Benchmarks report; they do not fail a build. Numbers from a shared or busy machine are
preliminary: compare ratios, not absolute req/s, across machines.

| date | commit | scenario | conns | req/s | bare req/s | ratio | p50 ms | p95 ms | p99 ms | non-2xx | errors | CPU % | CPU µs/req | bare µs/req | RSS MB | node | cores / load | note |
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |
`;

function format(value: number | undefined, digits = 1): string {
  return value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

function megabytes(memory: MemoryReading | undefined): string {
  return memory ? (memory.rssKb / 1024).toFixed(0) : '–';
}

export function printTable(rows: ScenarioRow[], bare: Measurement[]): string {
  const header = [
    'scenario',
    'conns',
    'req/s',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'non-2xx',
    'errors',
    'ratio',
    'CPU %',
    'CPU µs/req',
    'loader %',
    'RSS MB',
  ];
  const body = [
    ...bare.map((measurement) => [
      'bare fastify',
      String(measurement.connections),
      format(measurement.requestsPerSecond, 0),
      format(measurement.latencyMs.p50, 2),
      format(measurement.latencyMs.p95, 2),
      format(measurement.latencyMs.p99, 2),
      String(measurement.non2xx),
      String(measurement.errors),
      '1.00',
      format(measurement.serverCpuPercent, 0),
      format(measurement.serverCpuMicrosPerRequest, 0),
      format(measurement.loaderCpuPercent, 0),
      megabytes(measurement.memory),
    ]),
    ...rows.map((row) => [
      row.scenario,
      String(row.connections),
      format(row.requestsPerSecond, 0),
      format(row.latencyMs.p50, 2),
      format(row.latencyMs.p95, 2),
      format(row.latencyMs.p99, 2),
      String(row.non2xx),
      String(row.errors),
      format(row.ratioToBare, 2),
      format(row.serverCpuPercent, 0),
      format(row.serverCpuMicrosPerRequest, 0),
      format(row.loaderCpuPercent, 0),
      megabytes(row.memory),
    ]),
  ];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ');
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n');
}

export async function writeScenarioReport(report: ScenarioReport): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${report.scenario}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

export async function appendResultRows(report: ScenarioReport, note: string): Promise<string> {
  const file = path.join(RESULTS_DIR, 'README.md');
  if (!existsSync(file)) await writeFile(file, RESULTS_README_HEADER);
  const environment = report.environment;
  const rows = report.results.map((row) =>
    [
      '',
      environment.date.slice(0, 16).replace('T', ' '),
      environment.commit,
      row.scenario,
      String(row.connections),
      format(row.requestsPerSecond, 0),
      format(row.bareRequestsPerSecond, 0),
      format(row.ratioToBare, 2),
      format(row.latencyMs.p50, 1),
      format(row.latencyMs.p95, 1),
      format(row.latencyMs.p99, 1),
      String(row.non2xx),
      String(row.errors),
      format(row.serverCpuPercent, 0),
      format(row.serverCpuMicrosPerRequest, 0),
      format(row.bareServerCpuMicrosPerRequest, 0),
      megabytes(row.memory),
      environment.node,
      `${environment.cores} / ${environment.loadAverageAtStart.toFixed(1)}`,
      note,
      '',
    ]
      .join(' | ')
      .trim(),
  );
  await appendFile(file, `${rows.join('\n')}\n`);
  return file;
}
