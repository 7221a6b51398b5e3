import type { Db, Kysely } from '@keel/platform/db';

// Row types of the tables in migrations/0001_catalogue_and_orders.sql. Each
// feature's repository selects the tables it needs from this one map; tables
// owned by a single feature (tracking, analytics, webhooks) are declared in
// that feature's repository and joined in `OrdersDatabase`.

export type OutletsTable = {
  id: string;
  name: string;
  currency: string;
  time_zone: string;
  is_active: boolean;
  created_at: Date;
};

export type StaffOutletsTable = {
  account_id: string;
  outlet_id: string;
  granted_at: Date;
  granted_by: string | null;
};

export type StockItemsTable = {
  id: string;
  outlet_id: string;
  sku: string;
  name: string;
  unit: string;
  on_hand: number;
  reserved: number;
  low_stock_threshold: number;
  version: number;
  updated_at: Date;
};

export type MenuItemsTable = {
  id: string;
  outlet_id: string;
  name: string;
  description: string;
  // bigint columns: pg returns them as strings; repositories convert with Number() (amounts stay far below 2^53).
  price_minor: string | number;
  currency: string;
  is_available: boolean;
  created_at: Date;
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
  version: number;
  currency: string;
  total_minor: string | number;
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
  unit_price_minor: string | number;
  line_total_minor: string | number;
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
