import { AppError } from '@keel/platform/errors';

/** Every error code the inventory feature (stock levels, adjustments, low-stock alerts) can produce. */
export type InventoryErrorCode =
  | 'orders.outlet_not_found'
  | 'orders.stock_item_not_found'
  | 'orders.stock_would_go_negative'
  | 'orders.stock_would_exceed_maximum'
  | 'orders.stock_item_changed'
  | 'orders.invalid_if_match'
  | 'orders.invalid_cursor'
  | 'orders.alert_not_found';

// The same code as the catalogue's: to a caller outside the outlet, an outlet
// they may not act for and one that does not exist are indistinguishable.
export function outletNotFound(outletId: string): AppError {
  return new AppError(
    'not_found',
    'orders.outlet_not_found' satisfies InventoryErrorCode,
    `No outlet with id ${outletId}`,
  );
}

export function stockItemNotFound(stockItemId: string): AppError {
  return new AppError(
    'not_found',
    'orders.stock_item_not_found' satisfies InventoryErrorCode,
    `No stock item with id ${stockItemId} at this outlet`,
  );
}

export function stockWouldGoNegative(stock: { onHand: number; reserved: number; delta: number }): AppError {
  const available = stock.onHand - stock.reserved;
  return new AppError(
    'conflict',
    'orders.stock_would_go_negative' satisfies InventoryErrorCode,
    `Only ${available} available (${stock.onHand} on hand, ${stock.reserved} reserved by open orders); cannot remove ${-stock.delta}`,
    { extensions: { available, on_hand: stock.onHand, reserved: stock.reserved } },
  );
}

export function stockWouldExceedMaximum(stock: { onHand: number; delta: number; maximum: number }): AppError {
  return new AppError(
    'conflict',
    'orders.stock_would_exceed_maximum' satisfies InventoryErrorCode,
    `${stock.onHand} on hand plus ${stock.delta} exceeds the maximum of ${stock.maximum}`,
    { extensions: { on_hand: stock.onHand, maximum: stock.maximum } },
  );
}

export function stockItemChanged(currentVersion: number): AppError {
  return new AppError(
    'precondition_failed',
    'orders.stock_item_changed' satisfies InventoryErrorCode,
    `The stock item changed since it was read (now version ${currentVersion}); read it again`,
    { extensions: { current_version: currentVersion }, headers: { etag: `"${currentVersion}"` } },
  );
}

export function invalidIfMatch(): AppError {
  return new AppError(
    'invalid',
    'orders.invalid_if_match' satisfies InventoryErrorCode,
    'If-Match must be the ETag of the stock item (a quoted version, e.g. "3") or *',
    { errors: [{ pointer: '/headers/if-match', detail: 'must be a quoted version or *' }] },
  );
}

export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'orders.invalid_cursor' satisfies InventoryErrorCode,
    'The cursor is not one this list returned',
    { errors: [{ pointer: '/querystring/cursor', detail: 'must be a next_cursor from a previous page' }] },
  );
}

export function alertNotFound(alertId: string): AppError {
  return new AppError(
    'not_found',
    'orders.alert_not_found' satisfies InventoryErrorCode,
    `No low-stock alert with id ${alertId} at this outlet`,
  );
}
