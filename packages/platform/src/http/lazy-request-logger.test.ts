import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../observability/index.ts';
import { captureLogs } from '../testing/test-app.ts';
import { lazyRequestLoggerFactory } from './lazy-request-logger.ts';

function setUp(level: string) {
  const { stream, logs } = captureLogs();
  const logger = createLogger({ level, destination: stream });
  const makeChild = vi.spyOn(logger, 'child');
  return { logger, logs, children: () => makeChild.mock.calls.length };
}

describe('lazyRequestLoggerFactory', () => {
  it('makes no child and writes nothing for calls below the level', () => {
    const { logger, logs, children } = setUp('warn');
    const log = lazyRequestLoggerFactory(logger, { requestId: 'req-1' });
    log.info({ a: 1 }, 'request completed');
    log.debug('details');
    log.trace('more');
    expect(children()).toBe(0);
    expect(logs.lines()).toHaveLength(0);
  });

  it('makes the child once, on the first line it writes, with the request bindings', () => {
    const { logger, logs, children } = setUp('warn');
    const log = lazyRequestLoggerFactory(logger, { requestId: 'req-2' });
    log.warn({ code: 'x' }, 'first');
    log.error('second');
    log.info('dropped');
    expect(children()).toBe(1);
    expect(logs.lines()).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'first', requestId: 'req-2', code: 'x' }),
      expect.objectContaining({ level: 'error', msg: 'second', requestId: 'req-2' }),
    ]);
  });

  it('hands everything else to the real child: its children keep both bindings', () => {
    const { logger, logs } = setUp('info');
    const log = lazyRequestLoggerFactory(logger, { requestId: 'req-3' });
    expect(log.level).toBe('info');
    log.child({ feature: 'search' }).info('nested');
    expect(logs.lines()).toEqual([
      expect.objectContaining({ msg: 'nested', requestId: 'req-3', feature: 'search' }),
    ]);
  });

  it('makes the child at once for a route with its own log level', () => {
    const { logger, logs, children } = setUp('warn');
    const log = lazyRequestLoggerFactory(logger, { requestId: 'req-4' }, { level: 'debug' });
    expect(children()).toBe(1);
    log.debug('route debug');
    expect(logs.lines()).toEqual([expect.objectContaining({ level: 'debug', msg: 'route debug' })]);
  });
});
