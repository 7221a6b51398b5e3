import { describe, expect, it } from 'vitest';
import { AppError, type ErrorKind } from '../errors/index.ts';
import { JobsError } from './jobs.errors.ts';
import {
  assertValidQueueName,
  deadLetterQueueName,
  describeJobFailure,
  isRetryableJobError,
  JOB_QUEUE_DEFAULTS,
  type JobQueueDefinition,
  resolveJobQueue,
} from './jobs.ts';

function buildDefinition(overrides: Partial<JobQueueDefinition<unknown>> = {}): JobQueueDefinition<unknown> {
  return { name: 'orders.low-stock-alert', handler: async () => {}, ...overrides };
}

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return error instanceof JobsError ? error.code : 'not a JobsError';
  }
  return undefined;
}

describe('resolveJobQueue', () => {
  it('applies the defaults when a definition sets nothing but name and handler', () => {
    const queue = resolveJobQueue(buildDefinition());
    expect(queue).toMatchObject({
      retryLimit: JOB_QUEUE_DEFAULTS.retryLimit,
      retryDelaySeconds: 2,
      retryBackoff: true,
      deadLetter: true,
      policy: 'standard',
      concurrency: 1,
      fetchSize: 4,
      deadLetterQueue: 'orders.low-stock-alert.dead-letter',
    });
    expect(queue.retryLimit).toBe(5);
  });

  it('leaves the dead-letter queue unset when deadLetter is false', () => {
    expect(resolveJobQueue(buildDefinition({ deadLetter: false })).deadLetterQueue).toBeUndefined();
  });

  it.each([
    ['a fractional retry delay', { retryDelaySeconds: 0.5 }],
    ['a negative retry limit', { retryLimit: -1 }],
    ['zero concurrency', { concurrency: 0 }],
    ['a fetch size of 1', { fetchSize: 1 }],
    ['a fetch size over 100', { fetchSize: 101 }],
    ['a zero expiry', { expireInSeconds: 0 }],
    ['an unknown policy', { policy: 'fifo' as never }],
    ['a missing handler', { handler: undefined as never }],
  ])('rejects with jobs.invalid_definition when given %s', (_label, overrides) => {
    expect(codeOf(() => resolveJobQueue(buildDefinition(overrides)))).toBe('jobs.invalid_definition');
  });
});

describe('assertValidQueueName', () => {
  it.each(['orders.low-stock-alert', 'webhooks', 'a1.b2-c3'])('accepts %s', (name) => {
    expect(codeOf(() => assertValidQueueName(name))).toBeUndefined();
  });

  it.each(['Orders.alert', 'orders..alert', 'orders alert', '-orders', 'orders/alert', '', 'x'.repeat(101)])(
    'rejects with jobs.invalid_definition when the name is %j',
    (name) => {
      expect(codeOf(() => assertValidQueueName(name))).toBe('jobs.invalid_definition');
    },
  );

  it('rejects with jobs.invalid_definition when the name is a dead-letter queue name', () => {
    expect(codeOf(() => assertValidQueueName(deadLetterQueueName('orders.alert')))).toBe(
      'jobs.invalid_definition',
    );
  });
});

describe('isRetryableJobError', () => {
  it.each<ErrorKind>(['unavailable', 'rate_limited'])('retries an AppError of kind %s', (kind) => {
    expect(isRetryableJobError(new AppError(kind, 'test.failure', 'x'))).toBe(true);
  });

  it.each<ErrorKind>([
    'invalid',
    'conflict',
    'not_found',
    'forbidden',
    'unauthenticated',
    'precondition_failed',
    'unprocessable',
    'internal',
  ])('does not retry an AppError of kind %s', (kind) => {
    expect(isRetryableJobError(new AppError(kind, 'test.failure', 'x'))).toBe(false);
  });

  it('retries errors that are not AppErrors', () => {
    expect(isRetryableJobError(new TypeError('x is undefined'))).toBe(true);
    expect(isRetryableJobError('a string')).toBe(true);
  });
});

describe('describeJobFailure', () => {
  it('keeps kind, code and detail of an AppError', () => {
    expect(describeJobFailure(new AppError('invalid', 'orders.unknown_item', 'No item 42'))).toEqual({
      name: 'AppError',
      kind: 'invalid',
      code: 'orders.unknown_item',
      message: 'No item 42',
    });
  });

  it('keeps the SQLSTATE of a database error', () => {
    const error = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    expect(describeJobFailure(error)).toEqual({ name: 'Error', code: '40P01', message: 'deadlock detected' });
  });

  it('describes a thrown non-error', () => {
    expect(describeJobFailure(42)).toEqual({ name: 'NonError', message: '42' });
  });
});
