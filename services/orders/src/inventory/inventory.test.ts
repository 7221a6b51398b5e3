import { describe, expect, it } from 'vitest';
import {
  decodeAlertCursor,
  decodeSkuCursor,
  encodeAlertCursor,
  encodeSkuCursor,
  isLowStock,
  parseIfMatch,
  stockItemETag,
} from './inventory.ts';

const codeOf = (work: () => unknown): string | undefined => {
  try {
    work();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('isLowStock', () => {
  it('is true when available (on hand − reserved) is below the threshold', () => {
    expect(isLowStock({ onHand: 20, reserved: 11, lowStockThreshold: 10 })).toBe(true);
  });

  it('is false at exactly the threshold', () => {
    expect(isLowStock({ onHand: 20, reserved: 10, lowStockThreshold: 10 })).toBe(false);
  });

  it('is never true with a zero threshold', () => {
    expect(isLowStock({ onHand: 0, reserved: 0, lowStockThreshold: 0 })).toBe(false);
  });
});

describe('parseIfMatch', () => {
  it('reads the version of a quoted ETag, as stockItemETag writes it', () => {
    expect(parseIfMatch(stockItemETag(7))).toBe(7);
    expect(parseIfMatch(' "12" ')).toBe(12);
  });

  it('demands nothing when the header is absent or *', () => {
    expect(parseIfMatch(undefined)).toBeUndefined();
    expect(parseIfMatch('*')).toBeUndefined();
  });

  it.each(['7', '"0"', '"-1"', 'W/"3"', '"3", "4"', '"abc"', '"99999999999"', ''])(
    'refuses %j with orders.invalid_if_match',
    (header) => {
      expect(codeOf(() => parseIfMatch(header))).toBe('orders.invalid_if_match');
    },
  );
});

describe('sku cursors', () => {
  it('round-trips a sku', () => {
    expect(decodeSkuCursor(encodeSkuCursor('PATTY-BEEF_2.0'))).toBe('PATTY-BEEF_2.0');
  });

  it.each([
    ['not base64 JSON', 'not a cursor'],
    ['a JSON string rather than a list', Buffer.from('"BUN"').toString('base64url')],
    ['a list of two', Buffer.from('["A","B"]').toString('base64url')],
    ['a number', Buffer.from('[1]').toString('base64url')],
    ['an oversized value', 'A'.repeat(401)],
  ])('refuses %s with orders.invalid_cursor', (_label, cursor) => {
    expect(codeOf(() => decodeSkuCursor(cursor))).toBe('orders.invalid_cursor');
  });
});

describe('alert cursors', () => {
  it('round-trips time and id to the millisecond', () => {
    const cursor = {
      raisedAt: new Date('2031-02-03T04:05:06.789Z'),
      id: '0190a4b2-7c1d-7e3f-8a4b-5c6d7e8f9a0b',
    };
    expect(decodeAlertCursor(encodeAlertCursor(cursor))).toEqual(cursor);
  });

  it.each([
    ['a malformed id', Buffer.from('["2031-02-03T04:05:06.789Z","42"]').toString('base64url')],
    [
      'a malformed time',
      Buffer.from('["yesterday","0190a4b2-7c1d-7e3f-8a4b-5c6d7e8f9a0b"]').toString('base64url'),
    ],
    ['a sku cursor', encodeSkuCursor('BUN')],
  ])('refuses %s with orders.invalid_cursor', (_label, cursor) => {
    expect(codeOf(() => decodeAlertCursor(cursor))).toBe('orders.invalid_cursor');
  });
});
