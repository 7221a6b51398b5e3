import type { Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { HttpMetrics } from '../observability/metrics.ts';
import { endSpanWithStatus, runInSpan, startServerSpan } from '../observability/tracing.ts';

const spans = new WeakMap<FastifyRequest, Span>();

/**
 * One log line and one set of metric observations per request, labelled by
 * route template. Unmatched paths share the `unmatched` label: a scanner
 * probing random URLs must not create a time series per URL.
 */
export function installRequestTelemetry(
  app: FastifyInstance,
  metrics: HttpMetrics,
  options: { tracing: boolean },
): void {
  if (options.tracing) {
    app.addHook('onRequest', (request, _reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const span = startServerSpan(`${request.method} ${route}`, request.headers);
      span.setAttributes({
        'http.request.method': request.method,
        'http.route': route,
        'keel.request_id': request.id,
      });
      spans.set(request, span);
      // Everything after done() continues inside the span's context.
      runInSpan(span, done);
    });
  }

  const instruments = cachedInstruments(metrics);
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const latencyMs = reply.elapsedTime;
    instruments(request.routeOptions.config.service, route, request.method, status).record(latencyMs);

    const span = spans.get(request);
    if (span) endSpanWithStatus(span, status);

    const line = {
      method: request.method,
      route,
      status,
      latencyMs: Math.round(latencyMs * 100) / 100,
      ...(request.errorSummary ? { error: request.errorSummary } : {}),
    };
    if (status >= 500) request.log.error(line, 'request failed');
    else request.log.info(line, 'request completed');
    done();
  });
}

type RouteInstruments = { record: (latencyMs: number) => void };

/**
 * Metric children per (service, route, method, status class), created once.
 * prom-client hashes a label object on every observe; the set of routes is
 * small and fixed, so a string-keyed cache is cheaper on the hot path.
 */
function cachedInstruments(metrics: HttpMetrics) {
  const cache = new Map<string, RouteInstruments>();
  return (service: string | undefined, route: string, method: string, status: number): RouteInstruments => {
    const statusClass = `${Math.floor(status / 100)}xx`;
    const key = `${service ?? ''}|${route}|${method}|${statusClass}`;
    let instruments = cache.get(key);
    if (instruments === undefined) {
      const duration = metrics.requestDuration.labels({
        route,
        method,
        status_class: statusClass,
        service: service ?? 'platform',
      });
      if (service === undefined) {
        instruments = { record: (latencyMs) => duration.observe(latencyMs / 1000) };
      } else {
        const labels = { route, method, service };
        const total = metrics.totalRequests.labels(labels);
        const latency = metrics.requestLatencyMs.labels(labels);
        // success_count: 1xx-3xx; failure_count: 4xx and 5xx, by class.
        const outcome =
          status < 400
            ? metrics.successCount.labels(labels)
            : metrics.failureCount.labels({ ...labels, status_class: statusClass });
        instruments = {
          record(latencyMs) {
            duration.observe(latencyMs / 1000);
            total.inc();
            latency.observe(latencyMs);
            outcome.inc();
          },
        };
      }
      cache.set(key, instruments);
    }
    return instruments;
  };
}
