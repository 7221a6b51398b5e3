import type { PlatformConfig } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { createJobs, type JobQueueDefinition, type Jobs, JobsError } from '../jobs/index.ts';
import type { BackgroundRegistry, Clock, JobSender } from '../module/index.ts';
import {
  createJetStreamConsumer,
  type JetStreamConsumer,
  type NatsClient,
  serviceOfEventType,
} from '../nats/index.ts';
import type { Logger, Registry } from '../observability/index.ts';
import {
  createEventBus,
  type EventBus,
  type EventPublisher,
  pruneEvents,
  retireSubscription,
  type Subscription,
} from '../outbox/index.ts';

export type BackgroundSettings = {
  /** Where pg-boss keeps its queues (the application's own database). Required once a job queue is added. */
  connectionString?: string;
  database: Database;
  logger: Logger;
  clock: Clock;
  /** Relays to another transport (the JetStream relay when NATS_URL is set). */
  publishers?: readonly EventPublisher[];
  eventPollIntervalMs: number;
  eventBatchSize: number;
  eventConcurrency: number;
  /** Delivered events (and inbox entries) older than this are deleted by a daily job. */
  eventRetentionDays: number;
  /** Schedule that daily retention job (servers do; test apps need not). */
  isPruningEvents?: boolean;
  jobsPollIntervalSeconds?: number;
  /** Running jobs get this long to finish at shutdown before they are handed back. */
  stopTimeoutMs: number;
  /**
   * With NATS: these subscriptions consume from JetStream (fed by the relay)
   * instead of the Postgres bus. Same handler, same inbox, so a subscription
   * can move either way without applying an event twice.
   */
  jetstream?: { connection: NatsClient; subscriptionNames: readonly string[] };
  /**
   * Dispatch events and work jobs (default true). False in a process that
   * only serves requests (`KEEL_ROLE=web`): its subscriptions are still
   * registered, so its emits fan out to them, and it can send jobs, but
   * worker processes deliver and work them, run the cron schedules and
   * pg-boss's maintenance.
   */
  isWorking?: boolean;
};

export type Background = {
  /** What modules receive while they register. */
  registry: BackgroundRegistry;
  /** Registers subscriptions (so emits fan out to them) and starts the job runner, without dispatching events. */
  prepare(): Promise<void>;
  /** `prepare`, then delivers events and works jobs until `stop` (with `isWorking` false, only `prepare`). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The event bus (tests drive it with `runOnce`). Throws before `prepare`. */
  events(): EventBus;
  /** The job runner. Throws 404 `jobs.unknown_queue` when none runs (no module has queues, or before `prepare`). */
  jobs(): Jobs;
  /** Delivers due events until none is left; for tests and the CLI. */
  drainEvents(options?: { maxRounds?: number }): Promise<number>;
  registerMetrics(registry: Registry): void;
};

/** The settings `main.ts` and the testing kit derive from config; `publishers` are added by the caller. */
export function backgroundSettingsFrom(
  config: PlatformConfig,
  parts: { connectionString?: string; database: Database; logger: Logger; clock: Clock },
): BackgroundSettings {
  return {
    ...parts,
    eventPollIntervalMs: config.EVENTS_POLL_INTERVAL_MS,
    eventBatchSize: config.EVENTS_BATCH_SIZE,
    eventConcurrency: config.EVENTS_CONCURRENCY,
    eventRetentionDays: config.EVENTS_RETENTION_DAYS,
    jobsPollIntervalSeconds: config.JOBS_POLL_INTERVAL_SECONDS,
    isWorking: config.KEEL_ROLE !== 'web',
    // Shutdown's budget: a quarter for running jobs, a quarter for the pool to
    // drain, the rest for the HTTP server and handlers in flight.
    stopTimeoutMs: config.SHUTDOWN_TIMEOUT_MS / 4,
  };
}

export const PRUNE_EVENTS_QUEUE = 'platform.prune-events';

/**
 * The process's background work: the outbox event bus and the pg-boss job
 * runner, fed by what modules declared through the registry. One object so
 * that start and stop happen in one place and in the right order: start after
 * every module registered, stop before the pool closes.
 */
export function createBackground(settings: BackgroundSettings): Background {
  const isWorking = settings.isWorking ?? true;
  const subscriptions: Subscription[] = [];
  const consumers: JetStreamConsumer[] = [];
  const queues: JobQueueDefinition<never>[] = [];
  const schedules: { name: string; cron: string; data: object | undefined }[] = [];
  let bus: EventBus | undefined;
  let busDatabase: Database | undefined;
  let jobs: Jobs | undefined;
  let metricsRegistry: Registry | undefined;
  let state: 'collecting' | 'prepared' | 'running' | 'stopped' = 'collecting';

  if (settings.isPruningEvents) addPruneEventsJob();

  function addPruneEventsJob(): void {
    queues.push({
      name: PRUNE_EVENTS_QUEUE,
      policy: 'exclusive',
      retryLimit: 2,
      handler: async () => {
        const before = new Date(settings.clock.now().getTime() - settings.eventRetentionDays * 86_400_000);
        const pruned = await pruneEvents(settings.database, { before });
        settings.logger.info({ pruned, before }, 'pruned delivered events');
      },
    } satisfies JobQueueDefinition<object> as JobQueueDefinition<never>);
    schedules.push({ name: PRUNE_EVENTS_QUEUE, cron: '17 3 * * *', data: undefined });
  }

  const assertCollecting = (what: string) => {
    if (state !== 'collecting') throw new Error(`${what}: background work is already prepared`);
  };
  const requireJobs = (): Jobs => {
    // No runner means no queue was ever registered in this process: to a
    // caller naming one, it does not exist.
    if (jobs === undefined)
      throw new JobsError('not_found', 'jobs.unknown_queue', 'No job queue runs in this process');
    return jobs;
  };
  const sender: JobSender = {
    send: (name, data, options) => requireJobs().send(name, data, options),
    sendWith: (trx, name, data, options) => requireJobs().sendWith(trx, name, data, options),
    sendManyWith: (trx, name, data) => requireJobs().sendManyWith(trx, name, data),
  };

  async function prepare(): Promise<void> {
    if (state !== 'collecting') return;
    state = 'prepared';
    const movedNames = new Set(settings.jetstream?.subscriptionNames ?? []);
    const unknown = [...movedNames].filter((name) => !subscriptions.some((entry) => entry.name === name));
    if (unknown.length > 0) {
      throw new Error(`JetStream subscriptions name no subscription of this server: ${unknown.join(', ')}`);
    }
    for (const subscription of subscriptions.filter((entry) => movedNames.has(entry.name))) {
      if (settings.jetstream === undefined) break;
      // Its Postgres deliveries would pile up unclaimed: stop fanning out to it.
      await retireSubscription(settings.database, subscription.name);
      const services = new Set(subscription.eventTypes.map(serviceOfEventType));
      const [service] = [...services];
      if (services.size !== 1 || service === undefined) {
        throw new Error(
          `${subscription.name} must take the events of exactly one service to consume from JetStream`,
        );
      }
      consumers.push(
        createJetStreamConsumer({
          connection: settings.jetstream.connection,
          database: settings.database,
          logger: settings.logger.child({ component: 'jetstream', subscriber: subscription.name }),
          subscription,
          service,
        }),
      );
    }
    // Its own small pool: in the shared one each batch would wait for a
    // connection behind every request in flight, and under load subscribers
    // fell tens of seconds behind (bench/results/README.md, session 10). A
    // process that does not dispatch only lists and replays dead letters.
    busDatabase = isWorking
      ? settings.database.withOwnPool({
          poolMax: settings.eventConcurrency + 1,
          applicationName: 'keel-events',
        })
      : undefined;
    bus = createEventBus({
      database: busDatabase ?? settings.database,
      logger: settings.logger.child({ component: 'events' }),
      clock: settings.clock,
      subscriptions: subscriptions.filter((entry) => !movedNames.has(entry.name)),
      publishers: settings.publishers ?? [],
      pollIntervalMs: settings.eventPollIntervalMs,
      batchSize: settings.eventBatchSize,
      concurrency: settings.eventConcurrency,
    });
    await bus.register();
    if (metricsRegistry !== undefined) {
      bus.registerMetrics(metricsRegistry);
      for (const consumer of consumers) consumer.registerMetrics(metricsRegistry);
    }
    // pg-boss installs and maintains its own schema: only pay for it when some module has jobs.
    if (queues.length === 0 && schedules.length === 0) return;
    if (settings.connectionString === undefined) {
      throw new Error('background work has job queues but no database connection string for them');
    }
    jobs = createJobs({
      connectionString: settings.connectionString,
      logger: settings.logger.child({ component: 'jobs' }),
      isWorkerEnabled: isWorking,
      ...(settings.jobsPollIntervalSeconds === undefined
        ? {}
        : { pollingIntervalSeconds: settings.jobsPollIntervalSeconds }),
    });
    if (metricsRegistry !== undefined) jobs.registerMetrics(metricsRegistry);
    await jobs.start();
    for (const queue of queues) await jobs.register(queue);
    if (!isWorking) return;
    for (const schedule of schedules) await jobs.schedule(schedule.name, schedule.cron, schedule.data);
  }

  return {
    registry: {
      subscribe(subscription) {
        assertCollecting(`subscribe ${subscription.name}`);
        subscriptions.push(subscription);
      },
      addJobQueue(definition) {
        assertCollecting(`addJobQueue ${definition.name}`);
        queues.push(definition as JobQueueDefinition<never>);
      },
      schedule(name, cron, data) {
        assertCollecting(`schedule ${name}`);
        schedules.push({ name, cron, data });
      },
      jobs: sender,
    },
    prepare,
    async start() {
      await prepare();
      if (state !== 'prepared') return;
      state = 'running';
      if (!isWorking) return;
      await bus?.start();
      for (const consumer of consumers) await consumer.start();
    },
    async stop() {
      if (state === 'stopped' || state === 'collecting') {
        state = 'stopped';
        return;
      }
      const wasRunning = state === 'running';
      state = 'stopped';
      // Events first: their handlers may send jobs.
      if (wasRunning && isWorking) {
        await Promise.all(consumers.map((consumer) => consumer.stop()));
        await bus?.stop();
      }
      await busDatabase?.close();
      busDatabase = undefined;
      await jobs?.stop({ timeoutMs: Math.max(1000, settings.stopTimeoutMs) });
    },
    events() {
      if (bus === undefined) throw new Error('the event bus is not prepared yet');
      return bus;
    },
    jobs: requireJobs,
    async drainEvents(options = {}) {
      const maxRounds = options.maxRounds ?? 100;
      let total = 0;
      for (let round = 0; round < maxRounds; round += 1) {
        const handled = await this.events().runOnce();
        total += handled;
        if (handled === 0) break;
      }
      return total;
    },
    registerMetrics(registry) {
      metricsRegistry = registry;
      bus?.registerMetrics(registry);
      jobs?.registerMetrics(registry);
    },
  };
}
