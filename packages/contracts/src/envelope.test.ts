import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { defineEvent, EventValidationError } from './envelope.ts';

const OrderPlacedV1 = defineEvent(
  'orders.order_placed.v1',
  Type.Object({ orderId: Type.String({ format: 'uuid' }), totalMinor: Type.Integer({ minimum: 0 }) }),
);

function buildEnvelope(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d',
    type: 'orders.order_placed.v1',
    aggregateType: 'order',
    aggregateId: '0190a3c4-0000-7000-8000-000000000001',
    occurredAt: '2025-01-01T12:00:00.000Z',
    schemaVersion: 1,
    payload: { orderId: '0190a3c4-0000-7000-8000-000000000001', totalMinor: 1250 },
    ...overrides,
  };
}

describe('defineEvent', () => {
  it('parses a valid envelope into the typed event', () => {
    const event = OrderPlacedV1.parse(buildEnvelope());
    expect(event.payload.totalMinor).toBe(1250);
    expect(OrderPlacedV1.schemaVersion).toBe(1);
  });

  it('accepts a traceparent and envelope members it does not know', () => {
    const value = buildEnvelope({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      partition: 7,
    });
    expect(OrderPlacedV1.isEvent(value)).toBe(true);
  });

  it.each([
    ['another type', { type: 'orders.order_cancelled.v1' }, '/type'],
    ['a payload off its schema', { payload: { orderId: 'nope', totalMinor: -1 } }, '/payload/orderId'],
    ['an id that is not a UUID', { id: '42' }, '/id'],
    ['a time that is not ISO 8601', { occurredAt: 'yesterday' }, '/occurredAt'],
    ['a schema version of 0', { schemaVersion: 0 }, '/schemaVersion'],
    ['a malformed traceparent', { traceparent: 'abc' }, '/traceparent'],
  ])(
    'rejects an envelope with %s with EventValidationError naming the pointer',
    (_label, overrides, pointer) => {
      let caught: unknown;
      try {
        OrderPlacedV1.parse(buildEnvelope(overrides));
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(EventValidationError);
      expect(caught).toMatchObject({ kind: 'invalid', code: 'events.invalid_envelope' });
      expect((caught as EventValidationError).problems.map((problem) => problem.pointer)).toContain(pointer);
    },
  );

  it('keeps offending values, which may be personal data, out of the error message', () => {
    const error = (() => {
      try {
        OrderPlacedV1.parse(buildEnvelope({ payload: { orderId: 'jane@example.com', totalMinor: 1 } }));
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(EventValidationError);
    expect(error?.message).not.toContain('jane@example.com');
  });

  it('refuses an unversioned or capitalised event type at definition time', () => {
    expect(() => defineEvent('orders.order_placed', Type.Object({}))).toThrow();
    expect(() => defineEvent('Orders.OrderPlaced.v1', Type.Object({}))).toThrow();
    expect(() => defineEvent('orders.order_placed.v1', Type.Object({}), { schemaVersion: 0 })).toThrow();
  });
});
