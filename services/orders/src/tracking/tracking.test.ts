import { randomUUID } from 'node:crypto';
import {
  type EventEnvelope,
  EventValidationError,
  OrderCancelledV1,
  OrderPlacedV1,
  OrderStatusChangedV1,
} from '@keel/contracts';
import { isAppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import {
  formatSseMessage,
  parseFeedNotification,
  parseLastEventId,
  toFeedEntryInput,
  toSseMessage,
} from './tracking.ts';

const ids = { orderId: randomUUID(), outletId: randomUUID(), customerId: randomUUID() };
const at = '2030-01-01T12:00:00.000Z';

function envelope(type: string, payload: unknown): EventEnvelope {
  return {
    id: randomUUID(),
    type,
    aggregateType: 'order',
    aggregateId: ids.orderId,
    occurredAt: at,
    schemaVersion: 1,
    payload,
  };
}

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return isAppError(error) ? error.code : String(error);
  }
  return undefined;
}

describe('parseLastEventId', () => {
  it('returns undefined when neither header nor query is sent', () => {
    expect(parseLastEventId(undefined, undefined)).toBeUndefined();
  });

  it('reads a non-negative integer, zero included', () => {
    expect(parseLastEventId('0', undefined)).toBe(0);
    expect(parseLastEventId('42', undefined)).toBe(42);
    expect(parseLastEventId(undefined, '7')).toBe(7);
  });

  it('prefers the header, which EventSource sends on reconnect, to the query', () => {
    expect(parseLastEventId('9', '3')).toBe(9);
  });

  it('rejects with orders.last_event_id_invalid when it is not a non-negative integer', () => {
    for (const value of ['-1', 'abc', '1.5', '', '1e3', '9999999999999999', '12 34']) {
      expect(codeOf(() => parseLastEventId(value, undefined))).toBe('orders.last_event_id_invalid');
      expect(codeOf(() => parseLastEventId(undefined, value))).toBe('orders.last_event_id_invalid');
    }
    expect(codeOf(() => parseLastEventId(['1', '2'], undefined))).toBe('orders.last_event_id_invalid');
  });
});

describe('toFeedEntryInput', () => {
  it('projects order_placed with the lines but without prices per line or the customer id in the view', () => {
    const event = envelope(OrderPlacedV1.type, {
      ...ids,
      version: 1,
      currency: 'EUR',
      totalMinor: 1798,
      lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 2, unitPriceMinor: 899 }],
      placedAt: at,
    });
    const entry = toFeedEntryInput(event);
    expect(entry).toMatchObject({
      outletId: ids.outletId,
      orderId: ids.orderId,
      customerId: ids.customerId,
      eventId: event.id,
      eventName: 'order_placed',
      status: 'PLACED',
      version: 1,
    });
    expect(entry.view).toEqual({
      orderId: ids.orderId,
      outletId: ids.outletId,
      status: 'PLACED',
      version: 1,
      currency: 'EUR',
      totalMinor: 1798,
      lines: [{ name: 'Burger', quantity: 2 }],
      placedAt: at,
    });
  });

  it('projects order_status_changed without the staff account that made the change', () => {
    const changedBy = randomUUID();
    const entry = toFeedEntryInput(
      envelope(OrderStatusChangedV1.type, {
        ...ids,
        from: 'PLACED',
        to: 'CONFIRMED',
        version: 2,
        placedAt: at,
        changedAt: at,
        changedBy,
      }),
    );
    expect(entry).toMatchObject({ eventName: 'order_status_changed', status: 'CONFIRMED', version: 2 });
    expect(JSON.stringify(entry.view)).not.toContain(changedBy);
    expect(entry.view).toMatchObject({ from: 'PLACED', status: 'CONFIRMED' });
  });

  it('projects order_cancelled without the stock it released', () => {
    const stockItemId = randomUUID();
    const entry = toFeedEntryInput(
      envelope(OrderCancelledV1.type, {
        ...ids,
        from: 'CONFIRMED',
        version: 3,
        cancelledBy: 'customer',
        reason: 'changed my mind',
        currency: 'EUR',
        totalMinor: 899,
        releasedStock: [{ stockItemId, quantity: 1 }],
        placedAt: at,
        cancelledAt: at,
      }),
    );
    expect(entry).toMatchObject({ eventName: 'order_cancelled', status: 'CANCELLED', version: 3 });
    expect(JSON.stringify(entry.view)).not.toContain(stockItemId);
    expect(entry.view).toMatchObject({ cancelledBy: 'customer', reason: 'changed my mind' });
  });

  it('throws EventValidationError (dead-lettered, not retried) for a payload off its contract', () => {
    expect(() => toFeedEntryInput(envelope(OrderPlacedV1.type, { orderId: 'nope' }))).toThrow(
      EventValidationError,
    );
  });

  it('rejects with orders.tracking_unknown_event for a type it does not project', () => {
    expect(codeOf(() => toFeedEntryInput(envelope('orders.inventory_low_stock.v1', {})))).toBe(
      'orders.tracking_unknown_event',
    );
  });
});

describe('Server-Sent Events framing', () => {
  it('writes id, event and one data line of JSON, ended by a blank line', () => {
    const message = toSseMessage({
      outletId: ids.outletId,
      position: 12,
      orderId: ids.orderId,
      eventName: 'order_status_changed',
      view: { note: 'two\nlines' },
    });
    expect(formatSseMessage(message)).toBe(
      'id: 12\nevent: order_status_changed\ndata: {"note":"two\\nlines"}\n\n',
    );
  });

  it('parses the notification payload and ignores a malformed one', () => {
    expect(parseFeedNotification(`${ids.outletId}:15`)).toEqual({ outletId: ids.outletId, position: 15 });
    expect(parseFeedNotification('no-position')).toBeUndefined();
    expect(parseFeedNotification(`${ids.outletId}:0`)).toBeUndefined();
    expect(parseFeedNotification(`${ids.outletId}:x`)).toBeUndefined();
  });
});
