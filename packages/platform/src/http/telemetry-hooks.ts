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

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const statusClass = `${Math.floor(status / 100)}xx`;
    const latencyMs = reply.elapsedTime;
    const service = request.routeOptions.config.service ?? 'platform';
    metrics.requestDuration.observe(
      { route, method: request.method, status_class: statusClass, service },
      latencyMs / 1000,
    );
    if (request.routeOptions.config.service !== undefined) {
      const labels = { route, method: request.method, service };
      metrics.totalRequests.inc(labels);
      metrics.requestLatencyMs.observe(labels, latencyMs);
      if (status < 400) metrics.successCount.inc(labels);
      else metrics.failureCount.inc({ ...labels, status_class: statusClass });
    }

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
  });
}
