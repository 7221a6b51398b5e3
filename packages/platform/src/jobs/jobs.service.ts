import { fromKysely, type JobResult, type JobWithMetadata, PgBoss } from 'pg-boss';
import type { AnyTransaction } from '../db/index.ts';
import { isAppError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { Registry } from '../observability/metrics.ts';
import { JobsError } from './jobs.errors.ts';
import { createJobMetrics, type JobFailureOutcome } from './jobs.metrics.ts';
import {
  deadLetterQueueName,
  describeJobFailure,
  isRetryableJobError,
  type JobFailureOutput,
  type JobQueueDefinition,
  type ResolvedJobQueue,
  resolveJobQueue,
} from './jobs.ts';

export type JobsOptions = {
  connectionString: string;
  logger: Logger;
  /** The Postgres schema pg-boss installs into and migrates on `start()`. */
  schema?: string;
  /** Connections in pg-boss's own pool (workers, sends outside a transaction, maintenance). */
  poolMax?: number;
  applicationName?: string;
  /** How often an idle worker looks for jobs, >= 0.5. */
  pollingIntervalSeconds?: number;
  /** How often queue counts (the depth gauge) are refreshed and maintenance runs, >= 1. */
  monitorIntervalSeconds?: number;
  /**
   * False for a process that only sends: `register` creates the queues but
   * starts no worker, and pg-boss's maintenance and cron passes are left to
   * the processes that work.
   */
  isWorkerEnabled?: boolean;
};

export type SendJobOptions = {
  /** With a `short`, `singleton`, `stately` or `exclusive` queue: the key the policy counts per. */
  singletonKey?: string;
  /** Defer the first attempt. */
  startAfterSeconds?: number;
};

export type ScheduleJobOptions = {
  /** IANA zone the cron expression is read in; UTC by default. */
  tz?: string;
};

/** A job waiting in a dead-letter queue. */
export type DeadLetter = {
  /** Its id in the dead-letter queue: pass it to `replayDeadLetter`. */
  id: string;
  queue: string;
  /** The id the failed job had in `queue`. */
  failedJobId: string | null;
  /** Retries the failed job had used (0: failed on its first attempt, or skipped retries). */
  retryCount: number | null;
  error: JobFailureOutput | null;
  /** When it was dead-lettered. */
  deadLetteredAt: Date;
  /** When the original job was first sent. */
  sentAt: Date | null;
  /** The payload. May hold personal data: show it only to callers allowed to see it. */
  data: unknown;
};

export type Jobs = {
  /** Installs or migrates the pg-boss schema and starts maintenance and the cron scheduler. */
  start(): Promise<void>;
  /** Creates (or updates) the queue and its dead-letter queue, then starts its workers. */
  register<Payload>(definition: JobQueueDefinition<Payload>): Promise<void>;
  /** Enqueues a job; `null` when the queue policy dropped it as a duplicate. */
  send<Payload extends object>(name: string, data: Payload, options?: SendJobOptions): Promise<string | null>;
  /**
   * Enqueues a job inside the caller's Kysely transaction: it exists if and only if the
   * transaction commits. `null` when the queue policy dropped it as a duplicate.
   */
  sendWith<Payload extends object>(
    trx: AnyTransaction,
    name: string,
    data: Payload,
    options?: SendJobOptions,
  ): Promise<string | null>;
  /**
   * Enqueues one job per item of `data` inside the caller's Kysely transaction, in one statement
   * (none for an empty array): they exist if and only if the transaction commits. Each job gets
   * the queue's settings (retries, expiry, dead-letter queue), as `sendWith` does; a job the queue
   * policy drops as a duplicate is skipped without a word. Returns nothing: no caller needs the ids,
   * and with skipped jobs they could not be matched to `data` anyway.
   *
   * @example
   * await jobs.sendManyWith(trx, 'orders.send-notification', inserted.map((eventId) => ({ eventId })));
   */
  sendManyWith<Payload extends object>(
    trx: AnyTransaction,
    name: string,
    data: readonly Payload[],
  ): Promise<void>;
  /** Sends a job to `name` on a cron expression (one per process fleet, not per process). */
  schedule(name: string, cron: string, data?: object, options?: ScheduleJobOptions): Promise<void>;
  unschedule(name: string): Promise<void>;
  /** Oldest first. `limit` 1-1000. */
  listDeadLetters(name: string, options: { limit: number }): Promise<DeadLetter[]>;
  /** Moves one dead letter back to its queue as a fresh job with a full retry budget. */
  replayDeadLetter(name: string, deadLetterId: string): Promise<void>;
  /**
   * Stops fetching, waits up to `timeoutMs` (at least 1000) for running jobs to finish, then
   * fails the rest so they are retried (each such job uses up one retry), and closes the pool.
   */
  stop(options: { timeoutMs: number }): Promise<void>;
  registerMetrics(registry: Registry): void;
};

/** How long a dead letter waits to be replayed before pg-boss deletes it. */
export const DEAD_LETTER_RETENTION_SECONDS = 30 * 24 * 3600;
const DEFAULT_EXPIRE_IN_SECONDS = 15 * 60;
const MAX_DEAD_LETTER_PAGE = 1000;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type State = 'created' | 'running' | 'stopping' | 'stopped';

/**
 * Named job queues on pg-boss in the application's own Postgres: retries with backoff,
 * dead-letter queues, singleton policies, cron schedules, transactional enqueue and a
 * graceful stop.
 *
 * @example
 * const jobs = createJobs({ connectionString: config.DATABASE_URL, logger });
 * await jobs.start();
 * await jobs.register<{ stockItemId: string }>({
 *   name: 'orders.low-stock-alert',
 *   handler: async (job) => raiseAlert(job.data.stockItemId),
 * });
 * await database.typed<OrdersTables>().transaction(async (trx) => {
 *   await adjustStock(trx, item);
 *   await jobs.sendWith(trx, 'orders.low-stock-alert', { stockItemId: item.id });
 * });
 */
export function createJobs(options: JobsOptions): Jobs {
  const { logger } = options;
  const schema = options.schema ?? 'pgboss';
  const isWorkerEnabled = options.isWorkerEnabled ?? true;
  const pollingIntervalSeconds = options.pollingIntervalSeconds ?? 2;
  const monitorIntervalSeconds = options.monitorIntervalSeconds ?? 60;
  const boss = new PgBoss({
    connectionString: options.connectionString,
    schema,
    max: options.poolMax ?? 10,
    application_name: options.applicationName ?? 'keel-jobs',
    monitorIntervalSeconds,
    superviseIntervalSeconds: monitorIntervalSeconds,
    ...(isWorkerEnabled ? {} : { supervise: false, schedule: false }),
  });
  // An 'error' event without a listener would crash the process; pg-boss keeps polling after one.
  boss.on('error', (error) => {
    // Settling a job whose handler outlived the stop deadline fails once the pool is closed; the
    // job was already returned for retry, so that is expected noise, not an incident.
    const log = state === 'running' ? logger.error.bind(logger) : logger.warn.bind(logger);
    log({ err: { message: error.message }, state }, 'job queue error');
  });
  boss.on('warning', (warning) =>
    logger.warn({ data: warning.data }, `job queue warning: ${warning.message}`),
  );

  const metrics = createJobMetrics();
  const queues = new Map<string, ResolvedJobQueue<never>>();
  const inFlight = new Map<string, string>();
  const returnedAtStop: { jobId: string; queue: string }[] = [];
  let state: State = 'created';

  function assertRunning(operation: string): void {
    if (state !== 'running')
      throw new JobsError('unavailable', 'jobs.not_running', `Cannot ${operation}: jobs are ${state}`);
  }

  async function runJob<Payload>(
    queue: ResolvedJobQueue<Payload>,
    job: JobWithMetadata<Payload>,
  ): Promise<JobResult> {
    const startedAt = performance.now();
    try {
      await queue.handler({
        id: job.id,
        name: job.name,
        data: job.data,
        retryCount: job.retryCount,
        signal: job.signal,
      });
      if (job.signal.aborted) {
        // pg-boss took the job back while the handler ran (stop deadline, expiry) and has already
        // failed it for retry; the completion it attempts next finds nothing to settle.
        if (state === 'stopping') returnedAtStop.push({ jobId: job.id, queue: queue.name });
        logger.warn(
          { queue: queue.name, jobId: job.id },
          'job finished after it was taken back; it runs again',
        );
        return { id: job.id, status: 'completed' };
      }
      metrics.completed.inc({ queue: queue.name });
      return { id: job.id, status: 'completed' };
    } catch (error) {
      const isRetryable = isRetryableJobError(error);
      // retryLimit is a queue setting and sends cannot override it, so the queue's value is the job's.
      const outcome: JobFailureOutcome =
        isRetryable && job.retryCount < queue.retryLimit
          ? 'retry'
          : queue.deadLetter
            ? 'dead_letter'
            : 'failed';
      metrics.failed.inc({ queue: queue.name, outcome });
      const output = describeJobFailure(error);
      // Never the payload, which may hold personal data, nor an AppError's detail, which often
      // quotes it. Other errors carry the code's own words and a stack, needed to find the bug.
      logger.warn(
        {
          queue: queue.name,
          jobId: job.id,
          retryCount: job.retryCount,
          retryLimit: queue.retryLimit,
          outcome,
          err: isAppError(error)
            ? { kind: error.kind, code: error.code }
            : { ...output, stack: stackOf(error) },
        },
        `job failed (${outcome})`,
      );
      // 'deadletter' settles the job as failed for good at once, skipping the retries left;
      // 'failed' lets pg-boss retry it, or dead-letter it once retries are used up.
      return { id: job.id, status: isRetryable ? 'failed' : 'deadletter', output };
    } finally {
      inFlight.delete(job.id);
      metrics.duration.observe({ queue: queue.name }, (performance.now() - startedAt) / 1000);
    }
  }

  /**
   * Runs one fetch's jobs in order. A job whose signal is already aborted when its turn comes was
   * taken back by pg-boss (the stop deadline or the batch's expiry) and failed for retry: it is not
   * started, and leaving it out of the results keeps it failed.
   */
  async function runFetched<Payload>(
    queue: ResolvedJobQueue<Payload>,
    fetched: readonly JobWithMetadata<Payload>[],
  ): Promise<JobResult[]> {
    // Claimed is in flight, started or not: a stop that takes these back lists them.
    for (const job of fetched) inFlight.set(job.id, queue.name);
    const results: JobResult[] = [];
    for (const job of fetched) {
      if (job.signal.aborted) {
        inFlight.delete(job.id);
        if (state === 'stopping') returnedAtStop.push({ jobId: job.id, queue: queue.name });
        continue;
      }
      results.push(await runJob(queue, job));
    }
    return results;
  }

  async function ensureQueue<Payload>(queue: ResolvedJobQueue<Payload>): Promise<void> {
    if (queue.deadLetterQueue !== undefined) {
      await boss.createQueue(queue.deadLetterQueue, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
    }
    const settings = {
      retryLimit: queue.retryLimit,
      retryDelay: queue.retryDelaySeconds,
      retryBackoff: queue.retryBackoff,
      expireInSeconds: queue.expireInSeconds ?? DEFAULT_EXPIRE_IN_SECONDS,
    };
    // create_queue ignores an existing queue, so a changed definition reaches it through the update.
    // Several processes may run both at once: each statement is idempotent.
    await boss.createQueue(queue.name, {
      ...settings,
      policy: queue.policy,
      ...(queue.retryDelayMaxSeconds === undefined ? {} : { retryDelayMax: queue.retryDelayMaxSeconds }),
      ...(queue.deadLetterQueue === undefined ? {} : { deadLetter: queue.deadLetterQueue }),
    });
    const existing = await boss.getQueue(queue.name);
    if (existing !== null && existing.policy !== queue.policy)
      logger.warn(
        { queue: queue.name, policy: existing.policy, wanted: queue.policy },
        'job queue keeps its original policy: pg-boss cannot change a policy, delete the queue to change it',
      );
    await boss.updateQueue(queue.name, {
      ...settings,
      retryDelayMax: queue.retryDelayMaxSeconds ?? null,
      deadLetter: queue.deadLetterQueue ?? null,
    });
  }

  async function readDepths(): Promise<ReadonlyMap<string, number>> {
    const depths = new Map<string, number>();
    if (state !== 'running') return depths;
    const names = [...queues.values()].flatMap((queue) =>
      queue.deadLetterQueue === undefined ? [queue.name] : [queue.name, queue.deadLetterQueue],
    );
    for (const name of names) {
      try {
        // Served from the counts pg-boss's monitor keeps on the queue row (one cheap read);
        // recounting the job table on every scrape from every process is what the cache avoids.
        const [stats] = await boss.getQueueStats(name);
        if (stats !== undefined) depths.set(name, stats.queuedCount);
      } catch (error) {
        // A failing scrape would hide every other metric; the gauge keeps its last value.
        logger.warn(
          { queue: name, err: { message: (error as Error).message } },
          'could not read job queue depth',
        );
      }
    }
    return depths;
  }

  async function send<Payload extends object>(
    name: string,
    data: Payload,
    sendOptions: SendJobOptions,
    trx?: AnyTransaction,
  ): Promise<string | null> {
    assertRunning(`send to ${name}`);
    return boss.send(name, data, {
      ...(sendOptions.singletonKey === undefined ? {} : { singletonKey: sendOptions.singletonKey }),
      ...(sendOptions.startAfterSeconds === undefined ? {} : { startAfter: sendOptions.startAfterSeconds }),
      ...(trx === undefined ? {} : { db: fromKysely(trx) }),
    });
  }

  return {
    async start() {
      if (state !== 'created')
        throw new JobsError('internal', 'jobs.not_running', `Jobs cannot start: ${state}`);
      await boss.start();
      state = 'running';
      logger.info({ schema, isWorkerEnabled }, 'jobs started');
    },

    async register(definition) {
      assertRunning(`register ${definition.name}`);
      const queue = resolveJobQueue(definition);
      if (queues.has(queue.name))
        throw new JobsError(
          'internal',
          'jobs.invalid_definition',
          `Job queue "${queue.name}" is registered twice`,
        );
      queues.set(queue.name, queue as ResolvedJobQueue<never>);
      await ensureQueue(queue);
      if (!isWorkerEnabled) return;
      // `concurrency` workers, each claiming up to `fetchSize` jobs and running them one at a time:
      // at most `concurrency` handlers run at once. A worker whose fetch came back full fetches
      // again at once (burst); only a short fetch waits out the poll interval. With one job per
      // fetch pg-boss would wait the interval after every job, capping a queue at
      // `concurrency / pollingIntervalSeconds` jobs per second however long its backlog.
      await boss.work<never>(
        queue.name,
        {
          batchSize: queue.fetchSize,
          burstWhenBatchFull: true,
          localConcurrency: queue.concurrency,
          pollingIntervalSeconds,
          includeMetadata: true,
          perJobResults: true,
        },
        (batch) => runFetched(queue, batch as JobWithMetadata<never>[]),
      );
    },

    send(name, data, sendOptions = {}) {
      return send(name, data, sendOptions);
    },

    sendWith(trx, name, data, sendOptions = {}) {
      return send(name, data, sendOptions, trx);
    },

    async sendManyWith(trx, name, data) {
      assertRunning(`send to ${name}`);
      if (data.length === 0) return;
      // insert() runs the statement send() runs (plans.insertJobs), for many rows: every setting a
      // job leaves unset is read from the queue's row in that statement, so these jobs retry, expire
      // and dead-letter as the registered definition says, like a send.
      await boss.insert(
        name,
        data.map((payload) => ({ data: payload })),
        { db: fromKysely(trx) },
      );
    },

    async schedule(name, cron, data, scheduleOptions = {}) {
      assertRunning(`schedule ${name}`);
      await boss.schedule(
        name,
        cron,
        data ?? null,
        scheduleOptions.tz === undefined ? {} : { tz: scheduleOptions.tz },
      );
    },

    async unschedule(name) {
      assertRunning(`unschedule ${name}`);
      await boss.unschedule(name);
    },

    async listDeadLetters(name, { limit }) {
      assertRunning(`list dead letters of ${name}`);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DEAD_LETTER_PAGE)
        throw new JobsError(
          'invalid',
          'jobs.invalid_limit',
          `limit must be an integer 1-${MAX_DEAD_LETTER_PAGE}`,
        );
      const deadLetterQueue = await getDeadLetterQueue(name);
      // Waiting jobs only: a dead letter that was replayed is deleted, and one that could not be
      // replayed is failed in place (see replayDeadLetter).
      const rows = await boss.findJobs<unknown>(deadLetterQueue, { queued: true });
      return rows
        .sort((left, right) => left.createdOn.getTime() - right.createdOn.getTime())
        .slice(0, limit)
        .map((row) => ({
          id: row.id,
          queue: name,
          failedJobId: row.sourceId,
          retryCount: row.sourceRetryCount,
          error: toFailureOutput(row.sourceOutput),
          deadLetteredAt: row.createdOn,
          sentAt: row.sourceCreatedOn,
          data: row.data,
        }));
    },

    async replayDeadLetter(name, deadLetterId) {
      assertRunning(`replay a dead letter of ${name}`);
      const deadLetterQueue = await getDeadLetterQueue(name);
      const notFound = new JobsError(
        'not_found',
        'jobs.dead_letter_not_found',
        `No dead letter ${deadLetterId} waits in ${deadLetterQueue}`,
      );
      if (!UUID_PATTERN.test(deadLetterId)) throw notFound;
      const moved = await boss.redrive(deadLetterQueue, { ids: [deadLetterId], destination: name, limit: 1 });
      if (moved === 1) {
        logger.info({ queue: name, deadLetterId }, 'dead letter replayed');
        return;
      }
      // redrive fails a job in place, with this reason, when its queue's policy refuses it.
      const [row] = await boss.findJobs<unknown>(deadLetterQueue, { id: deadLetterId });
      const reason = (row?.output as { reason?: unknown } | null | undefined)?.reason;
      if (reason === 'redrive_conflict') {
        // redrive leaves it failed in place, where neither listDeadLetters nor a later replay would
        // see it; put it back to waiting so it can be replayed once the other job has run.
        await boss.retry(deadLetterQueue, deadLetterId);
        throw new JobsError(
          'conflict',
          'jobs.replay_conflict',
          `Dead letter ${deadLetterId} collides with a job already in ${name} under its policy`,
        );
      }
      throw notFound;
    },

    async stop({ timeoutMs }) {
      if (state === 'stopping' || state === 'stopped') return;
      const wasRunning = state === 'running';
      state = 'stopping';
      logger.info({ inFlight: inFlight.size, timeoutMs }, 'jobs stopping: waiting for running jobs');
      // pg-boss stops fetching, polls until its workers are idle or the deadline passes, then fails
      // the jobs still running (they go back to their queue for retry) and aborts their signal.
      if (wasRunning) await boss.stop({ graceful: true, timeout: timeoutMs, close: true });
      state = 'stopped';
      // Handlers that noticed their aborted signal have returned already; the others are still running.
      const returned = [...returnedAtStop, ...[...inFlight].map(([jobId, queue]) => ({ jobId, queue }))];
      if (returned.length > 0)
        logger.warn(
          { jobs: returned },
          'jobs still running at the stop deadline were returned to their queues for retry',
        );
      logger.info('jobs stopped');
    },

    registerMetrics(registry) {
      metrics.register(registry, readDepths);
    },
  };

  async function getDeadLetterQueue(name: string): Promise<string> {
    const deadLetterQueue = deadLetterQueueName(name);
    const queue = await boss.getQueue(name);
    if (queue === null || queue.deadLetter !== deadLetterQueue)
      throw new JobsError(
        'not_found',
        'jobs.unknown_queue',
        `No job queue "${name}" with a dead-letter queue`,
      );
    return deadLetterQueue;
  }
}

function toFailureOutput(value: unknown): JobFailureOutput | null {
  if (value === null || typeof value !== 'object') return null;
  const { name, message, kind, code } = value as Record<string, unknown>;
  return {
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : JSON.stringify(value),
    ...(typeof kind === 'string' ? { kind } : {}),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

function stackOf(error: unknown): string | undefined {
  return error instanceof Error ? error.stack : undefined;
}
