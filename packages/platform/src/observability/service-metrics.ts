import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What every instrument needs: a snake_case name without the service prefix, and what it measures. */
export type ServiceMetricDefinition<Label extends string> = {
  /** snake_case, without the `keel_<service>_` prefix: `search_cache_hits_total`. */
  name: string;
  help: string;
  labelNames?: readonly Label[];
};

/**
 * A service's own instruments, created on the process's registry. Names are
 * `keel_<service>_<name>` (`user-metadata` gives `keel_user_metadata_`).
 *
 * @example
 * const hits = context.metrics.counter({ name: 'search_cache_hits_total', help: 'Cached pages served', labelNames: ['layer'] });
 * hits.inc({ layer: 'redis' }); // keel_telemedicine_search_cache_hits_total{layer="redis"} 1
 */
export type ServiceMetrics = {
  /** What every name of this service starts with: `keel_telemedicine_`. */
  readonly prefix: string;
  /** A counter; its name must end in `_total`. */
  counter<Label extends string = never>(definition: ServiceMetricDefinition<Label>): Counter<Label>;
  /** A gauge; `collect` runs on each scrape, for values read rather than tracked. */
  gauge<Label extends string = never>(
    definition: ServiceMetricDefinition<Label> & { collect?: (this: Gauge<Label>) => void | Promise<void> },
  ): Gauge<Label>;
  /** A histogram; the buckets are required because prom-client's defaults fit no particular unit. */
  histogram<Label extends string = never>(
    definition: ServiceMetricDefinition<Label> & { buckets: readonly number[] },
  ): Histogram<Label>;
};

/** A service asked for a metric name it may not have (already taken, or malformed). */
export class ServiceMetricNameError extends Error {
  constructor(service: string, name: string, reason: string) {
    super(`Service ${service} cannot register metric ${name}: ${reason}`);
    this.name = 'ServiceMetricNameError';
  }
}

const SHORT_NAME = /^[a-z][a-z0-9_]*$/;
const SERVICE_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * The `metrics` a module receives when it mounts: instruments on the app's
 * registry, named `keel_<service>_<name>`.
 *
 * Why a prefix rather than one shared name with a `service` label: a
 * service's metric means something only that service defines (its labels,
 * buckets and help text). prom-client keys a registry by name, so two
 * services choosing the same short name under a shared-name scheme would
 * have to agree on all of it, coupling services that must not know each
 * other, and summing such a metric across its `service` label would add
 * unrelated things. The HTTP instruments are the opposite case, one
 * platform-defined measure of every service, and so carry a `service` label.
 *
 * Registering a name twice throws `ServiceMetricNameError` naming the service
 * and the metric, at start-up, rather than prom-client's bare "already
 * registered" or, worse, two parts of a service silently sharing one counter.
 *
 * @example
 * const metrics = createServiceMetrics(registry, 'telemedicine');
 * const misses = metrics.counter({ name: 'search_cache_misses_total', help: 'Searches loaded from Postgres' });
 */
export function createServiceMetrics(registry: Registry, service: string): ServiceMetrics {
  if (!SERVICE_NAME.test(service)) {
    throw new ServiceMetricNameError(service, '*', 'the service name must be kebab-case');
  }
  const prefix = `keel_${service.replaceAll('-', '_')}_`;

  function fullNameOf(name: string): string {
    if (!SHORT_NAME.test(name)) {
      throw new ServiceMetricNameError(service, name, 'names are snake_case ([a-z][a-z0-9_]*)');
    }
    // Written out in full by habit, it would become keel_x_keel_x_…
    if (name.startsWith('keel_')) {
      throw new ServiceMetricNameError(service, name, `pass the name without the "${prefix}" prefix`);
    }
    const fullName = `${prefix}${name}`;
    // The registry holds the platform's instruments and every service's:
    // a clash with either is reported here, naming who asked.
    if (registry.getSingleMetric(fullName) !== undefined) {
      throw new ServiceMetricNameError(service, fullName, 'a metric of that name is already registered');
    }
    return fullName;
  }

  return {
    prefix,
    counter(definition) {
      if (!definition.name.endsWith('_total')) {
        throw new ServiceMetricNameError(service, definition.name, 'counter names end in _total');
      }
      return new Counter({
        name: fullNameOf(definition.name),
        help: definition.help,
        labelNames: definition.labelNames ?? [],
        registers: [registry],
      });
    },
    gauge(definition) {
      return new Gauge({
        name: fullNameOf(definition.name),
        help: definition.help,
        labelNames: definition.labelNames ?? [],
        registers: [registry],
        ...(definition.collect === undefined ? {} : { collect: definition.collect }),
      });
    },
    histogram(definition) {
      return new Histogram({
        name: fullNameOf(definition.name),
        help: definition.help,
        labelNames: definition.labelNames ?? [],
        buckets: [...definition.buckets],
        registers: [registry],
      });
    },
  };
}
