import type { OrderStatus } from '@keel/contracts';
import { AppError } from '@keel/platform/errors';

/** Every error code the orders feature produces. */
export type OrderErrorCode =
  | 'orders.order_not_found'
  | 'orders.outlet_not_found'
  | 'orders.outlet_inactive'
  | 'orders.unknown_menu_item'
  | 'orders.menu_item_unavailable'
  | 'orders.duplicate_menu_item'
  | 'orders.out_of_stock'
  | 'orders.invalid_transition'
  | 'orders.cancel_window_closed'
  | 'orders.precondition_required'
  | 'orders.invalid_if_match'
  | 'orders.version_mismatch'
  | 'orders.invalid_cursor';

/** A stock item an order could not get enough of, and the menu items that need it. */
export type ShortStockItem = {
  stock_item_id: string;
  sku: string;
  requested: number;
  available: number;
  menu_items: { menu_item_id: string; name: string }[];
};

/** Missing, or not the caller's to see: the two must look the same. */
export function orderNotFound(id: string): AppError {
  return new AppError(
    'not_found',
    'orders.order_not_found' satisfies OrderErrorCode,
    `No order with id ${id}`,
  );
}

export function outletNotFound(id: string, pointer: string): AppError {
  return new AppError(
    'not_found',
    'orders.outlet_not_found' satisfies OrderErrorCode,
    `No outlet with id ${id}`,
    {
      errors: [{ pointer, detail: 'is not a known outlet' }],
    },
  );
}

export function outletInactive(id: string): AppError {
  return new AppError(
    'unprocessable',
    'orders.outlet_inactive' satisfies OrderErrorCode,
    `Outlet ${id} is not taking orders`,
    { errors: [{ pointer: '/body/outlet_id', detail: 'is not taking orders' }] },
  );
}

/** Unknown ids, and items of another outlet (an order belongs to exactly one kitchen). */
export function unknownMenuItems(outletId: string, lineIndexes: { index: number; id: string }[]): AppError {
  return new AppError(
    'unprocessable',
    'orders.unknown_menu_item' satisfies OrderErrorCode,
    `The order lists menu items that outlet ${outletId} does not sell`,
    {
      extensions: { menu_item_ids: lineIndexes.map((line) => line.id) },
      errors: lineIndexes.map((line) => ({
        pointer: `/body/lines/${line.index}/menu_item_id`,
        detail: 'is not on this outlet’s menu',
      })),
    },
  );
}

export function menuItemsUnavailable(lineIndexes: { index: number; id: string }[]): AppError {
  return new AppError(
    'unprocessable',
    'orders.menu_item_unavailable' satisfies OrderErrorCode,
    'The order lists menu items that are not available right now',
    {
      extensions: { menu_item_ids: lineIndexes.map((line) => line.id) },
      errors: lineIndexes.map((line) => ({
        pointer: `/body/lines/${line.index}/menu_item_id`,
        detail: 'is not available right now',
      })),
    },
  );
}

export function duplicateMenuItem(menuItemId: string, firstIndex: number, index: number): AppError {
  return new AppError(
    'invalid',
    'orders.duplicate_menu_item' satisfies OrderErrorCode,
    `Menu item ${menuItemId} is listed twice; send one line with the total quantity`,
    {
      extensions: { menu_item_id: menuItemId },
      errors: [
        {
          pointer: `/body/lines/${index}/menu_item_id`,
          detail: `repeats /body/lines/${firstIndex}/menu_item_id`,
        },
      ],
    },
  );
}

export function outOfStock(shortItems: ShortStockItem[]): AppError {
  return new AppError(
    'conflict',
    'orders.out_of_stock' satisfies OrderErrorCode,
    'Not enough stock for this order; nothing was reserved',
    { extensions: { short_items: shortItems } },
  );
}

export function invalidTransition(from: OrderStatus, to: OrderStatus): AppError {
  return new AppError(
    'conflict',
    'orders.invalid_transition' satisfies OrderErrorCode,
    `An order cannot go from ${from} to ${to}`,
    { extensions: { from, to } },
  );
}

export function cancelWindowClosed(status: OrderStatus): AppError {
  return new AppError(
    'conflict',
    'orders.cancel_window_closed' satisfies OrderErrorCode,
    `The kitchen has started on this order (${status}); ask the outlet to cancel it`,
    { extensions: { from: status, to: 'CANCELLED' } },
  );
}

// 428 Precondition Required is what RFC 6585 names for this; the platform's
// error kinds have no 428, so it is a 400 whose code says the same thing.
export function preconditionRequired(): AppError {
  return new AppError(
    'invalid',
    'orders.precondition_required' satisfies OrderErrorCode,
    'Send If-Match with the ETag of the order version you are changing',
    { errors: [{ pointer: '/headers/if-match', detail: 'is required' }] },
  );
}

export function invalidIfMatch(): AppError {
  return new AppError(
    'invalid',
    'orders.invalid_if_match' satisfies OrderErrorCode,
    'If-Match must be one ETag of an order version, e.g. "3"',
    { errors: [{ pointer: '/headers/if-match', detail: 'must be one ETag such as "3"' }] },
  );
}

export function versionMismatch(expected: number, current: number): AppError {
  return new AppError(
    'precondition_failed',
    'orders.version_mismatch' satisfies OrderErrorCode,
    `The order changed since version ${expected}; fetch it again`,
    { extensions: { current_version: current }, headers: { etag: `"${current}"` } },
  );
}

export function invalidCursor(): AppError {
  return new AppError(
    'invalid',
    'orders.invalid_cursor' satisfies OrderErrorCode,
    'The cursor is not one this API issued',
    {
      errors: [{ pointer: '/querystring/cursor', detail: 'is not a valid cursor' }],
    },
  );
}
