import type { ColumnType, Db, Generated, Kysely } from '@keel/platform/db';

// Row types of the tables in migrations/0001_catalogue_and_orders.sql. Each
// feature's repository selects the tables it needs from this one map; tables
// owned by a single feature (tracking, analytics, webhooks) are declared in
// that feature's repository and joined in `OrdersDatabase`.

/**
 * A `bigint` money column: pg returns it as a string; repositories convert it
 * with `Number()` (amounts are capped far below 2^53 by CHECK constraints).
 */
export type MinorUnitsColumn = ColumnType<string, number | bigint | string, number | bigint | string>;

export type OutletsTable = {
  id: string;
  name: string;
  currency: string;
  time_zone: Generated<string>;
  is_active: Generated<boolean>;
  created_at: Generated<Date>;
};

export type StaffOutletsTable = {
  account_id: string;
  outlet_id: string;
  granted_at: Generated<Date>;
  granted_by: string | null;
};

export type StockItemsTable = {
  id: string;
  outlet_id: string;
  sku: string;
  name: string;
  unit: Generated<string>;
  on_hand: number;
  reserved: Generated<number>;
  low_stock_threshold: Generated<number>;
  version: Generated<number>;
  updated_at: Generated<Date>;
};

export type MenuItemsTable = {
  id: string;
  outlet_id: string;
  name: string;
  description: Generated<string>;
  price_minor: MinorUnitsColumn;
  currency: string;
  is_available: Generated<boolean>;
  created_at: Generated<Date>;
};

export type MenuItemComponentsTable = {
  menu_item_id: string;
  stock_item_id: string;
  outlet_id: string;
  quantity: number;
};

export type OrdersTable = {
  id: string;
  outlet_id: string;
  customer_id: string;
  status: string;
  version: Generated<number>;
  currency: string;
  total_minor: MinorUnitsColumn;
  delivery_address: string | null;
  note: string | null;
  placed_at: Date;
  confirmed_at: Date | null;
  preparing_at: Date | null;
  ready_at: Date | null;
  out_for_delivery_at: Date | null;
  delivered_at: Date | null;
  cancelled_at: Date | null;
  cancelled_by: string | null;
  cancel_reason: string | null;
  updated_at: Date;
};

export type OrderLinesTable = {
  order_id: string;
  line_number: number;
  menu_item_id: string;
  name: string;
  quantity: number;
  unit_price_minor: MinorUnitsColumn;
  line_total_minor: MinorUnitsColumn;
};

export type OrderReservationsTable = {
  order_id: string;
  stock_item_id: string;
  quantity: number;
  settled_at: Date | null;
  settlement: string | null;
};

export type InventoryAdjustmentsTable = {
  id: string;
  stock_item_id: string;
  outlet_id: string;
  delta: number;
  reason: string;
  note: string | null;
  on_hand_after: number;
  adjusted_by: string;
  adjusted_at: Date;
};

export type LowStockAlertsTable = {
  id: string;
  event_id: string;
  outlet_id: string;
  stock_item_id: string;
  available: number;
  threshold: number;
  raised_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
};

export type OrdersSchema = {
  'orders.outlets': OutletsTable;
  'orders.staff_outlets': StaffOutletsTable;
  'orders.stock_items': StockItemsTable;
  'orders.menu_items': MenuItemsTable;
  'orders.menu_item_components': MenuItemComponentsTable;
  'orders.orders': OrdersTable;
  'orders.order_lines': OrderLinesTable;
  'orders.order_reservations': OrderReservationsTable;
  'orders.inventory_adjustments': InventoryAdjustmentsTable;
  'orders.low_stock_alerts': LowStockAlertsTable;
};

/** What repositories take as their first argument: the database or a transaction. */
export type OrdersDb = Kysely<OrdersSchema>;
/** What services hold: `run` (retried, behind the breaker) and `transaction`. */
export type OrdersDatabase = Db<OrdersSchema>;
