import { type Static, type TSchema, Type } from 'typebox';
import { Value } from 'typebox/value';

/**
 * Every environment variable Keel reads, with its default. README.md's
 * configuration table mirrors this schema; keep them in step.
 */
export const PlatformConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
  SERVICES: Type.String({ default: 'all' }),
  // What this process does: everything, the HTTP API only, or background work
  // only (event dispatch, jobs, maintenance) with just health and metrics.
  KEEL_ROLE: Type.Union([Type.Literal('all'), Type.Literal('web'), Type.Literal('worker')], {
    default: 'all',
  }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, default: 20 }),
  DATABASE_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5000 }),
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 2000 }),
  DATABASE_RETRY_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 10, default: 4 }),
  DATABASE_RETRY_BUDGET_MS: Type.Integer({ minimum: 50, default: 3000 }),
  DATABASE_BREAKER_THRESHOLD: Type.Integer({ minimum: 1, default: 5 }),
  DATABASE_BREAKER_HALF_OPEN_AFTER_MS: Type.Integer({ minimum: 100, default: 5000 }),
  KEEL_DATA_DIR: Type.String({ minLength: 1, default: '.keel' }),
  KEEL_DEMO_DATA: Type.Optional(Type.Boolean()),
  CORS_ORIGINS: Type.String({ default: '' }),
  TRUST_PROXY: Type.String({ default: 'false' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 50 * 1024 * 1024, default: 1024 * 1024 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000 }),
  IDEMPOTENCY_LOCK_TIMEOUT_MS: Type.Integer({ minimum: 1000, default: 60_000 }),
  IDEMPOTENCY_RETENTION_HOURS: Type.Integer({ minimum: 1, default: 24 }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'keel' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  // NATS with JetStream: when set, the outbox relays every event to a stream per service.
  NATS_URL: Type.Optional(Type.String({ pattern: '^(nats|tls)://' })),
  NATS_STREAM_MAX_AGE_DAYS: Type.Integer({ minimum: 1, default: 7 }),
  NATS_DUPLICATE_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 120 }),
  // Comma list of subscription names that consume from JetStream instead of the Postgres bus (NATS_URL must be set).
  EVENTS_JETSTREAM_SUBSCRIPTIONS: Type.String({ default: '' }),

  // Events and jobs.
  EVENTS_POLL_INTERVAL_MS: Type.Integer({ minimum: 10, default: 1000 }),
  EVENTS_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }),
  EVENTS_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  EVENTS_RETENTION_DAYS: Type.Integer({ minimum: 1, default: 7 }),
  JOBS_POLL_INTERVAL_SECONDS: Type.Number({ minimum: 0.5, default: 2 }),

  // Identity: tokens and sessions.
  AUTH_ISSUER: Type.String({ minLength: 1, default: 'keel' }),
  AUTH_AUDIENCE: Type.String({ minLength: 1, default: 'keel-api' }),
  AUTH_SIGNING_KEYS: Type.Optional(Type.String({ pattern: '^[a-z0-9_-]{1,32}:' })),
  AUTH_ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 3600, default: 900 }),
  AUTH_REFRESH_IDLE_TTL_HOURS: Type.Integer({ minimum: 1, default: 168 }),
  AUTH_REFRESH_ABSOLUTE_TTL_HOURS: Type.Integer({ minimum: 1, default: 720 }),
  AUTH_SESSION_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 5000 }),
  AUTH_MFA_CHALLENGE_TTL_SECONDS: Type.Integer({ minimum: 30, maximum: 900, default: 300 }),
  AUTH_MFA_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
  AUTH_PASSWORD_RESET_TTL_MINUTES: Type.Integer({ minimum: 5, maximum: 1440, default: 30 }),
  AUTH_LOCKOUT_THRESHOLD: Type.Integer({ minimum: 1, default: 5 }),
  AUTH_LOCKOUT_BASE_SECONDS: Type.Integer({ minimum: 1, default: 30 }),
  AUTH_LOCKOUT_MAX_SECONDS: Type.Integer({ minimum: 1, default: 3600 }),
  KEEL_BOOTSTRAP_ADMIN_EMAIL: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
  KEEL_BOOTSTRAP_ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 12, maxLength: 128 })),

  // Field encryption.
  KEEL_ENCRYPTION_KEYS: Type.Optional(Type.String({ pattern: '^[a-z0-9_-]{1,32}:' })),
  KEEL_BLIND_INDEX_KEY: Type.Optional(Type.String({ minLength: 43 })),
  KEEL_KEY_ROTATION_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),

  // Rate limits: a fixed window per caller; auth routes add per-IP and per-account limits.
  RATE_LIMIT_ENABLED: Type.Boolean({ default: true }),
  RATE_LIMIT_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 60 }),
  RATE_LIMIT_DEFAULT_MAX: Type.Integer({ minimum: 1, default: 600 }),
  RATE_LIMIT_AUTH_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 900 }),
  RATE_LIMIT_AUTH_PER_IP_MAX: Type.Integer({ minimum: 1, default: 50 }),
  RATE_LIMIT_AUTH_PER_ACCOUNT_MAX: Type.Integer({ minimum: 1, default: 10 }),

  // Where notifications (password reset, alerts) go; `log` writes them to the log.
  NOTIFIER: Type.Union([Type.Literal('log')], { default: 'log' }),

  // Telemedicine: booking holds, the slot window, the refund policy, prescription signing, search caching.
  TELEMEDICINE_HOLD_MINUTES: Type.Integer({ minimum: 1, maximum: 60, default: 10 }),
  TELEMEDICINE_SLOT_HORIZON_DAYS: Type.Integer({ minimum: 1, maximum: 180, default: 28 }),
  TELEMEDICINE_FULL_REFUND_HOURS: Type.Integer({ minimum: 0, maximum: 720, default: 24 }),
  TELEMEDICINE_LATE_CANCEL_REFUND_PERCENT: Type.Integer({ minimum: 0, maximum: 100, default: 50 }),
  // Ed25519 private key, base64 of its PKCS#8 DER; generated into KEEL_DATA_DIR outside production when unset.
  TELEMEDICINE_PRESCRIPTION_SIGNING_KEY: Type.Optional(Type.String({ minLength: 40 })),
  // Comma-separated base64 SPKI DER Ed25519 public keys of earlier signing keys: their prescriptions still verify.
  TELEMEDICINE_PRESCRIPTION_RETIRED_PUBLIC_KEYS: Type.Optional(Type.String()),
  TELEMEDICINE_SEARCH_CACHE_TTL_SECONDS: Type.Integer({ minimum: 0, maximum: 3600, default: 30 }),
  // At most one search-cache invalidation per interval: bookings would otherwise empty it constantly.
  TELEMEDICINE_SEARCH_CACHE_COALESCE_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),

  // Payments: the gateway's API (unset outside production: an in-process simulated gateway).
  PAYMENTS_GATEWAY_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  PAYMENTS_API_KEY: Type.Optional(Type.String({ minLength: 8 })),
  PAYMENTS_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  PAYMENTS_WEBHOOK_TOLERANCE_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 300 }),
  PAYMENTS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000 }),
});

export type PlatformConfig = Static<typeof PlatformConfigSchema>;
export type ProcessRole = PlatformConfig['KEEL_ROLE'];

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads and validates configuration from an environment object. Reports every
 * offending variable at once, naming it but never echoing its value, because a
 * mistyped secret would otherwise land in the start-up log.
 *
 * @example
 * const config = loadConfig(PlatformConfigSchema, process.env);
 */
export function loadConfig<Schema extends TSchema>(
  schema: Schema,
  environment: Record<string, string | undefined>,
): Static<Schema> {
  const known = Object.keys((schema as unknown as { properties: Record<string, unknown> }).properties);
  // Empty strings mean "unset": `FOO= npm start` should fall back to the default.
  const input: Record<string, unknown> = {};
  for (const name of known) {
    const raw = environment[name];
    if (raw !== undefined && raw !== '') input[name] = raw.trim();
  }
  const properties = (schema as unknown as { properties: Record<string, TSchema> }).properties;
  const config: Record<string, unknown> = {};
  const problems: string[] = [];
  // Each variable is checked on its own so that one bad value never hides another.
  for (const [name, property] of Object.entries(properties)) {
    const raw = Value.Default(property, input[name]);
    if (raw === undefined && !isRequired(schema, name)) continue;
    const value = Value.Convert(property, raw);
    if (Value.Check(property, value)) config[name] = value;
    else problems.push(`${name}: ${expectation(property)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config as Static<Schema>;
}

function isRequired(schema: TSchema, name: string): boolean {
  return ((schema as unknown as { required?: string[] }).required ?? []).includes(name);
}

/** Describes what a variable accepts, without repeating the (possibly secret) value it got. */
function expectation(property: TSchema): string {
  const schema = property as unknown as {
    type?: string;
    anyOf?: { const: unknown }[];
    minimum?: number;
    maximum?: number;
    pattern?: string;
  };
  if (schema.anyOf) return `must be one of ${schema.anyOf.map((option) => String(option.const)).join(', ')}`;
  if (schema.type === 'integer') {
    const range = [
      schema.minimum === undefined ? '' : `>= ${schema.minimum}`,
      schema.maximum === undefined ? '' : `<= ${schema.maximum}`,
    ];
    return `must be an integer ${range.filter(Boolean).join(' and ')}`.trim();
  }
  if (schema.type === 'boolean') return 'must be true or false';
  if (schema.pattern) return `must match ${schema.pattern}`;
  return 'must be a non-empty string';
}

/** Splits a comma list (`SERVICES=orders, users`) into trimmed, non-empty entries. */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}
