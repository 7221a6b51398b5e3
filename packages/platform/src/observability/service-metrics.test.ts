import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';
import { createServiceMetrics, ServiceMetricNameError } from './service-metrics.ts';

function buildRegistry() {
  return createMetrics({ collectProcessMetrics: false }).registry;
}

describe('createServiceMetrics', () => {
  it('names instruments keel_<service>_<name>, with dashes of the service name as underscores', async () => {
    const registry = buildRegistry();
    const metrics = createServiceMetrics(registry, 'user-metadata');
    expect(metrics.prefix).toBe('keel_user_metadata_');

    const lookups = metrics.counter({ name: 'lookups_total', help: 'Lookups', labelNames: ['outcome'] });
    lookups.inc({ outcome: 'found' }, 2);
    metrics.gauge({ name: 'queue_depth', help: 'Depth' }).set(7);
    metrics.histogram({ name: 'lookup_seconds', help: 'Lookup time', buckets: [0.1, 1] }).observe(0.5);

    const text = await registry.metrics();
    expect(text).toContain('keel_user_metadata_lookups_total{outcome="found"} 2');
    expect(text).toContain('keel_user_metadata_queue_depth 7');
    expect(text).toContain('keel_user_metadata_lookup_seconds_bucket{le="1"} 1');
  });

  it('reads a gauge with collect on each scrape', async () => {
    const registry = buildRegistry();
    let depth = 3;
    createServiceMetrics(registry, 'widgets').gauge({
      name: 'depth',
      help: 'Depth',
      collect() {
        this.set(depth);
      },
    });
    expect(await registry.metrics()).toContain('keel_widgets_depth 3');
    depth = 4;
    expect(await registry.metrics()).toContain('keel_widgets_depth 4');
  });

  it('rejects a name the service already registered, naming the service and the metric', () => {
    const metrics = createServiceMetrics(buildRegistry(), 'widgets');
    metrics.counter({ name: 'made_total', help: 'Made' });
    expect(() => metrics.gauge({ name: 'made_total', help: 'Made again' })).toThrow(ServiceMetricNameError);
    expect(() => metrics.counter({ name: 'made_total', help: 'Made again' })).toThrow(
      /widgets.*keel_widgets_made_total/,
    );
  });

  it('rejects a name another owner of the registry already holds', () => {
    const registry = buildRegistry();
    createServiceMetrics(registry, 'widgets').counter({ name: 'made_total', help: 'Made' });
    // A second facade for the same service (a module mounted twice on one registry) clashes too.
    expect(() =>
      createServiceMetrics(registry, 'widgets').counter({ name: 'made_total', help: 'Made' }),
    ).toThrow(ServiceMetricNameError);
  });

  it.each([
    ['a counter not ending in _total', 'made'],
    ['a name given with the prefix', 'keel_widgets_made_total'],
    ['a name that is not snake_case', 'Made-Total'],
  ])('rejects %s', (_case, name) => {
    const metrics = createServiceMetrics(buildRegistry(), 'widgets');
    expect(() => metrics.counter({ name, help: 'Made' })).toThrow(ServiceMetricNameError);
  });

  it('rejects a service name that is not kebab-case', () => {
    expect(() => createServiceMetrics(buildRegistry(), 'Widgets')).toThrow(ServiceMetricNameError);
  });
});
