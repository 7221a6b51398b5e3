import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The HTTP instruments every Keel process exposes. Labels are bounded: the
 * route template (never the raw path, which would explode cardinality on ids),
 * the method and the status class.
 */
export type HttpMetrics = {
  registry: Registry;
  requestDuration: Histogram<'route' | 'method' | 'status_class' | 'service'>;
  totalRequests: Counter<'route' | 'method' | 'service'>;
  successCount: Counter<'route' | 'method' | 'service'>;
  failureCount: Counter<'route' | 'method' | 'status_class' | 'service'>;
  requestLatencyMs: Histogram<'route' | 'method' | 'service'>;
};

const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * One registry per process (tests build one per app so counts never leak between them).
 *
 * @example
 * const metrics = createMetrics();
 * metrics.registry.metrics(); // Prometheus text format
 */
export function createMetrics(options: { collectProcessMetrics?: boolean } = {}): HttpMetrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route template, method and status class',
      labelNames: ['route', 'method', 'status_class', 'service'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    // The next four names are fixed by the User Metadata Service contract.
    totalRequests: new Counter({
      name: 'total_requests',
      help: 'Requests received by a service route',
      labelNames: ['route', 'method', 'service'],
      registers: [registry],
    }),
    successCount: new Counter({
      name: 'success_count',
      help: 'Requests answered with a 1xx-3xx status',
      labelNames: ['route', 'method', 'service'],
      registers: [registry],
    }),
    failureCount: new Counter({
      name: 'failure_count',
      help: 'Requests answered with a 4xx or 5xx status',
      labelNames: ['route', 'method', 'status_class', 'service'],
      registers: [registry],
    }),
    requestLatencyMs: new Histogram({
      name: 'request_latency_ms',
      help: 'Request latency in milliseconds by service route',
      labelNames: ['route', 'method', 'service'],
      buckets: LATENCY_BUCKETS_SECONDS.map((seconds) => seconds * 1000),
      registers: [registry],
    }),
  };
}

/** Registers a gauge whose value is read at scrape time (pool sizes, breaker state). */
export function registerGauge(
  registry: Registry,
  definition: { name: string; help: string; read: () => number },
): Gauge {
  const { read } = definition;
  return new Gauge({
    name: definition.name,
    help: definition.help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

export { Counter, Gauge, Histogram, Registry };
