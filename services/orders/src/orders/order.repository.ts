import type { OrderStatus } from '@keel/contracts';
import { type Selectable, sql } from '@keel/platform/db';
import type { ClaimCompletionSql } from '@keel/platform/idempotency';
import type { PreparedEvent } from '@keel/platform/outbox';
import type { OrdersDb, OrdersTable } from '../database.ts';
import {
  type CancelledBy,
  compareIds,
  type Order,
  type OrderCursor,
  type OrderHeader,
  type OrderLine,
  type PricedMenuItem,
  type StatusTimestamp,
  type StockNeed,
} from './order.ts';

/** A piece of SQL to splice into a statement. */
type SqlFragment = ReturnType<typeof sql<unknown>>;

// Statements here keep one SQL text whatever their input (arrays go in as
// `= any($n)` / `unnest`, never as a variable list of placeholders): the pool
// prepares each text once, and placement runs thousands of times a second.

export type OutletForPlacement = { id: string; currency: string; isActive: boolean };

/**
 * The outlet and those of the requested menu items that belong to it, with
 * their recipes, in one round trip. Items of another outlet are simply not
 * returned: to the order they are unknown.
 */
export async function findOutletMenu(
  db: OrdersDb,
  outletId: string,
  menuItemIds: readonly string[],
): Promise<{ outlet: OutletForPlacement | undefined; items: Map<string, PricedMenuItem> }> {
  const result = await sql<{
    currency: string;
    is_active: boolean;
    menu_item_id: string | null;
    name: string | null;
    price_minor: string | null;
    is_available: boolean | null;
    stock_item_id: string | null;
    quantity: number | null;
  }>`
    select o.currency, o.is_active,
           m.id as menu_item_id, m.name, m.price_minor, m.is_available,
           c.stock_item_id, c.quantity
    from orders.outlets o
    left join orders.menu_items m on m.outlet_id = o.id and m.id = any(${menuItemIds}::uuid[])
    left join orders.menu_item_components c on c.menu_item_id = m.id
    where o.id = ${outletId}::uuid
  `.execute(db);
  const first = result.rows[0];
  const items = new Map<string, PricedMenuItem>();
  if (first === undefined) return { outlet: undefined, items };
  for (const row of result.rows) {
    if (row.menu_item_id === null) continue;
    let item = items.get(row.menu_item_id);
    if (item === undefined) {
      item = {
        id: row.menu_item_id,
        name: row.name ?? '',
        priceMinor: Number(row.price_minor),
        isAvailable: row.is_available ?? false,
        components: [],
      };
      items.set(item.id, item);
    }
    if (row.stock_item_id !== null && row.quantity !== null) {
      item.components.push({ stockItemId: row.stock_item_id, quantity: row.quantity });
    }
  }
  return { outlet: { id: outletId, currency: first.currency, isActive: first.is_active }, items };
}

/** A stock item as the placement statement saw it and, when reserved, left it. */
export type ReservedStockRow = {
  id: string;
  outletId: string;
  sku: string;
  name: string;
  requested: number;
  /** on_hand − reserved before this order: as locked when it was locked, else as last committed. */
  availableBefore: number;
  onHand: number;
  /** After the reservation; the value before when nothing was reserved. */
  reserved: number;
  lowStockThreshold: number;
};

export type PlacementOutcome = {
  /** False when another request took the idempotency key over: nothing was written. */
  isClaimHeld: boolean;
  /** True when every stock item had enough and the order, lines and reservations were inserted. */
  isPlaced: boolean;
  /**
   * True when reserving would take an item's available quantity from at or
   * above its low-stock threshold to below it. With `refuseThresholdCrossing`
   * the statement then writes nothing (`isPlaced` false, though stock suffices).
   */
  crossesThreshold: boolean;
  stock: ReservedStockRow[];
};

/**
 * Places an order in one statement: only if every stock item it needs has
 * enough, reserves all of them, inserts the order, its lines and
 * reservations, writes its `order_placed` event to the outbox and completes
 * the idempotency claim. All or nothing: when one item is short, no row is
 * written.
 *
 * How it stays correct and cheap under contention:
 * - `current` reads the last committed stock without locking. If any item is
 *   already short there, the order fails without taking a lock or waiting
 *   for one (a sold-out item costs racing orders nothing).
 * - Otherwise `locked` takes FOR UPDATE on the items in id order (the locking
 *   step runs above the sort, so rows are locked in sorted order; every stock
 *   writer uses id order, so orders sharing items cannot deadlock). A row
 *   changed while we waited for its lock is returned as its latest version,
 *   and sufficiency is decided on those values, not on the snapshot.
 * - The update only touches rows this statement already locked, and the
 *   CHECK constraints on stock_items stay the guarantee that nothing is ever
 *   oversold.
 *
 * With `refuseThresholdCrossing` the statement also refuses an order that
 * would take an item below its low-stock threshold (`crossesThreshold`): the
 * caller runs it as one autocommit statement for the common case and places
 * the rare crossing order in a transaction that also emits the alert event,
 * whose payload is built and checked against its contract in the service.
 */
export async function insertOrderReservingStock(
  trx: OrdersDb,
  placement: {
    order: Order;
    needs: readonly StockNeed[];
    claim: ClaimCompletionSql | undefined;
    /** `order_placed`, written by this statement only when the order is. */
    event: PreparedEvent;
    refuseThresholdCrossing: boolean;
  },
): Promise<PlacementOutcome> {
  const { order, needs, claim, event, refuseThresholdCrossing } = placement;
  const stockIds = needs.map((need) => need.stockItemId);
  const lines: readonly OrderLine[] = order.lines;
  const held = claim === undefined ? sql`select 1` : claim.heldClaim;
  const completion: SqlFragment =
    claim === undefined
      ? sql``
      : sql`, completed as (${claim.completeWhen(sql`select 1 from placed_order`)})`;
  const result = await sql<{
    is_claim_held: boolean;
    is_placed: boolean;
    crosses_threshold: boolean;
    stock: {
      id: string;
      outlet_id: string | null;
      sku: string | null;
      name: string | null;
      requested: number;
      on_hand: number | null;
      reserved_before: number | null;
      reserved_after: number | null;
      low_stock_threshold: number | null;
    }[];
  }>`
    with held as (${held}),
    wanted (id, qty) as (
      select * from unnest(${stockIds}::uuid[], ${needs.map((need) => need.quantity)}::int[])
    ),
    current as (
      select s.id, s.outlet_id, s.sku, s.name, s.on_hand, s.reserved, s.low_stock_threshold
      from orders.stock_items s
      where s.id = any(${stockIds}::uuid[]) and s.outlet_id = ${order.outletId}::uuid
    ),
    candidates as (
      select c.id from current c join wanted w on w.id = c.id where c.on_hand - c.reserved >= w.qty
    ),
    locked as (
      select s.id, s.on_hand, s.reserved, s.low_stock_threshold
      from orders.stock_items s
      where s.id in (select id from candidates)
        and (select count(*) from candidates) = cardinality(${stockIds}::uuid[])
        and exists (select 1 from held)
      order by s.id
      for update
    ),
    crossing as (
      -- On the locked rows: the same test as hasCrossedBelowThreshold.
      select exists (
        select 1 from locked l join wanted w on w.id = l.id
        where l.on_hand - l.reserved >= l.low_stock_threshold
          and l.on_hand - l.reserved - w.qty < l.low_stock_threshold
      ) as crosses
    ),
    decision as (
      select exists (select 1 from held)
        and (select count(*) from locked l join wanted w on w.id = l.id
             where l.on_hand - l.reserved >= w.qty) = cardinality(${stockIds}::uuid[])
        and not (${refuseThresholdCrossing}::boolean and (select crosses from crossing))
        as is_placed
    ),
    reservation as (
      update orders.stock_items s
      set reserved = s.reserved + w.qty, version = s.version + 1, updated_at = ${order.placedAt}::timestamptz
      from wanted w
      where s.id = w.id and (select is_placed from decision)
      returning s.id, s.on_hand, s.reserved
    ),
    placed_order as (
      insert into orders.orders (
        id, outlet_id, customer_id, status, version, currency, total_minor,
        delivery_address, note, placed_at, updated_at
      )
      select ${order.id}::uuid, ${order.outletId}::uuid, ${order.customerId}::uuid, 'PLACED', 1,
             ${order.currency}::char(3), ${order.totalMinor}::bigint, ${order.deliveryAddress}::text,
             ${order.note}::text, ${order.placedAt}::timestamptz, ${order.placedAt}::timestamptz
      where (select is_placed from decision)
      returning id
    ),
    placed_lines as (
      insert into orders.order_lines (
        order_id, line_number, menu_item_id, name, quantity, unit_price_minor, line_total_minor
      )
      select ${order.id}::uuid, l.line_number, l.menu_item_id, l.name, l.quantity,
             l.unit_price_minor, l.line_total_minor
      from unnest(
        ${lines.map((line) => line.lineNumber)}::int[],
        ${lines.map((line) => line.menuItemId)}::uuid[],
        ${lines.map((line) => line.name)}::text[],
        ${lines.map((line) => line.quantity)}::int[],
        ${lines.map((line) => line.unitPriceMinor)}::bigint[],
        ${lines.map((line) => line.lineTotalMinor)}::bigint[]
      ) as l (line_number, menu_item_id, name, quantity, unit_price_minor, line_total_minor)
      where (select is_placed from decision)
    ),
    placed_reservations as (
      insert into orders.order_reservations (order_id, stock_item_id, quantity)
      select ${order.id}::uuid, r.id, w.qty from reservation r join wanted w on w.id = r.id
    ),
    ${event.insertWhen(sql`select 1 from placed_order`)}${completion}
    select
      exists (select 1 from held) as is_claim_held,
      coalesce((select is_placed from decision), false) as is_placed,
      (select crosses from crossing) as crosses_threshold,
      coalesce((
        select json_agg(json_build_object(
          'id', w.id, 'outlet_id', c.outlet_id, 'sku', c.sku, 'name', c.name, 'requested', w.qty,
          'on_hand', coalesce(l.on_hand, c.on_hand),
          'reserved_before', coalesce(l.reserved, c.reserved),
          'reserved_after', r.reserved,
          'low_stock_threshold', coalesce(l.low_stock_threshold, c.low_stock_threshold)
        ) order by w.id)
        from wanted w
        left join current c on c.id = w.id
        left join locked l on l.id = w.id
        left join reservation r on r.id = w.id
      ), '[]'::json) as stock
  `.execute(trx);
  const row = result.rows[0];
  if (row === undefined) throw new Error('insertOrderReservingStock: the statement returned no row');
  return {
    isClaimHeld: row.is_claim_held,
    isPlaced: row.is_placed,
    crossesThreshold: row.crosses_threshold,
    stock: row.stock.map((item) => ({
      id: item.id,
      outletId: item.outlet_id ?? order.outletId,
      sku: item.sku ?? '',
      name: item.name ?? '',
      requested: item.requested,
      availableBefore:
        item.on_hand === null || item.reserved_before === null ? 0 : item.on_hand - item.reserved_before,
      onHand: item.on_hand ?? 0,
      reserved: item.reserved_after ?? item.reserved_before ?? 0,
      lowStockThreshold: item.low_stock_threshold ?? 0,
    })),
  };
}

// Rows come back through raw `sql`, so the table's select types are spelled out by Selectable.
type OrderRow = Selectable<OrdersTable>;

type LineJson = {
  line_number: number;
  menu_item_id: string;
  name: string;
  quantity: number;
  unit_price_minor: number;
  line_total_minor: number;
};

type OrderWithLinesRow = OrderRow & { lines: LineJson[] };

const ORDER_COLUMNS = sql`o.id, o.outlet_id, o.customer_id, o.status, o.version, o.currency, o.total_minor,
  o.delivery_address, o.note, o.placed_at, o.confirmed_at, o.preparing_at, o.ready_at,
  o.out_for_delivery_at, o.delivered_at, o.cancelled_at, o.cancelled_by, o.cancel_reason, o.updated_at`;

// Lines as one JSON array per order: an order and its lines in one round trip.
const LINES_OF_ORDER = sql`coalesce((
    select json_agg(json_build_object(
      'line_number', l.line_number, 'menu_item_id', l.menu_item_id, 'name', l.name,
      'quantity', l.quantity, 'unit_price_minor', l.unit_price_minor, 'line_total_minor', l.line_total_minor
    ) order by l.line_number)
    from orders.order_lines l where l.order_id = o.id
  ), '[]'::json) as lines`;

function toOrderHeader(row: OrderRow): OrderHeader {
  return {
    id: row.id,
    outletId: row.outlet_id,
    customerId: row.customer_id,
    status: row.status as OrderStatus,
    version: row.version,
    currency: row.currency,
    totalMinor: Number(row.total_minor),
    deliveryAddress: row.delivery_address,
    note: row.note,
    placedAt: row.placed_at,
    confirmedAt: row.confirmed_at,
    preparingAt: row.preparing_at,
    readyAt: row.ready_at,
    outForDeliveryAt: row.out_for_delivery_at,
    deliveredAt: row.delivered_at,
    cancelledAt: row.cancelled_at,
    cancelledBy: row.cancelled_by as CancelledBy | null,
    cancelReason: row.cancel_reason,
    updatedAt: row.updated_at,
  };
}

function toOrder(row: OrderWithLinesRow): Order {
  return {
    ...toOrderHeader(row),
    lines: row.lines.map((line) => ({
      lineNumber: line.line_number,
      menuItemId: line.menu_item_id,
      name: line.name,
      quantity: line.quantity,
      unitPriceMinor: Number(line.unit_price_minor),
      lineTotalMinor: Number(line.line_total_minor),
    })),
  };
}

export async function findOrderById(db: OrdersDb, id: string): Promise<Order | undefined> {
  const result = await sql<OrderWithLinesRow>`
    select ${ORDER_COLUMNS}, ${LINES_OF_ORDER}
    from orders.orders o where o.id = ${id}::uuid
  `.execute(db);
  const row = result.rows[0];
  return row === undefined ? undefined : toOrder(row);
}

/** The order without its lines: what authorisation and transition checks read. */
export async function findOrderHeaderById(db: OrdersDb, id: string): Promise<OrderHeader | undefined> {
  const result = await sql<OrderRow>`
    select ${ORDER_COLUMNS} from orders.orders o where o.id = ${id}::uuid
  `.execute(db);
  const row = result.rows[0];
  return row === undefined ? undefined : toOrderHeader(row);
}

/**
 * Moves the order one step, only if it is still at `from` and `version`:
 * the conditional update is the optimistic lock. Undefined when it was not.
 */
export async function updateOrderStatus(
  trx: OrdersDb,
  change: {
    id: string;
    from: OrderStatus;
    to: OrderStatus;
    version: number;
    timestampColumn: StatusTimestamp;
    at: Date;
  },
  /** `order_status_changed`, written by this statement only when the change is. */
  event?: PreparedEvent,
): Promise<Order | undefined> {
  const emitted = event === undefined ? sql`` : sql`, ${event.insertWhen(sql`select 1 from changed`)}`;
  const result = await sql<OrderWithLinesRow>`
    with changed as (
      update orders.orders
      set status = ${change.to}, version = version + 1, updated_at = ${change.at}::timestamptz,
          ${sql.ref(change.timestampColumn)} = ${change.at}::timestamptz
      where id = ${change.id}::uuid and version = ${change.version} and status = ${change.from}
      returning *
    )${emitted}
    select ${ORDER_COLUMNS}, ${LINES_OF_ORDER} from changed o
  `.execute(trx);
  const row = result.rows[0];
  return row === undefined ? undefined : toOrder(row);
}

/** Cancels the order only if it is still at `from` and `version`; undefined when it was not. */
export async function updateOrderCancelled(
  trx: OrdersDb,
  change: {
    id: string;
    from: OrderStatus;
    version: number;
    by: CancelledBy;
    reason: string | null;
    at: Date;
  },
): Promise<Order | undefined> {
  const result = await sql<OrderWithLinesRow>`
    with changed as (
      update orders.orders
      set status = 'CANCELLED', version = version + 1, updated_at = ${change.at}::timestamptz,
          cancelled_at = ${change.at}::timestamptz, cancelled_by = ${change.by}, cancel_reason = ${change.reason}::text
      where id = ${change.id}::uuid and version = ${change.version} and status = ${change.from}
      returning *
    )
    select ${ORDER_COLUMNS}, ${LINES_OF_ORDER} from changed o
  `.execute(trx);
  const row = result.rows[0];
  return row === undefined ? undefined : toOrder(row);
}

export type SettledStock = { stockItemId: string; quantity: number };

/**
 * Settles the order's open reservations, once: `released` gives the stock
 * back (reserved −= q), `consumed` takes it out of the outlet (on hand and
 * reserved −= q). `settled_at is null` makes a second call a no-op, and the
 * caller holds the order row (it just updated it), so two settlements of one
 * order cannot interleave. Stock rows are locked in id order, like placement.
 */
export async function settleReservations(
  trx: OrdersDb,
  settlement: { orderId: string; kind: 'released' | 'consumed'; at: Date },
): Promise<SettledStock[]> {
  const isConsumed = settlement.kind === 'consumed';
  const result = await sql<{ id: string; quantity: number }>`
    with settled as (
      update orders.order_reservations
      set settled_at = ${settlement.at}::timestamptz, settlement = ${settlement.kind}
      where order_id = ${settlement.orderId}::uuid and settled_at is null
      returning stock_item_id, quantity
    ),
    locked as (
      select s.id from orders.stock_items s
      where s.id in (select stock_item_id from settled)
      order by s.id
      for update
    )
    update orders.stock_items s
    set reserved = s.reserved - r.quantity,
        on_hand = s.on_hand - case when ${isConsumed}::boolean then r.quantity else 0 end,
        version = s.version + 1,
        updated_at = ${settlement.at}::timestamptz
    from settled r
    where s.id = r.stock_item_id and s.id in (select id from locked)
    returning s.id, r.quantity
  `.execute(trx);
  return result.rows
    .map((row) => ({ stockItemId: row.id, quantity: row.quantity }))
    .sort((a, b) => compareIds(a.stockItemId, b.stockItemId));
}

export type OrderListFilter = {
  customerId?: string;
  /** Undefined: every outlet. */
  outletIds?: readonly string[];
  statuses?: readonly OrderStatus[];
  placedAfter?: Date;
  placedBefore?: Date;
  after?: OrderCursor;
  limit: number;
};

export type OrderListRow = { order: Order; cursor: OrderCursor };

/** Newest first, keyset-paginated on (placed_at desc, id desc). */
export async function listOrders(db: OrdersDb, filter: OrderListFilter): Promise<OrderListRow[]> {
  const conditions: SqlFragment[] = [];
  if (filter.customerId !== undefined) conditions.push(sql`o.customer_id = ${filter.customerId}::uuid`);
  if (filter.outletIds !== undefined) {
    // One outlet as `=`, so the planner walks orders_outlet_idx in order and stops at the limit.
    conditions.push(
      filter.outletIds.length === 1
        ? sql`o.outlet_id = ${filter.outletIds[0]}::uuid`
        : sql`o.outlet_id = any(${filter.outletIds}::uuid[])`,
    );
  }
  if (filter.statuses !== undefined) conditions.push(sql`o.status = any(${filter.statuses}::text[])`);
  if (filter.placedAfter !== undefined)
    conditions.push(sql`o.placed_at >= ${filter.placedAfter}::timestamptz`);
  if (filter.placedBefore !== undefined)
    conditions.push(sql`o.placed_at < ${filter.placedBefore}::timestamptz`);
  if (filter.after !== undefined) {
    conditions.push(
      sql`(o.placed_at, o.id) < (${filter.after.placedAt}::timestamptz, ${filter.after.id}::uuid)`,
    );
  }
  const where = conditions.length === 0 ? sql`true` : sql.join(conditions, sql` and `);
  const result = await sql<OrderWithLinesRow & { cursor_placed_at: string }>`
    select ${ORDER_COLUMNS}, ${LINES_OF_ORDER},
      to_char(o.placed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_placed_at
    from orders.orders o
    where ${where}
    order by o.placed_at desc, o.id desc
    limit ${filter.limit}
  `.execute(db);
  return result.rows.map((row) => ({
    order: toOrder(row),
    cursor: { placedAt: row.cursor_placed_at, id: row.id },
  }));
}
