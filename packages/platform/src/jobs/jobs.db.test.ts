import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { sql } from '../db/index.ts';
import { AppError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { Registry } from '../observability/metrics.ts';
import { createTestDatabase, type TestDatabase } from '../testing/index.ts';
import { JobsError } from './jobs.errors.ts';
import { createJobs, type Jobs, type JobsOptions } from './jobs.service.ts';
import { deadLetterQueueName, type JobContext, type JobQueueDefinition } from './jobs.ts';

type Payload = { orderId: string };

const WAIT = { timeout: 15_000, interval: 50 };

let testDb: TestDatabase;
let jobs: Jobs;
let producer: Jobs;
let inspector: PgBoss;
const registry = new Registry();
const logLines: Record<string, unknown>[] = [];
const started: Jobs[] = [];

function buildJobs(overrides: Partial<JobsOptions> = {}): Jobs {
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const instance = createJobs({
    connectionString: testDb.url,
    logger: createLogger({ level: 'info', destination }),
    pollingIntervalSeconds: 0.5,
    monitorIntervalSeconds: 1,
    poolMax: 4,
    ...overrides,
  });
  started.push(instance);
  return instance;
}

/** Queue names are unique per test, so tests share one pg-boss schema without seeing each other's jobs. */
function uniqueQueue(subject: string): string {
  return `test.${subject}-${randomBytes(4).toString('hex')}`;
}

function buildQueue(
  overrides: Partial<JobQueueDefinition<Payload>> & Pick<JobQueueDefinition<Payload>, 'handler'>,
): JobQueueDefinition<Payload> {
  return {
    name: uniqueQueue('queue'),
    retryLimit: 2,
    retryDelaySeconds: 0,
    retryBackoff: false,
    ...overrides,
  };
}

async function findJob(name: string, id: string) {
  const [job] = await inspector.findJobs<Payload>(name, { id });
  return job;
}

async function waitForState(name: string, id: string, state: string) {
  return vi.waitFor(async () => {
    const job = await findJob(name, id);
    expect(job?.state).toBe(state);
    if (job === undefined) throw new Error(`job ${id} not found`);
    return job;
  }, WAIT);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** One sample of a metric family; histograms name theirs `<family>_count`, `_sum`, `_bucket`. */
async function metricValue(
  family: string,
  labels: Record<string, string>,
  sample: string = family,
): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((candidate) => candidate.name === family);
  const values = (metric?.values ?? []) as {
    value: number;
    labels: Record<string, unknown>;
    metricName?: string;
  }[];
  return values.find(
    (value) =>
      (value.metricName ?? family) === sample &&
      Object.entries(labels).every(([key, expected]) => value.labels[key] === expected),
  )?.value;
}

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  jobs = buildJobs();
  await jobs.start();
  jobs.registerMetrics(registry);
  // A second process that only sends: its queues get no worker, so their jobs stay put.
  producer = buildJobs({ isWorkerEnabled: false });
  await producer.start();
  inspector = new PgBoss({ connectionString: testDb.url, supervise: false, schedule: false, migrate: false });
  inspector.on('error', () => {});
  await inspector.start();
});

afterAll(async () => {
  for (const instance of started) await instance.stop({ timeoutMs: 1000 });
  await inspector?.stop({ graceful: false });
  await testDb?.drop();
});

describe('jobs', () => {
  it('runs a sent job once and marks it completed', async () => {
    const seen: JobContext<Payload>[] = [];
    const queue = buildQueue({ handler: async (job) => void seen.push(job) });
    await jobs.register(queue);

    const id = await jobs.send(queue.name, { orderId: 'order-1' });

    expect(id).toEqual(expect.any(String));
    await waitForState(queue.name, id ?? '', 'completed');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ id, name: queue.name, data: { orderId: 'order-1' }, retryCount: 0 });
  });

  it('retries a job failing with kind unavailable after a growing backoff, then completes it', async () => {
    let attempts = 0;
    const failedAt: number[] = [];
    const queue = buildQueue({
      retryLimit: 3,
      retryDelaySeconds: 1,
      retryBackoff: true,
      handler: async () => {
        attempts += 1;
        if (attempts <= 2) {
          failedAt.push(Date.now());
          throw new AppError('unavailable', 'test.downstream_unavailable', 'try later');
        }
      },
    });
    await jobs.register(queue);
    const id = (await jobs.send(queue.name, { orderId: 'order-2' })) ?? '';

    // The delay each retry waits, read from the job row: start_after minus the moment the handler failed.
    const delaysMs: number[] = [];
    let previousStart: number | undefined;
    while (delaysMs.length < 2) {
      const job = await vi.waitFor(async () => {
        const current = await findJob(queue.name, id);
        expect(current?.state).toBe('retry');
        expect(current?.startedOn.getTime()).not.toBe(previousStart);
        if (current === undefined) throw new Error(`job ${id} not found`);
        return current;
      }, WAIT);
      previousStart = job.startedOn.getTime();
      delaysMs.push(job.startAfter.getTime() - (failedAt[delaysMs.length] ?? Number.NaN));
    }
    const completed = await waitForState(queue.name, id, 'completed');

    expect(attempts).toBe(3);
    expect(completed.retryCount).toBe(2);
    // Backoff with jitter: retry n waits between 2^(n-1) and 2^n times retryDelaySeconds, counted
    // from when pg-boss records the failure, a moment after the handler threw: the upper bounds
    // leave that moment 1.5 s on a busy machine.
    expect(delaysMs[0]).toBeGreaterThanOrEqual(1000);
    expect(delaysMs[0]).toBeLessThanOrEqual(2000 + 1500);
    expect(delaysMs[1]).toBeGreaterThanOrEqual(2000);
    expect(delaysMs[1]).toBeLessThanOrEqual(4000 + 1500);
  });

  it('dead-letters a job that still fails after its retry limit and lists it', async () => {
    let attempts = 0;
    const queue = buildQueue({
      retryLimit: 1,
      handler: async () => {
        attempts += 1;
        throw new Error('printer on fire');
      },
    });
    await jobs.register(queue);
    const id = (await jobs.send(queue.name, { orderId: 'order-3' })) ?? '';

    const [deadLetter] = await vi.waitFor(async () => {
      const letters = await jobs.listDeadLetters(queue.name, { limit: 10 });
      expect(letters).toHaveLength(1);
      return letters;
    }, WAIT);

    expect(attempts).toBe(2);
    expect((await findJob(queue.name, id))?.state).toBe('failed');
    expect(deadLetter).toMatchObject({
      queue: queue.name,
      failedJobId: id,
      retryCount: 1,
      error: { name: 'Error', message: 'printer on fire' },
      data: { orderId: 'order-3' },
    });
  });

  it('runs a replayed dead letter again with a fresh retry budget and removes it from the list', async () => {
    let isFixed = false;
    const completedRuns: JobContext<Payload>[] = [];
    const queue = buildQueue({
      retryLimit: 0,
      handler: async (job) => {
        if (!isFixed) throw new Error('not yet');
        completedRuns.push(job);
      },
    });
    await jobs.register(queue);
    await jobs.send(queue.name, { orderId: 'order-4' });
    const [deadLetter] = await vi.waitFor(async () => {
      const letters = await jobs.listDeadLetters(queue.name, { limit: 10 });
      expect(letters).toHaveLength(1);
      return letters;
    }, WAIT);

    isFixed = true;
    await jobs.replayDeadLetter(queue.name, deadLetter?.id ?? '');

    await vi.waitFor(() => expect(completedRuns).toHaveLength(1), WAIT);
    expect(completedRuns[0]).toMatchObject({ data: { orderId: 'order-4' }, retryCount: 0 });
    expect(await jobs.listDeadLetters(queue.name, { limit: 10 })).toEqual([]);
    await expect(jobs.replayDeadLetter(queue.name, deadLetter?.id ?? '')).rejects.toMatchObject({
      code: 'jobs.dead_letter_not_found',
      kind: 'not_found',
    });
  });

  it('rejects with jobs.replay_conflict and keeps the dead letter when the queue policy refuses the replay', async () => {
    const queue = buildQueue({
      policy: 'stately',
      retryLimit: 0,
      handler: async () => {
        throw new Error('fails once');
      },
    });
    await jobs.register(queue);
    await jobs.send(queue.name, { orderId: 'order-11' }, { singletonKey: 'outlet-9' });
    const [deadLetter] = await vi.waitFor(async () => {
      const letters = await jobs.listDeadLetters(queue.name, { limit: 10 });
      expect(letters).toHaveLength(1);
      return letters;
    }, WAIT);
    // Holds the one waiting slot stately allows for this key.
    await jobs.send(
      queue.name,
      { orderId: 'order-11b' },
      { singletonKey: 'outlet-9', startAfterSeconds: 3600 },
    );

    await expect(jobs.replayDeadLetter(queue.name, deadLetter?.id ?? '')).rejects.toMatchObject({
      code: 'jobs.replay_conflict',
      kind: 'conflict',
    });

    expect(await jobs.listDeadLetters(queue.name, { limit: 10 })).toEqual([
      expect.objectContaining({
        id: deadLetter?.id,
        error: expect.objectContaining({ message: 'fails once' }),
      }),
    ]);
  });

  it('dead-letters a job failing with kind invalid on its first attempt without retrying', async () => {
    let attempts = 0;
    const queue = buildQueue({
      retryLimit: 5,
      retryDelaySeconds: 1,
      handler: async () => {
        attempts += 1;
        throw new AppError('invalid', 'test.unknown_item', 'order order-secret-5 names no item');
      },
    });
    await jobs.register(queue);
    const id = (await jobs.send(queue.name, { orderId: 'order-secret-5' })) ?? '';

    const [deadLetter] = await vi.waitFor(async () => {
      const letters = await jobs.listDeadLetters(queue.name, { limit: 10 });
      expect(letters).toHaveLength(1);
      return letters;
    }, WAIT);

    expect(attempts).toBe(1);
    expect((await findJob(queue.name, id))?.state).toBe('failed');
    expect(deadLetter).toMatchObject({
      failedJobId: id,
      retryCount: 0,
      error: { kind: 'invalid', code: 'test.unknown_item' },
    });
    const failureLog = logLines.find((line) => line.jobId === id);
    expect(failureLog).toMatchObject({
      queue: queue.name,
      retryCount: 0,
      outcome: 'dead_letter',
      err: { kind: 'invalid', code: 'test.unknown_item' },
    });
    // Neither the payload nor an AppError's detail (which quotes it) reaches the log.
    expect(JSON.stringify(logLines)).not.toContain('order-secret-5');
  });

  it('keeps one waiting job when two sends share a singletonKey on a stately queue', async () => {
    const queue = buildQueue({ policy: 'stately', handler: async () => {} });
    await producer.register(queue);

    const first = await producer.send(queue.name, { orderId: 'order-6' }, { singletonKey: 'outlet-1' });
    const second = await producer.send(queue.name, { orderId: 'order-6b' }, { singletonKey: 'outlet-1' });
    const otherKey = await producer.send(queue.name, { orderId: 'order-6c' }, { singletonKey: 'outlet-2' });

    expect(first).toEqual(expect.any(String));
    expect(second).toBeNull();
    expect(otherKey).toEqual(expect.any(String));
    const waiting = await inspector.findJobs<Payload>(queue.name, { queued: true });
    expect(waiting.map((job) => job.data.orderId).sort()).toEqual(['order-6', 'order-6c']);
  });

  it('stores a cron schedule with its time zone and data, and removes it on unschedule', async () => {
    const queue = buildQueue({ handler: async () => {} });
    await jobs.register(queue);

    await jobs.schedule(queue.name, '* * * * *', { orderId: 'nightly' }, { tz: 'Europe/Berlin' });

    expect(await inspector.getSchedules(queue.name)).toEqual([
      expect.objectContaining({
        name: queue.name,
        cron: '* * * * *',
        timezone: 'Europe/Berlin',
        data: { orderId: 'nightly' },
      }),
    ]);
    await jobs.unschedule(queue.name);
    expect(await inspector.getSchedules(queue.name)).toEqual([]);
  });

  it('enqueues nothing when sendWith runs in a transaction that rolls back', async () => {
    const queue = buildQueue({ handler: async () => {} });
    await producer.register(queue);
    let enqueuedId: string | null = null;

    await expect(
      testDb.database.typed<Record<string, never>>().transaction(async (trx) => {
        enqueuedId = await producer.sendWith(trx, queue.name, { orderId: 'order-7' });
        throw new Error('business write failed');
      }),
    ).rejects.toThrow('business write failed');

    expect(enqueuedId).toEqual(expect.any(String));
    expect(await inspector.findJobs(queue.name)).toEqual([]);
  });

  it('enqueues the job when sendWith runs in a transaction that commits', async () => {
    const queue = buildQueue({ handler: async () => {} });
    await producer.register(queue);

    const id = await testDb.database
      .typed<Record<string, never>>()
      .transaction((trx) =>
        producer.sendWith(trx, queue.name, { orderId: 'order-8' }, { startAfterSeconds: 60 }),
      );

    const job = await findJob(queue.name, id ?? '');
    expect(job).toMatchObject({ state: 'created', data: { orderId: 'order-8' } });
    expect(job?.startAfter.getTime()).toBeGreaterThan(job?.createdOn.getTime() ?? 0);
  });

  it('enqueues nothing when sendManyWith runs in a transaction that rolls back', async () => {
    const queue = buildQueue({ handler: async () => {} });
    await producer.register(queue);

    await expect(
      testDb.database.typed<Record<string, never>>().transaction(async (trx) => {
        await producer.sendManyWith<Payload>(trx, queue.name, [
          { orderId: 'order-9' },
          { orderId: 'order-10' },
        ]);
        // Visible inside the transaction: the insert did run in it.
        const inside = await sql<{ count: number }>`
          select count(*)::int as count from pgboss.job where name = ${queue.name}`.execute(trx);
        expect(inside.rows).toEqual([{ count: 2 }]);
        throw new Error('business write failed');
      }),
    ).rejects.toThrow('business write failed');

    expect(await inspector.findJobs(queue.name)).toEqual([]);
  });

  it('enqueues one job per item with the settings a sent job gets when sendManyWith commits', async () => {
    const queue = buildQueue({
      retryLimit: 4,
      retryDelaySeconds: 3,
      retryBackoff: true,
      retryDelayMaxSeconds: 40,
      expireInSeconds: 120,
      handler: async () => {},
    });
    await producer.register(queue);

    await testDb.database
      .typed<Record<string, never>>()
      .transaction((trx) =>
        producer.sendManyWith<Payload>(trx, queue.name, [
          { orderId: 'order-11' },
          { orderId: 'order-12' },
          { orderId: 'order-13' },
        ]),
      );
    const sentId = await producer.send(queue.name, { orderId: 'order-sent' });

    const found = await inspector.findJobs<Payload>(queue.name);
    const settingsOf = (job: (typeof found)[number]) => ({
      state: job.state,
      retryLimit: job.retryLimit,
      retryDelay: job.retryDelay,
      retryBackoff: job.retryBackoff,
      retryDelayMax: job.retryDelayMax,
      expireInSeconds: job.expireInSeconds,
      deadLetter: job.deadLetter,
      policy: job.policy,
      priority: job.priority,
    });
    const sent = found.find((job) => job.id === sentId);
    const inserted = found.filter((job) => job.id !== sentId);
    expect(inserted.map((job) => job.data.orderId).sort()).toEqual(['order-11', 'order-12', 'order-13']);
    expect(sent === undefined ? undefined : settingsOf(sent)).toEqual({
      state: 'created',
      retryLimit: 4,
      retryDelay: 3,
      retryBackoff: true,
      retryDelayMax: 40,
      expireInSeconds: 120,
      deadLetter: deadLetterQueueName(queue.name),
      policy: 'standard',
      priority: 0,
    });
    for (const job of inserted) expect(settingsOf(job)).toEqual(sent === undefined ? {} : settingsOf(sent));
  });

  it('runs every job of sendManyWith with the registered handler', async () => {
    const seen: string[] = [];
    const queue = buildQueue({ handler: async (job) => void seen.push(job.data.orderId) });
    await jobs.register(queue);

    await testDb.database
      .typed<Record<string, never>>()
      .transaction((trx) =>
        jobs.sendManyWith<Payload>(trx, queue.name, [{ orderId: 'order-14' }, { orderId: 'order-15' }]),
      );

    await vi.waitFor(async () => {
      const found = await inspector.findJobs<Payload>(queue.name);
      expect(found.map((job) => job.state)).toEqual(['completed', 'completed']);
    }, WAIT);
    expect(seen.sort()).toEqual(['order-14', 'order-15']);
  });

  it('runs no statement when sendManyWith gets no items', async () => {
    const queue = buildQueue({ handler: async () => {} });
    await producer.register(queue);

    await testDb.database.typed<Record<string, never>>().transaction(async (trx) => {
      const executeQuery = vi.spyOn(trx, 'executeQuery');
      await producer.sendManyWith<Payload>(trx, queue.name, []);
      expect(executeQuery).not.toHaveBeenCalled();
    });
    expect(await inspector.findJobs(queue.name)).toEqual([]);
  });

  it('waits on stop for a running job to finish and completes it', async () => {
    const stopping = buildJobs();
    await stopping.start();
    const release = deferred();
    const running = deferred();
    const queue = buildQueue({
      handler: async () => {
        running.resolve();
        await release.promise;
      },
    });
    await stopping.register(queue);
    const id = (await stopping.send(queue.name, { orderId: 'order-9' })) ?? '';
    await running.promise;

    let isStopped = false;
    const stopped = stopping.stop({ timeoutMs: 20_000 }).then(() => {
      isStopped = true;
    });
    // Give a stop that does not wait the time to fail the job; a graceful one is still waiting.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(isStopped).toBe(false);
    expect((await findJob(queue.name, id))?.state).toBe('active');

    release.resolve();
    await stopped;

    expect((await findJob(queue.name, id))?.state).toBe('completed');
  });

  it('returns a job still running at the stop deadline to its queue for retry', async () => {
    const stopping = buildJobs();
    await stopping.start();
    const running = deferred();
    const queue = buildQueue({
      retryLimit: 2,
      handler: async (job) => {
        running.resolve();
        // Ends only when pg-boss takes the job back and aborts its signal.
        await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      },
    });
    await stopping.register(queue);
    const id = (await stopping.send(queue.name, { orderId: 'order-10' })) ?? '';
    await running.promise;

    await stopping.stop({ timeoutMs: 1000 });

    const job = await findJob(queue.name, id);
    expect(job?.state).toBe('retry');
    expect(logLines).toContainEqual(
      expect.objectContaining({ jobs: [{ jobId: id, queue: queue.name }], level: 'warn' }),
    );
  });

  it('drains a backlog without waiting the poll interval between jobs, never running more than concurrency at once', async () => {
    // A poll interval no test could wait out: only re-fetching after a full fetch drains this in time.
    const draining = buildJobs({ pollingIntervalSeconds: 600 });
    await draining.start();
    let running = 0;
    let mostRunning = 0;
    const ran: string[] = [];
    const queue = buildQueue({
      concurrency: 2,
      fetchSize: 3,
      handler: async (job) => {
        running += 1;
        mostRunning = Math.max(mostRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        ran.push(job.data.orderId);
        running -= 1;
      },
    });
    // The producer creates the queue; the backlog is there before any worker starts.
    await producer.register(queue);
    const ids = await Promise.all(
      Array.from({ length: 30 }, (_, index) => producer.send(queue.name, { orderId: `order-${index}` })),
    );
    await draining.register(queue);

    await vi.waitFor(() => expect(ran).toHaveLength(30), WAIT);
    for (const id of ids) expect((await findJob(queue.name, id ?? ''))?.state).toBe('completed');
    expect(new Set(ran).size).toBe(30);
    expect(mostRunning).toBe(2);
  });

  it('does not start the rest of a fetch that the stop deadline took back, and returns all of it for retry', async () => {
    const stopping = buildJobs({ pollingIntervalSeconds: 600 });
    await stopping.start();
    const started: string[] = [];
    const running = deferred();
    const queue = buildQueue({
      concurrency: 1,
      fetchSize: 3,
      handler: async (job) => {
        started.push(job.data.orderId);
        running.resolve();
        await new Promise((resolve) => job.signal.addEventListener('abort', resolve));
      },
    });
    await producer.register(queue);
    const ids = await Promise.all(
      ['order-a', 'order-b', 'order-c'].map((orderId) => producer.send(queue.name, { orderId })),
    );
    await stopping.register(queue);
    await running.promise;

    await stopping.stop({ timeoutMs: 1000 });

    expect(started).toHaveLength(1);
    for (const id of ids) expect((await findJob(queue.name, id ?? ''))?.state).toBe('retry');
    const returned = logLines.find(
      (line) =>
        Array.isArray(line.jobs) &&
        line.level === 'warn' &&
        (line.jobs as { queue: string }[]).some((job) => job.queue === queue.name),
    );
    const listed = (returned?.jobs ?? []) as { jobId: string }[];
    expect(new Set(listed.map((job) => job.jobId))).toEqual(new Set(ids));
  });

  it('exposes completed and failed counts, durations and queue depth as metrics', async () => {
    const queue = buildQueue({
      retryLimit: 0,
      handler: async (job) => {
        if (job.data.orderId === 'bad') throw new AppError('conflict', 'test.already_done', 'done');
      },
    });
    await jobs.register(queue);
    const good = (await jobs.send(queue.name, { orderId: 'good' })) ?? '';
    await jobs.send(queue.name, { orderId: 'bad' });
    await waitForState(queue.name, good, 'completed');
    await vi.waitFor(
      async () => expect(await jobs.listDeadLetters(queue.name, { limit: 1 })).toHaveLength(1),
      WAIT,
    );

    expect(await metricValue('keel_jobs_completed_total', { queue: queue.name })).toBe(1);
    expect(await metricValue('keel_jobs_failed_total', { queue: queue.name, outcome: 'dead_letter' })).toBe(
      1,
    );
    expect(
      await metricValue(
        'keel_job_duration_seconds',
        { queue: queue.name },
        'keel_job_duration_seconds_count',
      ),
    ).toBe(2);
    // Depth comes from pg-boss's monitor pass (every second here), so it catches up shortly.
    await vi.waitFor(
      async () =>
        expect(await metricValue('keel_job_queue_depth', { queue: `${queue.name}.dead-letter` })).toBe(1),
      WAIT,
    );
    expect(await registry.metrics()).toContain(`keel_job_queue_depth{queue="${queue.name}"} 0`);
  });

  it('rejects with jobs.unknown_queue when listing dead letters of a queue that has none', async () => {
    const queue = buildQueue({ deadLetter: false, handler: async () => {} });
    await jobs.register(queue);

    await expect(jobs.listDeadLetters(queue.name, { limit: 10 })).rejects.toMatchObject({
      code: 'jobs.unknown_queue',
    });
    await expect(jobs.listDeadLetters(uniqueQueue('never-registered'), { limit: 10 })).rejects.toMatchObject({
      code: 'jobs.unknown_queue',
    });
  });

  it('rejects with jobs.invalid_definition when a queue is registered twice', async () => {
    const queue = buildQueue({ handler: async () => {} });
    await jobs.register(queue);

    await expect(jobs.register(queue)).rejects.toMatchObject({ code: 'jobs.invalid_definition' });
  });

  it('rejects with jobs.not_running when sending before start', async () => {
    const idle = createJobs({ connectionString: testDb.url, logger: createLogger({ level: 'silent' }) });

    await expect(idle.send('test.anything', {})).rejects.toBeInstanceOf(JobsError);
    await expect(idle.send('test.anything', {})).rejects.toMatchObject({ code: 'jobs.not_running' });
  });
});
