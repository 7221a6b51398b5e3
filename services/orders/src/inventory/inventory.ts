import { formatVersionEtag, parseIfMatchVersion } from '@keel/platform/http';
import { invalidCursor, invalidIfMatch } from './inventory.errors.ts';

/** A stock item of one outlet as staff see it. */
export type StockItem = {
  id: string;
  outletId: string;
  sku: string;
  name: string;
  unit: string;
  onHand: number;
  /** Held by placed orders that have not left the kitchen. */
  reserved: number;
  /** What can still be sold: on hand − reserved. */
  available: number;
  lowStockThreshold: number;
  /** Available below the threshold. */
  isLow: boolean;
  /** Bumped by every change to on hand; the ETag `If-Match` compares. */
  version: number;
  updatedAt: Date;
};

export const ADJUSTMENT_REASONS = ['delivery', 'waste', 'count_correction', 'other'] as const;
export type AdjustmentReason = (typeof ADJUSTMENT_REASONS)[number];

/** The largest single adjustment: a typo (an extra few zeros) must not wipe or flood a stock count. */
export const MAX_ADJUSTMENT = 100_000;
/**
 * The most an outlet may hold of one item. Far below the `integer` column's
 * limit, so `on_hand + delta` can never overflow inside the conditional update.
 */
export const MAX_ON_HAND = 10_000_000;

export type AdjustmentInput = { delta: number; reason: AdjustmentReason; note?: string };

export type InventoryFilters = {
  isLowOnly: boolean;
  skuPrefix?: string;
  nameContains?: string;
};

export type InventoryPage = { items: StockItem[]; nextCursor: string | null };

export function isLowStock(stock: { onHand: number; reserved: number; lowStockThreshold: number }): boolean {
  return stock.onHand - stock.reserved < stock.lowStockThreshold;
}

/** The strong ETag of a stock item's version. */
export function stockItemETag(version: number): string {
  return formatVersionEtag(version);
}

/**
 * The version an `If-Match` header demands: undefined when the header is
 * absent or `*` (any current representation matches).
 */
export function parseIfMatch(header: string | undefined): number | undefined {
  const expected = parseIfMatchVersion(header, invalidIfMatch);
  return expected === '*' ? undefined : expected;
}

// Cursors are opaque to clients (base64url JSON) so the sort key can change
// without breaking them; decoding refuses anything this service did not make.
function encodeCursorParts(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

function decodeCursorParts(cursor: string, length: number): string[] {
  if (cursor.length > 400) throw invalidCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== length ||
    !parsed.every((part) => typeof part === 'string' && part.length > 0 && part.length <= 100)
  ) {
    throw invalidCursor();
  }
  return parsed as string[];
}

/** The inventory list is ordered by sku, unique within an outlet: the last sku is the whole key. */
export function encodeSkuCursor(sku: string): string {
  return encodeCursorParts([sku]);
}

export function decodeSkuCursor(cursor: string): string {
  const [sku] = decodeCursorParts(cursor, 1);
  if (sku === undefined) throw invalidCursor();
  return sku;
}

/** Alerts are listed newest first by (raised_at, id). */
export type AlertCursor = { raisedAt: Date; id: string };

export function encodeAlertCursor(cursor: AlertCursor): string {
  return encodeCursorParts([cursor.raisedAt.toISOString(), cursor.id]);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function decodeAlertCursor(cursor: string): AlertCursor {
  const [raisedAt, id] = decodeCursorParts(cursor, 2);
  if (raisedAt === undefined || id === undefined || !UUID.test(id)) throw invalidCursor();
  const time = new Date(raisedAt);
  if (Number.isNaN(time.getTime()) || time.toISOString() !== raisedAt) throw invalidCursor();
  return { raisedAt: time, id };
}

/** Raised once per `inventory_low_stock` event; open until a staff member acknowledges it. */
export type LowStockAlert = {
  id: string;
  outletId: string;
  stockItemId: string;
  sku: string;
  name: string;
  /** Available (on hand − reserved) when the threshold was crossed. */
  available: number;
  threshold: number;
  raisedAt: Date;
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
};

export type AlertPage = { alerts: LowStockAlert[]; nextCursor: string | null };
