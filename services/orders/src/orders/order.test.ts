import { AppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import {
  aggregateStockNeeds,
  assertCancellable,
  assertDistinctMenuItems,
  assertStatusTransition,
  canCancel,
  compareIds,
  decodeCursor,
  encodeCursor,
  formatEtag,
  isConsumingStock,
  nextStatusOf,
  ORDER_STATUSES,
  type OrderStatus,
  type PricedMenuItem,
  parseIfMatch,
  priceLines,
  timestampColumnOf,
} from './order.ts';

/** Runs `work`, expecting an AppError; returns it for assertions. */
function captureAppError(work: () => unknown): AppError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected an AppError, but nothing was thrown');
}

function buildMenuItem(overrides: Partial<PricedMenuItem> = {}): PricedMenuItem {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'Burger',
    priceMinor: 899,
    isAvailable: true,
    components: [],
    ...overrides,
  };
}

const FORWARD: [OrderStatus, OrderStatus][] = [
  ['PLACED', 'CONFIRMED'],
  ['CONFIRMED', 'PREPARING'],
  ['PREPARING', 'READY'],
  ['READY', 'OUT_FOR_DELIVERY'],
  ['OUT_FOR_DELIVERY', 'DELIVERED'],
];

describe('order status transitions', () => {
  it.each(FORWARD)('allows %s → %s', (from, to) => {
    expect(nextStatusOf(from)).toBe(to);
    expect(() => assertStatusTransition(from, to)).not.toThrow();
  });

  it('allows no other pair of statuses', () => {
    const allowed = new Set(FORWARD.map(([from, to]) => `${from}>${to}`));
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) {
        if (allowed.has(`${from}>${to}`)) continue;
        const error = captureAppError(() => assertStatusTransition(from, to));
        expect(error.code).toBe('orders.invalid_transition');
        expect(error.kind).toBe('conflict');
        expect(error.extensions).toEqual({ from, to });
      }
    }
  });

  it('ends at DELIVERED and CANCELLED', () => {
    expect(nextStatusOf('DELIVERED')).toBeUndefined();
    expect(nextStatusOf('CANCELLED')).toBeUndefined();
  });

  it('names the timestamp each reachable status sets, and none for PLACED or CANCELLED', () => {
    expect(FORWARD.map(([, to]) => timestampColumnOf(to))).toEqual([
      'confirmed_at',
      'preparing_at',
      'ready_at',
      'out_for_delivery_at',
      'delivered_at',
    ]);
    expect(timestampColumnOf('PLACED')).toBeUndefined();
    expect(timestampColumnOf('CANCELLED')).toBeUndefined();
  });

  it('consumes stock only when the order goes out for delivery', () => {
    expect(ORDER_STATUSES.filter(isConsumingStock)).toEqual(['OUT_FOR_DELIVERY']);
  });
});

describe('cancellation rules', () => {
  it('lets the customer cancel only while PLACED or CONFIRMED', () => {
    expect(ORDER_STATUSES.filter((status) => canCancel(status, 'customer'))).toEqual(['PLACED', 'CONFIRMED']);
  });

  it('lets staff cancel until the order leaves the kitchen', () => {
    expect(ORDER_STATUSES.filter((status) => canCancel(status, 'staff'))).toEqual([
      'PLACED',
      'CONFIRMED',
      'PREPARING',
      'READY',
    ]);
  });

  it.each(['PREPARING', 'READY'] as const)(
    'tells a customer cancelling a %s order that the window closed',
    (status) => {
      expect(captureAppError(() => assertCancellable(status, 'customer')).code).toBe(
        'orders.cancel_window_closed',
      );
    },
  );

  it.each([
    ['OUT_FOR_DELIVERY', 'staff'],
    ['DELIVERED', 'staff'],
    ['CANCELLED', 'staff'],
    ['OUT_FOR_DELIVERY', 'customer'],
    ['CANCELLED', 'customer'],
  ] as const)('refuses to cancel a %s order for %s with orders.invalid_transition', (status, by) => {
    const error = captureAppError(() => assertCancellable(status, by));
    expect(error.code).toBe('orders.invalid_transition');
    expect(error.extensions).toEqual({ from: status, to: 'CANCELLED' });
  });
});

describe('placement rules', () => {
  it('refuses a menu item listed twice, pointing at the repeat', () => {
    const error = captureAppError(() =>
      assertDistinctMenuItems([
        { menuItemId: 'a', quantity: 1 },
        { menuItemId: 'b', quantity: 1 },
        { menuItemId: 'a', quantity: 2 },
      ]),
    );
    expect(error.code).toBe('orders.duplicate_menu_item');
    expect(error.errors).toEqual([{ pointer: '/body/lines/2/menu_item_id', detail: expect.any(String) }]);
  });

  it('prices lines from the menu, numbered in request order', () => {
    const burger = buildMenuItem({ id: 'burger', priceMinor: 899 });
    const cola = buildMenuItem({ id: 'cola', name: 'Cola', priceMinor: 250 });
    const menu = new Map([
      [burger.id, burger],
      [cola.id, cola],
    ]);
    const priced = priceLines(
      [
        { menuItemId: 'cola', quantity: 3 },
        { menuItemId: 'burger', quantity: 2 },
      ],
      menu,
    );
    expect(priced.totalMinor).toBe(3 * 250 + 2 * 899);
    expect(priced.lines).toEqual([
      {
        lineNumber: 1,
        menuItemId: 'cola',
        name: 'Cola',
        quantity: 3,
        unitPriceMinor: 250,
        lineTotalMinor: 750,
      },
      {
        lineNumber: 2,
        menuItemId: 'burger',
        name: 'Burger',
        quantity: 2,
        unitPriceMinor: 899,
        lineTotalMinor: 1798,
      },
    ]);
  });

  it('sums stock needs across lines and recipes, sorted by stock item id', () => {
    const bun = 'bbbbbbbb-0000-4000-8000-000000000000';
    const patty = 'aaaaaaaa-0000-4000-8000-000000000000';
    const burger = buildMenuItem({
      id: 'burger',
      components: [
        { stockItemId: bun, quantity: 1 },
        { stockItemId: patty, quantity: 2 },
      ],
    });
    const bunOnly = buildMenuItem({ id: 'roll', components: [{ stockItemId: bun, quantity: 3 }] });
    const menu = new Map([
      [burger.id, burger],
      [bunOnly.id, bunOnly],
    ]);
    expect(
      aggregateStockNeeds(
        [
          { menuItemId: 'roll', quantity: 2 },
          { menuItemId: 'burger', quantity: 5 },
        ],
        menu,
      ),
    ).toEqual([
      { stockItemId: patty, quantity: 10 },
      { stockItemId: bun, quantity: 6 + 5 },
    ]);
  });

  it('orders ids as PostgreSQL orders uuids (hex digits, case-insensitively)', () => {
    const ids = ['f0000000-0000-4000-8000-000000000000', '0a000000-0000-4000-8000-000000000000'];
    expect([...ids].sort(compareIds)).toEqual([ids[1], ids[0]]);
    expect(compareIds('A0000000-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-000000000000')).toBe(
      0,
    );
  });
});

describe('If-Match', () => {
  it.each([
    ['"3"', 3],
    [' "12" ', 12],
    ['W/"7"', 7],
  ])('reads %j as version %i', (header, version) => {
    expect(parseIfMatch(header)).toBe(version);
  });

  it('is undefined when absent', () => {
    expect(parseIfMatch(undefined)).toBeUndefined();
  });

  it.each(['*', '3', '"0"', '"-1"', '"1", "2"', '"abc"', '"99999999999"', ''])(
    'refuses %j with orders.invalid_if_match',
    (header) => {
      expect(captureAppError(() => parseIfMatch(header)).code).toBe('orders.invalid_if_match');
    },
  );

  it('formats the version as a strong ETag that parses back', () => {
    expect(formatEtag(4)).toBe('"4"');
    expect(parseIfMatch(formatEtag(4))).toBe(4);
  });
});

describe('list cursor', () => {
  const cursor = { placedAt: '2026-01-02T03:04:05.123456Z', id: '0190f3a0-0000-7000-8000-000000000001' };

  it('round-trips', () => {
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
  });

  it('is opaque base64url', () => {
    expect(encodeCursor(cursor)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['not base64 json', 'not-a-cursor'],
    ['an array', Buffer.from('[1,2]').toString('base64url')],
    ['a bad id', Buffer.from(JSON.stringify({ p: cursor.placedAt, i: 'x' })).toString('base64url')],
    [
      'a millisecond timestamp',
      Buffer.from(JSON.stringify({ p: '2026-01-02T03:04:05.123Z', i: cursor.id })).toString('base64url'),
    ],
    [
      'an impossible date',
      Buffer.from(JSON.stringify({ p: '2026-13-45T03:04:05.123456Z', i: cursor.id })).toString('base64url'),
    ],
  ])('refuses %s with orders.invalid_cursor', (_label, value) => {
    expect(captureAppError(() => decodeCursor(value)).code).toBe('orders.invalid_cursor');
  });
});
