import { Counter, Gauge, Histogram, type Registry } from '../observability/metrics.ts';

/** How one failed attempt ended: back in the queue, in the dead-letter queue, or failed for good. */
export type JobFailureOutcome = 'retry' | 'dead_letter' | 'failed';

export type JobMetrics = {
  completed: Counter<'queue'>;
  failed: Counter<'queue' | 'outcome'>;
  duration: Histogram<'queue'>;
  /** Adds the instruments to `registry`; `readDepths` runs on each scrape. */
  register(registry: Registry, readDepths: () => Promise<ReadonlyMap<string, number>>): void;
};

const DURATION_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The instruments exist from the start, unregistered, so jobs that run before
 * `registerMetrics` are still counted once a registry is attached.
 */
export function createJobMetrics(): JobMetrics {
  const completed = new Counter({
    name: 'keel_jobs_completed_total',
    help: 'Job attempts that completed, by queue',
    labelNames: ['queue'],
    registers: [],
  });
  const failed = new Counter({
    name: 'keel_jobs_failed_total',
    help: 'Job attempts that failed, by queue and outcome (retry, dead_letter, failed)',
    labelNames: ['queue', 'outcome'],
    registers: [],
  });
  const duration = new Histogram({
    name: 'keel_job_duration_seconds',
    help: 'Handler run time of one job attempt, completed or failed, by queue',
    labelNames: ['queue'],
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [],
  });
  return {
    completed,
    failed,
    duration,
    register(registry, readDepths) {
      registry.registerMetric(completed);
      registry.registerMetric(failed);
      registry.registerMetric(duration);
      new Gauge({
        name: 'keel_job_queue_depth',
        help: 'Jobs waiting (created or retry, including deferred) per queue and dead-letter queue, as of the last pg-boss monitor pass',
        labelNames: ['queue'],
        registers: [registry],
        async collect() {
          const depths = await readDepths();
          for (const [queue, depth] of depths) this.set({ queue }, depth);
        },
      });
    },
  };
}
