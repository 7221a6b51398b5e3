import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';

/** What PostgreSQL did during a measured run (external database only). */
export type PostgresObservation = {
  /** `pg_stat_activity` samples of the benchmark database's sessions that are not idle. */
  samples: number;
  /**
   * The most frequent (wait, statement) pairs over all samples: `wait` is
   * `<wait_event_type>:<wait_event>` or `CPU` for an active session waiting on
   * nothing, with the session's state; `statement` is the query's first words
   * (the running one, or the last one of a session idle in a transaction).
   * `Client:ClientRead` on an open transaction is a transaction waiting for
   * the server process to send its next command.
   */
  topWaits: { wait: string; statement: string; samples: number }[];
  /** CPU of the machine's `postgres` processes per response (when the database runs on this machine). */
  cpuMicrosPerResponse: number | undefined;
};

export type PostgresObserver = { stop(responses: number): Promise<PostgresObservation> };

const SAMPLE_INTERVAL_MS = 200;
const TOP_WAITS = 8;
// Linux reports process CPU in clock ticks of 1/100 s (USER_HZ) on every
// mainstream architecture; Node has no sysconf to ask.
const MICROS_PER_TICK = 10_000;

/**
 * Samples the wait events of the benchmark database's sessions and the CPU of
 * local `postgres` processes while a run is measured: the server's own CPU
 * per request says nothing about the database's share of a saturated box, or
 * about what its transactions queue on (a lock, the WAL, the client).
 */
export async function observePostgres(connectionString: string): Promise<PostgresObserver> {
  const database = new URL(connectionString).pathname.slice(1);
  const client = new pg.Client({ connectionString, application_name: 'keel-bench-observer' });
  await client.connect();
  const counts = new Map<string, number>();
  let samples = 0;
  const cpuBefore = await postgresCpuTicks();
  let sampling: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(async () => {
      const result = await client.query<{ wait: string; statement: string }>(
        `select coalesce(wait_event_type || ':' || wait_event, 'CPU') || ' (' || state || ')' as wait,
                left(regexp_replace(query, '\\s+', ' ', 'g'), 60) as statement
         from pg_stat_activity
         where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'
           and state <> 'idle'`,
        [database],
      );
      samples += 1;
      for (const row of result.rows) {
        const key = `${row.wait}\t${row.statement}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    });
  }, SAMPLE_INTERVAL_MS);

  return {
    async stop(responses) {
      clearInterval(timer);
      await sampling;
      const cpuAfter = await postgresCpuTicks();
      await client.end();
      const topWaits = [...counts]
        .sort((left, right) => right[1] - left[1])
        .slice(0, TOP_WAITS)
        .map(([key, count]) => {
          const [wait = '', statement = ''] = key.split('\t');
          return { wait, statement, samples: count };
        });
      const cpuMicros =
        cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuDelta(cpuBefore, cpuAfter);
      return {
        samples,
        topWaits,
        cpuMicrosPerResponse: cpuMicros === undefined || responses === 0 ? undefined : cpuMicros / responses,
      };
    },
  };
}

/** Ticks of every local process named postgres, by pid (undefined without /proc). */
async function postgresCpuTicks(): Promise<Map<string, number> | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  const ticks = new Map<string, number>();
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!name.startsWith('postgres')) continue;
      // Fields after the name: state is the 1st, utime the 12th, stime the 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // The process ended between listing and reading.
    }
  }
  return ticks;
}

function cpuDelta(before: Map<string, number>, after: Map<string, number>): number {
  let ticks = 0;
  // Backends that exited during the run are missed; the pool keeps its connections open.
  for (const [pid, total] of after) ticks += total - (before.get(pid) ?? 0);
  return ticks * MICROS_PER_TICK;
}
