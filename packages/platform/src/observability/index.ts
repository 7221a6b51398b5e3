export { createLogger, type Logger, type LoggerSettings, REDACTED_PATHS } from './logger.ts';
export {
  Counter,
  createMetrics,
  Gauge,
  Histogram,
  type HttpMetrics,
  Registry,
  registerGauge,
} from './metrics.ts';
export {
  createServiceMetrics,
  type ServiceMetricDefinition,
  ServiceMetricNameError,
  type ServiceMetrics,
} from './service-metrics.ts';
export { activeTraceId, getTracer, startTracing, type Tracing, type TracingSettings } from './tracing.ts';
