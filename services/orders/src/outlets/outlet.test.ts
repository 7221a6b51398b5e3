import { describe, expect, it } from 'vitest';
import { findRepeatedComponents, isKnownTimeZone, normaliseName } from './outlet.ts';

describe('isKnownTimeZone', () => {
  it.each(['UTC', 'Europe/Berlin', 'America/New_York', 'America/Argentina/Buenos_Aires'])(
    'accepts the IANA zone %s',
    (zone) => {
      expect(isKnownTimeZone(zone)).toBe(true);
    },
  );

  it.each(['Mars/Olympus', '+01:00', 'Europe/', '../etc/passwd', ''])('refuses %j', (zone) => {
    expect(isKnownTimeZone(zone)).toBe(false);
  });
});

describe('findRepeatedComponents', () => {
  it('lists the index of every component that repeats an earlier stock item, ignoring case', () => {
    const bun = '0190a4b2-7c1d-7e3f-8a4b-5c6d7e8f9a0b';
    const patty = '0190a4b2-7c1d-7e3f-8a4b-5c6d7e8f9a0c';
    expect(
      findRepeatedComponents([
        { stockItemId: bun, quantity: 1 },
        { stockItemId: patty, quantity: 1 },
        { stockItemId: bun.toUpperCase(), quantity: 2 },
        { stockItemId: bun, quantity: 1 },
      ]),
    ).toEqual([2, 3]);
  });

  it('is empty for a recipe of distinct items', () => {
    expect(findRepeatedComponents([{ stockItemId: 'a', quantity: 1 }])).toEqual([]);
  });
});

describe('normaliseName', () => {
  it('trims surrounding spaces', () => {
    expect(normaliseName('  Burger  ', '/body/name')).toBe('Burger');
  });

  it.each([' ', 'x'.repeat(201)])('refuses %j with orders.invalid_name at the pointer', (name) => {
    expect(() => normaliseName(name, '/body/name')).toThrow(
      expect.objectContaining({
        code: 'orders.invalid_name',
        errors: [{ pointer: '/body/name', detail: expect.any(String) }],
      }),
    );
  });
});
