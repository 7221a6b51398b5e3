import { describe, expect, it } from 'vitest';
import { classifyFailure } from '../outbox/index.ts';
import { toNatsFailure } from './jetstream.errors.ts';
import { buildEnvelope } from './jetstream.factories.ts';
import {
  consumerFilterSubjects,
  deadLetterStreamName,
  deadLetterSubject,
  durableNameFor,
  eventStreamName,
  eventSubject,
  isServerAtLeast,
  parseEnvelope,
  serviceOfEventType,
} from './jetstream.ts';
import { parseServers } from './nats.connection.ts';

const encode = (text: string) => new TextEncoder().encode(text);

describe('subject and stream names', () => {
  it('maps an event type to its service, subject and stream', () => {
    expect(serviceOfEventType('orders.order_placed.v1')).toBe('orders');
    expect(eventSubject('orders.order_placed.v1')).toBe('keel.events.orders.order_placed.v1');
    expect(eventStreamName('orders')).toBe('KEEL_EVENTS_ORDERS');
    expect(deadLetterStreamName('user_metadata')).toBe('KEEL_DEAD_USER_METADATA');
    expect(deadLetterSubject('orders', 'billing.orders')).toBe('keel.dead.orders.billing.orders');
    expect(durableNameFor('billing.orders:v2')).toBe('billing_orders:v2');
  });

  it('rejects a service name that cannot be a subject token with nats.invalid_settings', () => {
    expect(() => eventStreamName('Orders.*')).toThrow(
      expect.objectContaining({ code: 'nats.invalid_settings' }),
    );
  });

  it("filters a wildcard subscription on the whole service, and others on their types' subjects", () => {
    expect(consumerFilterSubjects('orders', ['*'])).toEqual(['keel.events.orders.>']);
    expect(consumerFilterSubjects('orders', ['orders.order_placed.v1', 'orders.order_paid.v1'])).toEqual([
      'keel.events.orders.order_placed.v1',
      'keel.events.orders.order_paid.v1',
    ]);
  });
});

describe('parseEnvelope', () => {
  it('returns the envelope of a well-formed message', () => {
    const event = buildEnvelope('orders');

    expect(parseEnvelope(encode(JSON.stringify(event)))).toEqual(event);
  });

  it.each([
    ['not JSON', '{'],
    ['an array', '[]'],
    ['no id', JSON.stringify({ ...buildEnvelope('orders'), id: undefined })],
    ['an id that is not a UUID', JSON.stringify({ ...buildEnvelope('orders'), id: 'evt-1' })],
    ['a malformed type', JSON.stringify({ ...buildEnvelope('orders'), type: 'orders.placed' })],
    ['no schema version', JSON.stringify({ ...buildEnvelope('orders'), schemaVersion: '1' })],
    ['no payload', JSON.stringify({ ...buildEnvelope('orders'), payload: undefined })],
  ])('rejects %s as a permanent nats.invalid_message', (_case, body) => {
    let error: unknown;
    try {
      parseEnvelope(encode(body));
    } catch (caught) {
      error = caught;
    }

    expect(classifyFailure(error)).toEqual({ code: 'nats.invalid_message', isPermanent: true });
  });
});

describe('parseServers', () => {
  it('takes user and password out of the URL, keeping only host and port for the client and the logs', () => {
    expect(parseServers('nats://keel:p%40ss@nats-1:4223, nats://keel:p%40ss@nats-2')).toEqual({
      servers: ['nats-1:4223', 'nats-2:4222'],
      auth: { user: 'keel', pass: 'p@ss' },
      isTls: false,
    });
  });

  it('reads a lone user part as a token and tls:// as TLS required', () => {
    expect(parseServers(['tls://s3cr3t@nats.example.com:4222'])).toEqual({
      servers: ['nats.example.com:4222'],
      auth: { token: 's3cr3t' },
      isTls: true,
    });
  });

  it('refuses a malformed URL without echoing it', () => {
    let error: unknown;
    try {
      parseServers('nats://keel:secret@[bad');
    } catch (caught) {
      error = caught;
    }

    expect(error).toMatchObject({ code: 'nats.invalid_settings' });
    expect((error as Error).message).not.toContain('secret');
  });
});

describe('toNatsFailure', () => {
  it('classifies "no answer" errors of the client as retryable nats.unavailable', () => {
    for (const name of ['TimeoutError', 'ConnectionError', 'ClosedConnectionError', 'JetStreamNotEnabled']) {
      const error = Object.assign(new Error('no answer'), { name });

      expect(classifyFailure(toNatsFailure(error, 'publish'))).toEqual({
        code: 'nats.unavailable',
        isPermanent: false,
      });
    }
  });

  it('classifies a JetStream API refusal as nats.publish_rejected, still retried', () => {
    const error = Object.assign(new Error('maximum messages exceeded'), { name: 'JetStreamApiError' });

    expect(classifyFailure(toNatsFailure(error, 'publish'))).toEqual({
      code: 'nats.publish_rejected',
      isPermanent: false,
    });
  });
});

describe('isServerAtLeast', () => {
  it('compares major and minor versions', () => {
    expect(isServerAtLeast('2.9.10', 2, 10)).toBe(false);
    expect(isServerAtLeast('2.10.0', 2, 10)).toBe(true);
    expect(isServerAtLeast('2.11.3', 2, 10)).toBe(true);
    expect(isServerAtLeast('3.0.0', 2, 11)).toBe(true);
    expect(isServerAtLeast(undefined, 2, 10)).toBe(false);
  });
});
