-- Orders: outlets (kitchens), their menus and stock, and the orders placed
-- with them (docs/services/orders.md has the ER diagram and the invariants).
--
-- Money is integer minor units (cents) with an ISO 4217 currency code; an
-- outlet trades in one currency and every menu item and order of it carries
-- that currency.

create table orders.outlets (
  id uuid primary key,
  name text not null check (char_length(name) between 1 and 200),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  -- IANA zone the outlet's hours and analytics are reported in.
  time_zone text not null default 'UTC' check (char_length(time_zone) between 1 and 64),
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  -- Lets child tables require that a row and its outlet's currency agree.
  unique (id, currency)
);

-- Who works at which outlet. Owned here, not in the platform: "staff of
-- outlet X" is an orders concept; the platform role `orders:staff` grants the
-- permissions and this table scopes them to outlets.
create table orders.staff_outlets (
  account_id uuid not null,
  outlet_id uuid not null references orders.outlets (id),
  granted_at timestamptz not null default now(),
  granted_by uuid,
  primary key (account_id, outlet_id)
);
create index staff_outlets_outlet_idx on orders.staff_outlets (outlet_id);

-- Stock per outlet. `reserved` is what placed, not yet dispatched orders
-- hold; `on_hand - reserved` is what can still be sold. Both only ever move
-- through conditional updates, and these CHECKs are the guarantee behind
-- them: stock never goes negative and never more is reserved than is held.
create table orders.stock_items (
  id uuid primary key,
  outlet_id uuid not null references orders.outlets (id),
  sku text not null check (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  name text not null check (char_length(name) between 1 and 200),
  unit text not null default 'each' check (char_length(unit) between 1 and 20),
  on_hand integer not null check (on_hand >= 0),
  reserved integer not null default 0 check (reserved >= 0),
  -- An alert is raised when the available quantity drops below this.
  low_stock_threshold integer not null default 0 check (low_stock_threshold >= 0),
  version integer not null default 1 check (version >= 1),
  updated_at timestamptz not null default now(),
  constraint stock_items_reserved_within_on_hand check (reserved <= on_hand),
  unique (outlet_id, sku),
  -- Target of the composite foreign key that keeps recipes within one outlet.
  unique (id, outlet_id)
);

create table orders.menu_items (
  id uuid primary key,
  outlet_id uuid not null,
  name text not null check (char_length(name) between 1 and 200),
  description text not null default '' check (char_length(description) <= 2000),
  price_minor bigint not null check (price_minor > 0 and price_minor <= 100000000),
  currency char(3) not null,
  is_available boolean not null default true,
  created_at timestamptz not null default now(),
  foreign key (outlet_id, currency) references orders.outlets (id, currency),
  unique (id, outlet_id)
);
create index menu_items_outlet_idx on orders.menu_items (outlet_id);

-- The recipe: what one unit of a menu item consumes. The composite keys make
-- it impossible for a burger of outlet A to consume buns of outlet B.
create table orders.menu_item_components (
  menu_item_id uuid not null,
  stock_item_id uuid not null,
  outlet_id uuid not null,
  quantity integer not null check (quantity between 1 and 1000),
  primary key (menu_item_id, stock_item_id),
  foreign key (menu_item_id, outlet_id) references orders.menu_items (id, outlet_id),
  foreign key (stock_item_id, outlet_id) references orders.stock_items (id, outlet_id)
);

create table orders.orders (
  id uuid primary key,
  outlet_id uuid not null,
  -- The platform account that placed it (customers see only their own).
  customer_id uuid not null,
  status text not null check (status in (
    'PLACED', 'CONFIRMED', 'PREPARING', 'READY', 'OUT_FOR_DELIVERY', 'DELIVERED', 'CANCELLED'
  )),
  -- Optimistic concurrency: every change bumps it; `If-Match` carries it.
  version integer not null default 1 check (version >= 1),
  currency char(3) not null,
  total_minor bigint not null check (total_minor > 0),
  delivery_address text check (char_length(delivery_address) <= 500),
  note text check (char_length(note) <= 500),
  placed_at timestamptz not null,
  confirmed_at timestamptz,
  preparing_at timestamptz,
  ready_at timestamptz,
  out_for_delivery_at timestamptz,
  delivered_at timestamptz,
  cancelled_at timestamptz,
  cancelled_by text check (cancelled_by in ('customer', 'staff')),
  cancel_reason text check (char_length(cancel_reason) <= 500),
  updated_at timestamptz not null,
  foreign key (outlet_id, currency) references orders.outlets (id, currency),
  constraint orders_cancelled_fields check ((status = 'CANCELLED') = (cancelled_at is not null))
);
-- Listing: a customer's orders and an outlet's board, newest first, keyset-paginated.
create index orders_customer_idx on orders.orders (customer_id, placed_at desc, id desc);
create index orders_outlet_idx on orders.orders (outlet_id, placed_at desc, id desc);
create index orders_outlet_open_idx on orders.orders (outlet_id, status)
  where status not in ('DELIVERED', 'CANCELLED');

-- Lines are priced by the server at placement and never change afterwards.
create table orders.order_lines (
  order_id uuid not null references orders.orders (id),
  line_number integer not null check (line_number between 1 and 100),
  menu_item_id uuid not null references orders.menu_items (id),
  name text not null,
  quantity integer not null check (quantity between 1 and 100),
  unit_price_minor bigint not null check (unit_price_minor > 0),
  line_total_minor bigint not null check (line_total_minor = unit_price_minor * quantity),
  primary key (order_id, line_number)
);

-- What an order holds of each stock item: released exactly once, on cancel,
-- or consumed when the order leaves the kitchen. `settled_at` marks either,
-- and is set by the same conditional update that wins the status change, so
-- stock cannot be returned twice.
create table orders.order_reservations (
  order_id uuid not null references orders.orders (id),
  stock_item_id uuid not null references orders.stock_items (id),
  quantity integer not null check (quantity > 0),
  settled_at timestamptz,
  settlement text check (settlement in ('released', 'consumed')),
  primary key (order_id, stock_item_id),
  constraint order_reservations_settled check ((settled_at is null) = (settlement is null))
);
create index order_reservations_stock_idx on orders.order_reservations (stock_item_id)
  where settled_at is null;

-- Every stock change that is not an order's: deliveries, waste, counts.
create table orders.inventory_adjustments (
  id uuid primary key,
  stock_item_id uuid not null references orders.stock_items (id),
  outlet_id uuid not null references orders.outlets (id),
  delta integer not null check (delta <> 0),
  reason text not null check (reason in ('delivery', 'waste', 'count_correction', 'other')),
  note text check (char_length(note) <= 500),
  on_hand_after integer not null check (on_hand_after >= 0),
  adjusted_by uuid not null,
  adjusted_at timestamptz not null
);
create index inventory_adjustments_item_idx on orders.inventory_adjustments (stock_item_id, adjusted_at desc);

-- Raised by the `orders.low-stock-alerts` subscriber, one per
-- `inventory_low_stock` event (the event id makes a redelivery a no-op even
-- without the inbox).
create table orders.low_stock_alerts (
  id uuid primary key,
  event_id uuid not null unique,
  outlet_id uuid not null references orders.outlets (id),
  stock_item_id uuid not null references orders.stock_items (id),
  available integer not null,
  threshold integer not null,
  raised_at timestamptz not null,
  acknowledged_at timestamptz,
  acknowledged_by uuid
);
create index low_stock_alerts_outlet_idx on orders.low_stock_alerts (outlet_id, raised_at desc, id desc);
