import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, PlatformConfigSchema, parseList } from './config.ts';

const SECRET = 'hunter2-s3cr3t-Value';

function loadError(environment: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(PlatformConfigSchema, environment);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

describe('loadConfig', () => {
  it('applies every default when the environment is empty', () => {
    const config = loadConfig(PlatformConfigSchema, {});
    expect(config).toMatchObject({
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: 3000,
      LOG_LEVEL: 'info',
      SERVICES: 'all',
      KEEL_ROLE: 'all',
      DATABASE_POOL_MAX: 20,
      BODY_LIMIT_BYTES: 1024 * 1024,
      CORS_ORIGINS: '',
      TRUST_PROXY: 'false',
      OTEL_SERVICE_NAME: 'keel',
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(config.KEEL_DEMO_DATA).toBeUndefined();
  });

  it('converts numeric and boolean strings to numbers and booleans', () => {
    const config = loadConfig(PlatformConfigSchema, {
      PORT: '8080',
      DATABASE_POOL_MAX: ' 42 ',
      KEEL_DEMO_DATA: 'true',
    });
    expect(config.PORT).toBe(8080);
    expect(config.DATABASE_POOL_MAX).toBe(42);
    expect(config.KEEL_DEMO_DATA).toBe(true);

    expect(loadConfig(PlatformConfigSchema, { KEEL_DEMO_DATA: 'false' }).KEEL_DEMO_DATA).toBe(false);
  });

  it('keeps valid string values and ignores variables the schema does not name', () => {
    const config = loadConfig(PlatformConfigSchema, {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://keel@db:5432/keel',
      UNRELATED: 'whatever',
    });
    expect(config.NODE_ENV).toBe('production');
    expect(config.DATABASE_URL).toBe('postgres://keel@db:5432/keel');
    expect(config).not.toHaveProperty('UNRELATED');
  });

  it('treats an empty string as unset and falls back to the default', () => {
    const config = loadConfig(PlatformConfigSchema, { PORT: '', LOG_LEVEL: '', DATABASE_URL: '' });
    expect(config.PORT).toBe(3000);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.DATABASE_URL).toBeUndefined();
  });

  it('reports every offending variable in one ConfigError when several are invalid', () => {
    const error = loadError({
      PORT: '70000',
      LOG_LEVEL: 'loud',
      DATABASE_URL: `mysql://admin:${SECRET}@db/keel`,
      KEEL_DEMO_DATA: 'maybe',
      DATABASE_POOL_MAX: 'many',
      KEEL_ROLE: 'scheduler',
    });
    expect(error.name).toBe('ConfigError');
    const offending = error.problems.map((problem) => problem.split(':', 1)[0]);
    expect(offending.sort()).toEqual(
      ['DATABASE_POOL_MAX', 'DATABASE_URL', 'KEEL_DEMO_DATA', 'KEEL_ROLE', 'LOG_LEVEL', 'PORT'].sort(),
    );
    for (const name of offending) expect(error.message).toContain(name);
  });

  it('never echoes the offending value in the message or the problems when a secret is invalid', () => {
    const error = loadError({
      DATABASE_URL: `mysql://admin:${SECRET}@db/keel`,
      OTEL_EXPORTER_OTLP_ENDPOINT: `ftp://${SECRET}`,
      OTEL_SERVICE_NAME: '   ',
      PORT: SECRET,
    });
    expect(error.problems).toHaveLength(4);
    expect(error.message).not.toContain(SECRET);
    expect(error.problems.join('\n')).not.toContain(SECRET);
    expect(String(error.stack)).not.toContain(SECRET);
  });

  it('fails a required variable without a default when it is missing or empty', () => {
    const schema = Type.Object({ API_SECRET: Type.String({ minLength: 1 }) });
    for (const environment of [{}, { API_SECRET: '' }]) {
      try {
        loadConfig(schema, environment);
        expect.unreachable('loadConfig should have thrown');
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).problems).toEqual([expect.stringMatching(/^API_SECRET: /)]);
      }
    }
    expect(loadConfig(schema, { API_SECRET: 'present' })).toEqual({ API_SECRET: 'present' });
  });
});

describe('parseList', () => {
  it('splits a comma list into trimmed entries and drops empty ones', () => {
    expect(parseList(' orders, users ,,billing , ')).toEqual(['orders', 'users', 'billing']);
  });

  it('returns an empty list for an empty or blank string', () => {
    expect(parseList('')).toEqual([]);
    expect(parseList(' , ')).toEqual([]);
  });

  it('returns a single entry when there is no comma', () => {
    expect(parseList('all')).toEqual(['all']);
  });
});
