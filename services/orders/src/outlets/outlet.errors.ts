import { AppError } from '@keel/platform/errors';

/** Every error code the catalogue (outlets, menus, stock items) and staff assignment can produce. */
export type OutletErrorCode =
  | 'orders.outlet_not_found'
  | 'orders.menu_item_not_found'
  | 'orders.sku_taken'
  | 'orders.invalid_component'
  | 'orders.duplicate_component'
  | 'orders.invalid_time_zone'
  | 'orders.invalid_name'
  | 'orders.staff_assignment_not_found';

export function outletNotFound(outletId: string): AppError {
  return new AppError(
    'not_found',
    'orders.outlet_not_found' satisfies OutletErrorCode,
    `No outlet with id ${outletId}`,
  );
}

export function menuItemNotFound(menuItemId: string): AppError {
  return new AppError(
    'not_found',
    'orders.menu_item_not_found' satisfies OutletErrorCode,
    `No menu item with id ${menuItemId} at this outlet`,
  );
}

export function skuTaken(sku: string): AppError {
  return new AppError(
    'conflict',
    'orders.sku_taken' satisfies OutletErrorCode,
    `The outlet already has a stock item with sku ${sku}`,
    { errors: [{ pointer: '/body/sku', detail: 'is already used at this outlet' }] },
  );
}

/** Recipes may only use the outlet's own stock: the listed components are not stock items of it. */
export function invalidComponents(indexes: readonly number[]): AppError {
  return new AppError(
    'unprocessable',
    'orders.invalid_component' satisfies OutletErrorCode,
    'Every component must be a stock item of the same outlet',
    {
      errors: indexes.map((index) => ({
        pointer: `/body/components/${index}/stock_item_id`,
        detail: 'is not a stock item of this outlet',
      })),
    },
  );
}

export function duplicateComponents(indexes: readonly number[]): AppError {
  return new AppError(
    'invalid',
    'orders.duplicate_component' satisfies OutletErrorCode,
    'Each stock item may appear once in a recipe; give its total quantity',
    {
      errors: indexes.map((index) => ({
        pointer: `/body/components/${index}/stock_item_id`,
        detail: 'repeats an earlier component',
      })),
    },
  );
}

export function invalidTimeZone(): AppError {
  return new AppError(
    'invalid',
    'orders.invalid_time_zone' satisfies OutletErrorCode,
    'time_zone must be an IANA time zone, e.g. Europe/Berlin',
    { errors: [{ pointer: '/body/time_zone', detail: 'must be an IANA time zone' }] },
  );
}

export function invalidName(pointer: string): AppError {
  return new AppError(
    'invalid',
    'orders.invalid_name' satisfies OutletErrorCode,
    'Names must be 1-200 characters after trimming spaces',
    { errors: [{ pointer, detail: 'must be 1-200 characters after trimming' }] },
  );
}

export function staffAssignmentNotFound(accountId: string): AppError {
  return new AppError(
    'not_found',
    'orders.staff_assignment_not_found' satisfies OutletErrorCode,
    `Account ${accountId} is not assigned to this outlet`,
  );
}
