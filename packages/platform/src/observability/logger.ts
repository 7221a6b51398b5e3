import { trace } from '@opentelemetry/api';
import { type Logger, type LoggerOptions, pino } from 'pino';

/**
 * Paths pino removes from every line. Credentials can arrive in headers, bodies
 * and error objects; listing them once here keeps every service from having to
 * remember. `*` matches one level, so nested payloads are covered explicitly.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...[
    'password',
    'newPassword',
    'currentPassword',
    'token',
    'accessToken',
    'refreshToken',
    'otp',
    // Not `code`: it would redact the error code on every request line
    // (`error.code`) and the SQLSTATE on retry lines (`err.code`).
    'secret',
    'apiKey',
    'access_token',
    'refresh_token',
    'new_password',
    'current_password',
    'mfa_token',
    'mfaToken',
    'recovery_code',
    'recoveryCode',
    'api_key',
  ].flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
];

export type LoggerSettings = {
  level: string;
  /** Where lines go; tests pass a stream to capture them. */
  destination?: NodeJS.WritableStream;
  base?: Record<string, unknown>;
};

/**
 * The one logger factory: JSON lines, UTC ISO timestamps, secrets redacted and,
 * when a span is active, its trace and span ids on every line.
 *
 * @example
 * const logger = createLogger({ level: 'info' });
 * logger.info({ userId }, 'user created');
 */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: settings.base ?? { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const span = trace.getActiveSpan();
      if (span === undefined) return {};
      const { traceId, spanId } = span.spanContext();
      return { traceId, spanId };
    },
  };
  return settings.destination === undefined ? pino(options) : pino(options, settings.destination);
}

export type { Logger };
