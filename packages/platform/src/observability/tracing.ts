import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export type TracingSettings = {
  serviceName: string;
  /** OTLP/HTTP endpoint, e.g. http://collector:4318. */
  endpoint?: string;
  /** Tests pass an in-memory exporter; spans are then exported synchronously. */
  exporter?: SpanExporter;
};

export type Tracing = { tracer: Tracer; shutdown: () => Promise<void> };

const TRACER_NAME = '@keel/platform';

/**
 * Starts OpenTelemetry tracing: W3C trace-context propagation, an
 * AsyncLocalStorage context manager and an OTLP exporter.
 *
 * Spans come from explicit hooks (HTTP server in ../http, queries in ../db),
 * not from require-time monkey-patching: Keel runs as native ESM straight from
 * TypeScript, where patching needs a loader hook that must run before any
 * import and silently does nothing when it doesn't. Explicit spans always work,
 * in production and under Vitest alike.
 *
 * @example
 * const tracing = startTracing({ serviceName: 'keel', endpoint: 'http://localhost:4318' });
 */
export function startTracing(settings: TracingSettings): Tracing {
  const exporter = settings.exporter ?? new OTLPTraceExporter({ url: `${settings.endpoint}/v1/traces` });
  const processor = settings.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    spanProcessors: [processor],
  });
  provider.register();
  return {
    tracer: provider.getTracer(TRACER_NAME),
    shutdown: () => provider.shutdown(),
  };
}

/** The platform tracer: a no-op until `startTracing` registers a provider. */
export function getTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Starts a server span continuing the caller's `traceparent`, if any. */
export function startServerSpan(name: string, headers: Record<string, unknown>): Span {
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  return getTracer().startSpan(name, { kind: SpanKind.SERVER }, parent);
}

/** Runs `work` with `span` as the active span, so child spans and log lines attach to it. */
export function runInSpan<T>(span: Span, work: () => T): T {
  return context.with(trace.setSpan(context.active(), span), work);
}

/** The active trace id, for problem documents and logs. */
export function activeTraceId(): string | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const { traceId, traceFlags } = span.spanContext();
  // A no-op span has the all-zero id and no sampled flag; it identifies nothing.
  return traceFlags === 0 && /^0+$/.test(traceId) ? undefined : traceId;
}

export function endSpanWithStatus(span: Span, statusCode: number): void {
  span.setAttribute('http.response.status_code', statusCode);
  if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

export { SpanKind, SpanStatusCode };
