import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs } from '../testing/test-app.ts';
import { createLogger } from './logger.ts';
import { startTracing, type Tracing } from './tracing.ts';

const SECRET = 'sk_live_9f8e7d6c5b4a-do-not-log';

function newLogger(level = 'info') {
  const { stream, logs } = captureLogs();
  return { logger: createLogger({ level, destination: stream }), logs };
}

describe('createLogger redaction', () => {
  it('redacts authorization and cookie request headers', () => {
    const { logger, logs } = newLogger();
    logger.info(
      {
        req: {
          headers: {
            authorization: `Bearer ${SECRET}`,
            cookie: `session=${SECRET}`,
            'x-api-key': SECRET,
            'idempotency-key': SECRET,
            accept: 'application/json',
          },
        },
        headers: { authorization: `Basic ${SECRET}`, cookie: SECRET },
      },
      'incoming',
    );
    expect(logs.text()).not.toContain(SECRET);
    const [line] = logs.lines();
    expect(line?.req).toEqual({
      headers: {
        authorization: '[redacted]',
        cookie: '[redacted]',
        'x-api-key': '[redacted]',
        'idempotency-key': '[redacted]',
        accept: 'application/json',
      },
    });
    expect(line?.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]' });
  });

  it('redacts the set-cookie response header', () => {
    const { logger, logs } = newLogger();
    logger.info({ res: { headers: { 'set-cookie': `session=${SECRET}` } } }, 'outgoing');
    expect(logs.text()).not.toContain(SECRET);
  });

  it.each([
    'password',
    'newPassword',
    'currentPassword',
    'token',
    'accessToken',
    'refreshToken',
    'otp',
    'secret',
    'apiKey',
  ])('redacts the %s field at the top level and nested one and two levels deep', (field) => {
    const { logger, logs } = newLogger();
    logger.info({ [field]: SECRET }, 'top');
    logger.info({ body: { [field]: SECRET } }, 'nested');
    logger.info({ request: { body: { [field]: SECRET } } }, 'deeply nested');
    expect(logs.text()).not.toContain(SECRET);
    const [top, nested, deep] = logs.lines();
    expect(top).toMatchObject({ [field]: '[redacted]' });
    expect(nested).toMatchObject({ body: { [field]: '[redacted]' } });
    expect(deep).toMatchObject({ request: { body: { [field]: '[redacted]' } } });
  });

  it('keeps fields that are not secrets', () => {
    const { logger, logs } = newLogger();
    logger.info({ userId: 'u-1', body: { email: 'ada@example.com' } }, 'kept');
    const [line] = logs.lines();
    expect(line).toMatchObject({ userId: 'u-1', body: { email: 'ada@example.com' }, msg: 'kept' });
  });

  it('writes JSON lines with a textual level and an ISO timestamp', () => {
    const { logger, logs } = newLogger();
    logger.warn('careful');
    const [line] = logs.lines();
    expect(line?.level).toBe('warn');
    expect(new Date(String(line?.time)).toISOString()).toBe(line?.time);
  });

  it('drops lines below the configured level', () => {
    const { logger, logs } = newLogger('warn');
    logger.info('quiet');
    logger.error('loud');
    expect(logs.lines().map((line) => line.msg)).toEqual(['loud']);
  });
});

describe('createLogger trace correlation', () => {
  let tracing: Tracing;

  beforeAll(() => {
    tracing = startTracing({ serviceName: 'logger-test', exporter: new InMemorySpanExporter() });
  });

  afterAll(async () => {
    await tracing.shutdown();
  });

  it('adds traceId and spanId of the active span to lines logged inside it', () => {
    const { logger, logs } = newLogger();
    const ids = tracing.tracer.startActiveSpan('work', (span) => {
      logger.info('inside');
      span.end();
      return span.spanContext();
    });
    const [line] = logs.lines();
    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(line?.traceId).toBe(ids.traceId);
    expect(line?.spanId).toBe(ids.spanId);
  });

  it('omits traceId and spanId on lines logged outside any span', () => {
    const { logger, logs } = newLogger();
    tracing.tracer.startActiveSpan('finished', (span) => span.end());
    logger.info('outside');
    const [line] = logs.lines();
    expect(line).not.toHaveProperty('traceId');
    expect(line).not.toHaveProperty('spanId');
  });

  it('reports the child span id on lines logged inside a nested span', () => {
    const { logger, logs } = newLogger();
    const ids = tracing.tracer.startActiveSpan('parent', (parent) => {
      const child = tracing.tracer.startActiveSpan('child', (span) => {
        logger.info('inside child');
        span.end();
        return span.spanContext();
      });
      parent.end();
      return { parent: parent.spanContext(), child };
    });
    const [line] = logs.lines();
    expect(line?.traceId).toBe(ids.parent.traceId);
    expect(line?.spanId).toBe(ids.child.spanId);
    expect(line?.spanId).not.toBe(ids.parent.spanId);
  });
});
