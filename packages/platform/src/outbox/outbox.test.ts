import { EventValidationError } from '@keel/contracts';
import { TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { AppError, type ErrorKind } from '../errors/index.ts';
import {
  classifyFailure,
  computeRetryDelayMs,
  formatTraceparent,
  isSubscribedTo,
  parseTraceparent,
  type Subscription,
  toPublisherSubscription,
  validateSubscriptions,
} from './outbox.ts';

const policy = { initialDelayMs: 1000, maxDelayMs: 10_000 };

function buildSubscription(overrides: Partial<Subscription> = {}): Subscription {
  return {
    name: 'orders.analytics',
    eventTypes: ['orders.order_placed.v1'],
    isOrderedPerAggregate: false,
    maxAttempts: 3,
    handler: async () => undefined,
    ...overrides,
  };
}

describe('computeRetryDelayMs', () => {
  it('doubles the delay with every attempt and caps it at maxDelayMs', () => {
    const full = () => 1;
    expect([1, 2, 3, 4, 5, 6].map((attempt) => computeRetryDelayMs(attempt, policy, full))).toEqual([
      1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
  });

  it('jitters between half and all of the exponential delay', () => {
    expect(computeRetryDelayMs(3, policy, () => 0)).toBe(2000);
    expect(computeRetryDelayMs(3, policy, () => 0.5)).toBe(3000);
  });

  it('stays finite for an absurd attempt number', () => {
    expect(computeRetryDelayMs(10_000, policy, () => 1)).toBe(10_000);
  });
});

describe('classifyFailure', () => {
  it.each<[ErrorKind, boolean]>([
    ['invalid', true],
    ['conflict', true],
    ['unprocessable', true],
    ['unavailable', false],
    ['rate_limited', false],
    ['not_found', false],
    ['internal', false],
  ])('treats an AppError of kind %s as permanent: %s', (kind, isPermanent) => {
    expect(classifyFailure(new AppError(kind, 'orders.some_reason', 'detail'))).toEqual({
      code: 'orders.some_reason',
      isPermanent,
    });
  });

  it("dead-letters a contract's EventValidationError at once", () => {
    expect(classifyFailure(new EventValidationError('orders.order_placed.v1', []))).toEqual({
      code: 'events.invalid_envelope',
      isPermanent: true,
    });
  });

  it('keeps only the SQLSTATE of a database error and retries it', () => {
    const deadlock = Object.assign(new Error('deadlock detected on relation "orders" for user@example.com'), {
      code: '40P01',
    });
    expect(classifyFailure(deadlock)).toEqual({ code: 'pg.40P01', isPermanent: false });
  });

  it('stores a generic code, never the message, for an unexpected error', () => {
    expect(classifyFailure(new TypeError('jane@example.com is not a function'))).toEqual({
      code: 'events.handler_failed',
      isPermanent: false,
    });
    expect(classifyFailure('a string')).toEqual({ code: 'events.handler_failed', isPermanent: false });
  });
});

describe('traceparent', () => {
  const spanContext = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
  };

  it('formats and parses a W3C traceparent round trip', () => {
    const traceparent = formatTraceparent(spanContext);
    expect(traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(parseTraceparent(traceparent)).toEqual({ ...spanContext, isRemote: true });
  });

  it('formats nothing for the no-op span of disabled tracing', () => {
    expect(
      formatTraceparent({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 }),
    ).toBeUndefined();
    expect(formatTraceparent(undefined)).toBeUndefined();
  });

  it.each([
    '',
    'garbage',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
  ])('parses %j as no parent', (value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });
});

describe('validateSubscriptions', () => {
  it('accepts exact types and the wildcard', () => {
    expect(() =>
      validateSubscriptions([buildSubscription(), buildSubscription({ name: 'relay', eventTypes: ['*'] })]),
    ).not.toThrow();
  });

  it.each<[string, Partial<Subscription>[]]>([
    ['a duplicate name', [{}, {}]],
    ['an upper-case name', [{ name: 'Orders' }]],
    ['no event type', [{ eventTypes: [] }]],
    ['an unversioned event type', [{ eventTypes: ['orders.order_placed'] }]],
    ['zero attempts', [{ maxAttempts: 0 }]],
    ['fractional attempts', [{ maxAttempts: 1.5 }]],
  ])('rejects %s with events.invalid_subscription', (_label, overrides) => {
    expect(() => validateSubscriptions(overrides.map(buildSubscription))).toThrow(
      expect.objectContaining({ code: 'events.invalid_subscription' }),
    );
  });
});

describe('isSubscribedTo', () => {
  it('matches a listed type or the wildcard, nothing else', () => {
    expect(isSubscribedTo({ eventTypes: ['orders.order_placed.v1'] }, 'orders.order_placed.v1')).toBe(true);
    expect(isSubscribedTo({ eventTypes: ['orders.order_placed.v1'] }, 'orders.order_placed.v2')).toBe(false);
    expect(isSubscribedTo({ eventTypes: ['*'] }, 'orders.order_placed.v2')).toBe(true);
  });
});

describe('toPublisherSubscription', () => {
  it('feeds a publisher in per-aggregate order with a generous attempt budget', async () => {
    const published: string[] = [];
    const subscription = toPublisherSubscription({
      name: 'jetstream.relay',
      eventTypes: ['*'],
      publish: async (event) => void published.push(event.id),
    });
    expect(subscription).toMatchObject({
      name: 'jetstream.relay',
      isOrderedPerAggregate: true,
      maxAttempts: 50,
    });
    await subscription.handler(
      {
        id: 'e1',
        type: 'orders.order_placed.v1',
        aggregateType: 'order',
        aggregateId: 'o1',
        occurredAt: '2025-01-01T00:00:00.000Z',
        schemaVersion: 1,
        payload: {},
      },
      undefined as never,
    );
    expect(published).toEqual(['e1']);
  });
});
