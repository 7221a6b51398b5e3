import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
// The file, not the testing kit's index: that one loads Vitest.
import { findFreePort } from '../packages/platform/src/testing/free-port.ts';

export { findFreePort };

export type ExitStatus = { code: number | null; signal: NodeJS.Signals | null };

export type MemoryReading = { rssKb: number; peakRssKb: number };

/** Server CPU time in milliseconds (user + system), read from /proc. */
export type CpuReading = { cpuMs: number };

export type ServerProcess = {
  name: string;
  pid: number;
  baseUrl: string;
  /** Lines the process wrote to stdout/stderr after it became ready (warn level and above for Keel). */
  logLinesAfterReady: () => number;
  recentOutput: () => string[];
  readMemory: () => Promise<MemoryReading | undefined>;
  readCpu: () => Promise<CpuReading | undefined>;
  /** Set once the process has exited, whether stopped by the harness or not. */
  exitStatus: () => ExitStatus | undefined;
  stop: () => Promise<ExitStatus>;
};

export class ServerStartError extends Error {
  readonly output: string[];

  constructor(message: string, output: string[]) {
    super(message);
    this.name = 'ServerStartError';
    this.output = output;
  }
}

const OUTPUT_TAIL_LINES = 40;
const STOP_TIMEOUT_MS = 20_000;

/**
 * Spawns `node <args>` with PORT set, and resolves once `GET <readyPath>`
 * answers 200. Rejects with ServerStartError (carrying the tail of the
 * child's output) if the child exits first or does not get ready in time.
 */
export async function startServerProcess(options: {
  name: string;
  nodeArgs: string[];
  env: NodeJS.ProcessEnv;
  readyPath: string;
  readyTimeoutMs: number;
  /** A port chosen beforehand (another process must know it first); a free one otherwise. */
  port?: number;
}): Promise<ServerProcess> {
  const port = options.port ?? (await findFreePort());
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, options.nodeArgs, {
    env: { ...options.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const tail: string[] = [];
  let isReady = false;
  let linesAfterReady = 0;
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      if (isReady) linesAfterReady += 1;
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let exit: ExitStatus | undefined;
  void exited.then((result) => {
    exit = result;
  });

  const deadline = Date.now() + options.readyTimeoutMs;
  while (!isReady) {
    if (exit) {
      throw new ServerStartError(
        `${options.name} exited before it was ready (code ${exit.code}, signal ${exit.signal})`,
        [...tail],
      );
    }
    if (Date.now() > deadline) {
      await terminate(child, exited);
      throw new ServerStartError(
        `${options.name} was not ready within ${options.readyTimeoutMs} ms (${options.readyPath})`,
        [...tail],
      );
    }
    isReady = await isAnswering200(`${baseUrl}${options.readyPath}`);
    if (!isReady) await sleep(200);
  }

  const pid = child.pid;
  if (pid === undefined) throw new ServerStartError(`${options.name} has no pid`, [...tail]);

  return {
    name: options.name,
    pid,
    baseUrl,
    logLinesAfterReady: () => linesAfterReady,
    recentOutput: () => [...tail],
    readMemory: () => readMemory(pid),
    readCpu: () => readCpu(pid),
    exitStatus: () => exit,
    stop: () => terminate(child, exited),
  };
}

async function isAnswering200(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

async function terminate(child: ChildProcess, exited: Promise<ExitStatus>): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  // Keel drains in-flight requests and closes its pool on SIGTERM; a child
  // that hangs past that would leave a stray process behind the benchmark.
  const force = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  try {
    return await exited;
  } finally {
    clearTimeout(force);
  }
}

/** VmRSS and VmHWM (peak RSS) from /proc/<pid>/status; undefined off Linux. */
async function readMemory(pid: number): Promise<MemoryReading | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const rssKb = field('VmRSS');
    const peakRssKb = field('VmHWM');
    return Number.isFinite(rssKb) ? { rssKb, peakRssKb } : undefined;
  } catch {
    return undefined;
  }
}

// USER_HZ is 100 on every mainstream Linux build; /proc reports CPU in those ticks.
const CLOCK_TICKS_PER_SECOND = 100;

async function readCpu(pid: number): Promise<CpuReading | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields are counted after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) return undefined;
    return { cpuMs: ((userTicks + systemTicks) * 1000) / CLOCK_TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}
