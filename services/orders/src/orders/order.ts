import { ORDER_STATUSES, type OrderStatus } from '@keel/contracts';
import { assertNever } from '@keel/platform/errors';
import {
  decodeTimeIdCursor,
  encodeTimeIdCursor,
  formatVersionEtag,
  parseIfMatchVersion,
} from '@keel/platform/http';
import {
  cancelWindowClosed,
  duplicateMenuItem,
  invalidCursor,
  invalidIfMatch,
  invalidTransition,
} from './order.errors.ts';

export { ORDER_STATUSES, type OrderStatus };

export type OrderLine = {
  lineNumber: number;
  menuItemId: string;
  name: string;
  quantity: number;
  unitPriceMinor: number;
  lineTotalMinor: number;
};

export type CancelledBy = 'customer' | 'staff';

export type Order = {
  id: string;
  outletId: string;
  customerId: string;
  status: OrderStatus;
  version: number;
  currency: string;
  totalMinor: number;
  lines: OrderLine[];
  deliveryAddress: string | null;
  note: string | null;
  placedAt: Date;
  confirmedAt: Date | null;
  preparingAt: Date | null;
  readyAt: Date | null;
  outForDeliveryAt: Date | null;
  deliveredAt: Date | null;
  cancelledAt: Date | null;
  cancelledBy: CancelledBy | null;
  cancelReason: string | null;
  updatedAt: Date;
};

/** The order as a row, without its lines (what status changes return). */
export type OrderHeader = Omit<Order, 'lines'>;

export type RequestedLine = { menuItemId: string; quantity: number };

/** A menu item as placement needs it: its price and recipe (stock item id → quantity per unit). */
export type PricedMenuItem = {
  id: string;
  name: string;
  priceMinor: number;
  isAvailable: boolean;
  components: { stockItemId: string; quantity: number }[];
};

/** What one stock item must give up for an order. */
export type StockNeed = { stockItemId: string; quantity: number };

/** The order's progress, one step at a time; CANCELLED is reached only through cancellation. */
const NEXT_STATUS: Record<OrderStatus, OrderStatus | undefined> = {
  PLACED: 'CONFIRMED',
  CONFIRMED: 'PREPARING',
  PREPARING: 'READY',
  READY: 'OUT_FOR_DELIVERY',
  OUT_FOR_DELIVERY: 'DELIVERED',
  DELIVERED: undefined,
  CANCELLED: undefined,
};

export function nextStatusOf(status: OrderStatus): OrderStatus | undefined {
  return NEXT_STATUS[status];
}

/** Throws `orders.invalid_transition` unless `to` is the one step after `from`. */
export function assertStatusTransition(from: OrderStatus, to: OrderStatus): void {
  if (NEXT_STATUS[from] !== to) throw invalidTransition(from, to);
}

/** The timestamp column a status change sets. */
export type StatusTimestamp =
  | 'confirmed_at'
  | 'preparing_at'
  | 'ready_at'
  | 'out_for_delivery_at'
  | 'delivered_at';

export function timestampColumnOf(status: OrderStatus): StatusTimestamp | undefined {
  switch (status) {
    case 'CONFIRMED':
      return 'confirmed_at';
    case 'PREPARING':
      return 'preparing_at';
    case 'READY':
      return 'ready_at';
    case 'OUT_FOR_DELIVERY':
      return 'out_for_delivery_at';
    case 'DELIVERED':
      return 'delivered_at';
    case 'PLACED':
    case 'CANCELLED':
      return undefined;
    default:
      return assertNever(status);
  }
}

/** Reservations turn into consumed stock when the order leaves the kitchen. */
export function isConsumingStock(to: OrderStatus): boolean {
  return to === 'OUT_FOR_DELIVERY';
}

/**
 * Who may cancel when. Customers only until the kitchen starts (food already
 * being made is the outlet's call); staff until the order leaves the kitchen,
 * after which its stock is consumed and there is nothing left to return.
 */
const CANCELLABLE_BY: Record<CancelledBy, readonly OrderStatus[]> = {
  customer: ['PLACED', 'CONFIRMED'],
  staff: ['PLACED', 'CONFIRMED', 'PREPARING', 'READY'],
};

export function canCancel(status: OrderStatus, by: CancelledBy): boolean {
  return CANCELLABLE_BY[by].includes(status);
}

/** Throws the error that explains why `by` cannot cancel an order in `status`. */
export function assertCancellable(status: OrderStatus, by: CancelledBy): void {
  if (canCancel(status, by)) return;
  // A customer too late for a cancellation staff could still make is told so.
  if (by === 'customer' && canCancel(status, 'staff')) throw cancelWindowClosed(status);
  throw invalidTransition(status, 'CANCELLED');
}

/** Refuses an order that lists the same menu item twice: the client should send one line with the sum. */
export function assertDistinctMenuItems(lines: readonly RequestedLine[]): void {
  const seen = new Map<string, number>();
  lines.forEach((line, index) => {
    const first = seen.get(line.menuItemId);
    if (first !== undefined) throw duplicateMenuItem(line.menuItemId, first, index);
    seen.set(line.menuItemId, index);
  });
}

/** Priced lines, numbered from 1 in the order the client sent them, and their total. */
export function priceLines(
  lines: readonly RequestedLine[],
  menu: ReadonlyMap<string, PricedMenuItem>,
): { lines: OrderLine[]; totalMinor: number } {
  let totalMinor = 0;
  const priced = lines.map((line, index): OrderLine => {
    const item = menu.get(line.menuItemId);
    if (item === undefined) throw new Error(`priceLines: menu item ${line.menuItemId} was not loaded`);
    const lineTotalMinor = item.priceMinor * line.quantity;
    totalMinor += lineTotalMinor;
    return {
      lineNumber: index + 1,
      menuItemId: item.id,
      name: item.name,
      quantity: line.quantity,
      unitPriceMinor: item.priceMinor,
      lineTotalMinor,
    };
  });
  return { lines: priced, totalMinor };
}

/**
 * How much of each stock item the order needs, summed across lines and
 * recipes (one reservation per item, however many lines use it), sorted by
 * stock item id so that the statement's input and the out-of-stock report are
 * deterministic. The lock order itself is the statement's ORDER BY.
 */
export function aggregateStockNeeds(
  lines: readonly RequestedLine[],
  menu: ReadonlyMap<string, PricedMenuItem>,
): StockNeed[] {
  const needs = new Map<string, number>();
  for (const line of lines) {
    for (const component of menu.get(line.menuItemId)?.components ?? []) {
      needs.set(
        component.stockItemId,
        (needs.get(component.stockItemId) ?? 0) + component.quantity * line.quantity,
      );
    }
  }
  return [...needs]
    .map(([stockItemId, quantity]) => ({ stockItemId, quantity }))
    .sort((a, b) => compareIds(a.stockItemId, b.stockItemId));
}

/**
 * Compares two uuids the way PostgreSQL orders the `uuid` type (byte-wise,
 * which for canonical lower-case text is plain string order).
 */
export function compareIds(a: string, b: string): number {
  const left = a.toLowerCase();
  const right = b.toLowerCase();
  return left < right ? -1 : left > right ? 1 : 0;
}

/** The strong ETag of an order version. */
export function formatEtag(version: number): string {
  return formatVersionEtag(version);
}

/**
 * The version an `If-Match` header names, or undefined when it is absent.
 * `*` is refused with `orders.invalid_if_match`: it cannot express "the
 * version I saw", which is the whole point of the check on an order.
 */
export function parseIfMatch(header: string | undefined): number | undefined {
  // Weak W/"3" too: the version is the order representation's whole identity.
  const expected = parseIfMatchVersion(header, invalidIfMatch, { isWeakAccepted: true });
  if (expected === '*') throw invalidIfMatch();
  return expected;
}

export function orderLocation(id: string): string {
  return `/orders/${id}`;
}

/**
 * A position in the (placed_at desc, id desc) listing. `placedAt` is the
 * timestamp at full database precision (microseconds, UTC): a millisecond
 * JavaScript Date would skip rows placed within the same millisecond.
 */
export type OrderCursor = { placedAt: string; id: string };

/** Opaque to clients: base64url of the last item's sort key. */
export function encodeCursor(cursor: OrderCursor): string {
  return encodeTimeIdCursor({ at: cursor.placedAt, id: cursor.id });
}

/** Throws `orders.invalid_cursor` for anything `encodeCursor` did not produce. */
export function decodeCursor(value: string): OrderCursor {
  const cursor = decodeTimeIdCursor(value);
  if (cursor === undefined) throw invalidCursor();
  return { placedAt: cursor.at, id: cursor.id };
}
