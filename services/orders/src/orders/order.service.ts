import { OrderCancelledV1, OrderPlacedV1, OrderStatusChangedV1 } from '@keel/contracts';
import type { Principal } from '@keel/platform/http';
import {
  type IdempotencyClaim,
  idempotencyInProgress,
  type StoredResponse,
} from '@keel/platform/idempotency';
import type { Clock, IdGenerator } from '@keel/platform/module';
import { emitEvent, prepareEvent } from '@keel/platform/outbox';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import type { OutletAccess } from '../access/outlet-access.ts';
import type { OrdersDatabase, OrdersDb } from '../database.ts';
import { emitLowStockCrossings, type StockAfterChange } from '../inventory/low-stock.ts';
import {
  menuItemsUnavailable,
  orderNotFound,
  outletInactive,
  outletNotFound,
  outOfStock,
  preconditionRequired,
  type ShortStockItem,
  unknownMenuItems,
  versionMismatch,
} from './order.errors.ts';
import {
  findOrderById,
  findOrderHeaderById,
  findOutletMenu,
  insertOrderReservingStock,
  listOrders,
  type PlacementOutcome,
  settleReservations,
  updateOrderCancelled,
  updateOrderStatus,
} from './order.repository.ts';
import {
  aggregateStockNeeds,
  assertCancellable,
  assertDistinctMenuItems,
  assertStatusTransition,
  type CancelledBy,
  canCancel,
  decodeCursor,
  encodeCursor,
  isConsumingStock,
  type Order,
  type OrderHeader,
  type OrderStatus,
  type PricedMenuItem,
  parseIfMatch,
  priceLines,
  type RequestedLine,
  timestampColumnOf,
} from './order.ts';

export type OrderServiceDependencies = {
  db: OrdersDatabase;
  clock: Clock;
  ids: IdGenerator;
  access: OutletAccess;
};

export type PlaceOrderInput = {
  outletId: string;
  lines: RequestedLine[];
  deliveryAddress: string | null;
  note: string | null;
};

/** The request's idempotency claim and the response to store with the order. */
export type PlaceOrderIdempotency = { claim: IdempotencyClaim; respond: (order: Order) => StoredResponse };

export type ListOrdersInput = {
  outletId?: string;
  statuses?: OrderStatus[];
  placedAfter?: Date;
  placedBefore?: Date;
  limit: number;
  cursor?: string;
};

export type OrderPage = { items: Order[]; nextCursor: string | null };

export type OrderService = ReturnType<typeof createOrderService>;

/** Thrown inside a transaction to roll it back when its conditional write lost a race. */
class LostRace extends Error {
  constructor() {
    super('the conditional write matched no row');
    this.name = 'LostRace';
  }
}

// Each lost race means another change moved the order forward, and an order
// has at most six changes in its life: the loop cannot run out of attempts.
const MAX_CANCEL_ATTEMPTS = 10;

export function createOrderService(deps: OrderServiceDependencies) {
  const { db, clock, ids, access } = deps;

  function isOwnOrder(order: OrderHeader, principal: Principal): boolean {
    return order.customerId === principal.id;
  }

  /** The order if the principal may see it: its customer, staff of its outlet, or an admin. */
  async function assertCanSee<T extends OrderHeader>(
    order: T | undefined,
    principal: Principal,
    orderId: string,
  ): Promise<T> {
    if (order === undefined) throw orderNotFound(orderId);
    if (isOwnOrder(order, principal)) return order;
    await access.assertCanActForOutlet(principal, order.outletId, () => orderNotFound(orderId));
    return order;
  }

  /** Builds the placed order from the menu, or throws the first validation failure. */
  async function priceOrder(principal: Principal, input: PlaceOrderInput) {
    assertDistinctMenuItems(input.lines);
    const { outlet, items } = await db.run((kysely) =>
      findOutletMenu(
        kysely,
        input.outletId,
        input.lines.map((line) => line.menuItemId),
      ),
    );
    if (outlet === undefined) throw outletNotFound(input.outletId, '/body/outlet_id');
    if (!outlet.isActive) throw outletInactive(input.outletId);
    const unknown = input.lines
      .map((line, index) => ({ index, id: line.menuItemId }))
      .filter((line) => !items.has(line.id));
    if (unknown.length > 0) throw unknownMenuItems(input.outletId, unknown);
    const unavailable = input.lines
      .map((line, index) => ({ index, id: line.menuItemId }))
      .filter((line) => items.get(line.id)?.isAvailable !== true);
    if (unavailable.length > 0) throw menuItemsUnavailable(unavailable);

    const priced = priceLines(input.lines, items);
    const now = clock.now();
    const order: Order = {
      id: ids.uuid(),
      outletId: input.outletId,
      customerId: principal.id,
      status: 'PLACED',
      version: 1,
      currency: outlet.currency,
      totalMinor: priced.totalMinor,
      lines: priced.lines,
      deliveryAddress: input.deliveryAddress,
      note: input.note,
      placedAt: now,
      confirmedAt: null,
      preparingAt: null,
      readyAt: null,
      outForDeliveryAt: null,
      deliveredAt: null,
      cancelledAt: null,
      cancelledBy: null,
      cancelReason: null,
      updatedAt: now,
    };
    return { order, needs: aggregateStockNeeds(input.lines, items), menu: items };
  }

  return {
    /**
     * Prices the order on the server and, in one statement, reserves its
     * stock (all or nothing), inserts it, emits `order_placed` and completes
     * the idempotency claim. An order that takes an item below its low-stock
     * threshold is placed in a transaction that also emits the alert.
     */
    async placeOrder(
      principal: Principal,
      input: PlaceOrderInput,
      options: { idempotency?: PlaceOrderIdempotency } = {},
    ): Promise<Order> {
      const { order, needs, menu } = await priceOrder(principal, input);
      const { idempotency } = options;
      const completion = idempotency?.claim.completionSql(idempotency.respond(order));

      const placedEvent = {
        type: OrderPlacedV1.type,
        aggregateType: 'order',
        aggregateId: order.id,
        occurredAt: order.placedAt,
        payload: {
          orderId: order.id,
          outletId: order.outletId,
          customerId: order.customerId,
          version: order.version,
          currency: order.currency,
          totalMinor: order.totalMinor,
          lines: order.lines.map((line) => ({
            menuItemId: line.menuItemId,
            name: line.name,
            quantity: line.quantity,
            unitPriceMinor: line.unitPriceMinor,
          })),
          placedAt: order.placedAt.toISOString(),
        },
      };

      const place = (writer: OrdersDb, refuseThresholdCrossing: boolean) =>
        insertOrderReservingStock(writer, {
          order,
          needs,
          claim: completion,
          // Written by the placement statement itself, only if the order is.
          event: prepareEvent(writer, placedEvent, { definition: OrderPlacedV1 }),
          refuseThresholdCrossing,
        });

      try {
        // The common case is one autocommit statement: no BEGIN and COMMIT
        // round trips, and the stock rows' locks are released as the
        // statement ends instead of after the next turn of the event loop,
        // which is what serialised an outlet's orders under load.
        const outcome = await db.autocommit((writer) => place(writer, true));
        if (!outcome.isClaimHeld) throw new LostRace();
        if (!outcome.isPlaced && !outcome.crossesThreshold)
          throw outOfStock(describeShortage(outcome, input.lines, menu));
        if (!outcome.isPlaced) {
          // The order would take an item below its low-stock threshold (once
          // per item per crossing), and the statement wrote nothing: place it
          // again in a transaction that emits the alert in the same commit.
          await db.transaction(async (trx) => {
            const crossing = await place(trx, false);
            if (!crossing.isClaimHeld) throw new LostRace();
            if (!crossing.isPlaced) throw outOfStock(describeShortage(crossing, input.lines, menu));
            await emitLowStockCrossings(
              trx,
              crossing.stock.map(toStockAfterChange),
              'order_placed',
              order.placedAt,
            );
          });
        }
      } catch (error) {
        if (!(error instanceof LostRace) || idempotency === undefined) throw error;
        // The claim is gone: either our own earlier attempt committed (an
        // ambiguous commit the retry then ran into) or another request took
        // the expired key over.
        const earlier = await db.run((kysely) => findOrderById(kysely, order.id));
        if (earlier === undefined) throw idempotencyInProgress();
        idempotency.claim.markCompleted();
        return earlier;
      }
      // Only now: had the commit failed, the key must stay open for the retry.
      idempotency?.claim.markCompleted();
      return order;
    },

    async getOrder(principal: Principal, orderId: string): Promise<Order> {
      const order = await db.run((kysely) => findOrderById(kysely, orderId));
      return assertCanSee(order, principal, orderId);
    },

    /**
     * Moves the order one step forward. Staff of its outlet or admins only;
     * `If-Match` is required, because a kitchen board is edited by several
     * people at once. Leaving the kitchen consumes the reserved stock.
     */
    async updateStatus(
      principal: Principal,
      orderId: string,
      to: OrderStatus,
      ifMatch: string | undefined,
    ): Promise<Order> {
      const expectedVersion = parseIfMatch(ifMatch);
      const order = await db.run((kysely) => findOrderHeaderById(kysely, orderId));
      if (order === undefined) throw orderNotFound(orderId);
      await access.assertCanActForOutlet(principal, order.outletId, () => orderNotFound(orderId));
      if (expectedVersion === undefined) throw preconditionRequired();
      if (expectedVersion !== order.version) throw versionMismatch(expectedVersion, order.version);
      assertStatusTransition(order.status, to);
      const timestampColumn = timestampColumnOf(to);
      if (timestampColumn === undefined) throw new Error(`updateStatus: ${to} has no timestamp column`);

      const now = clock.now();
      const change = {
        id: orderId,
        from: order.status,
        to,
        version: expectedVersion,
        timestampColumn,
        at: now,
      };
      // Known before the write: the order's fixed facts and the version the
      // conditional update gives it.
      const changedEvent = {
        type: OrderStatusChangedV1.type,
        aggregateType: 'order',
        aggregateId: orderId,
        occurredAt: now,
        payload: {
          orderId,
          outletId: order.outletId,
          customerId: order.customerId,
          from: order.status,
          to,
          version: expectedVersion + 1,
          placedAt: order.placedAt.toISOString(),
          changedAt: now.toISOString(),
          changedBy: principal.id,
        },
      };
      try {
        const updated = isConsumingStock(to)
          ? // Leaving the kitchen also settles the reservations: one transaction.
            await db.transaction(async (trx) => {
              const changed = await updateOrderStatus(trx, change);
              if (changed === undefined) throw new LostRace();
              await settleReservations(trx, { orderId, kind: 'consumed', at: now });
              await emitEvent(trx, changedEvent, { definition: OrderStatusChangedV1 });
              return changed;
            })
          : // Otherwise the change and its event are one autocommit statement:
            // the order row is locked only while it runs.
            await db.autocommit((writer) =>
              updateOrderStatus(
                writer,
                change,
                prepareEvent(writer, changedEvent, { definition: OrderStatusChangedV1 }),
              ),
            );
        if (updated === undefined) throw new LostRace();
        return updated;
      } catch (error) {
        if (!(error instanceof LostRace)) throw error;
        const current = await db.run((kysely) => findOrderHeaderById(kysely, orderId));
        throw versionMismatch(expectedVersion, current?.version ?? expectedVersion);
      }
    },

    /**
     * Cancels the order and returns its stock, exactly once however many
     * cancellations race: the conditional update on (status, version) picks
     * one winner, and only the winner releases the reservations and emits
     * `order_cancelled`. A loser re-reads the order and answers from what it
     * finds (already cancelled: `orders.invalid_transition`).
     */
    async cancelOrder(
      principal: Principal,
      orderId: string,
      input: { reason: string | null; ifMatch: string | undefined },
    ): Promise<Order> {
      const expectedVersion = parseIfMatch(input.ifMatch);
      for (let attempt = 1; attempt <= MAX_CANCEL_ATTEMPTS; attempt += 1) {
        const order = await db.run((kysely) => findOrderHeaderById(kysely, orderId));
        if (order === undefined) throw orderNotFound(orderId);
        const by = await cancellerOf(order, principal);
        if (by === undefined) throw orderNotFound(orderId);
        if (expectedVersion !== undefined && expectedVersion !== order.version) {
          throw versionMismatch(expectedVersion, order.version);
        }
        assertCancellable(order.status, by);

        const now = clock.now();
        const cancelled = await db.transaction(async (trx) => {
          const updated = await updateOrderCancelled(trx, {
            id: orderId,
            from: order.status,
            version: order.version,
            by,
            reason: input.reason,
            at: now,
          });
          if (updated === undefined) return undefined;
          const released = await settleReservations(trx, { orderId, kind: 'released', at: now });
          await emitEvent(
            trx,
            {
              type: OrderCancelledV1.type,
              aggregateType: 'order',
              aggregateId: orderId,
              occurredAt: now,
              payload: {
                orderId,
                outletId: updated.outletId,
                customerId: updated.customerId,
                from: order.status,
                version: updated.version,
                cancelledBy: by,
                reason: input.reason,
                currency: updated.currency,
                totalMinor: updated.totalMinor,
                releasedStock: released,
                placedAt: updated.placedAt.toISOString(),
                cancelledAt: now.toISOString(),
              },
            },
            { definition: OrderCancelledV1 },
          );
          return updated;
        });
        if (cancelled !== undefined) return cancelled;
      }
      throw new Error(`cancelOrder: order ${orderId} kept changing under ${MAX_CANCEL_ATTEMPTS} attempts`);
    },

    /**
     * Customers list their own orders; staff (holders of
     * `orders:update_status`) their outlets' orders, one outlet when
     * `outlet_id` names one of theirs; admins every order.
     */
    async listOrders(principal: Principal, input: ListOrdersInput): Promise<OrderPage> {
      const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
      let customerId: string | undefined;
      let outletIds: readonly string[] | undefined;
      if (principal.permissions.has(ORDERS_PERMISSIONS.allOutlets)) {
        outletIds = input.outletId === undefined ? undefined : [input.outletId];
      } else if (principal.permissions.has(ORDERS_PERMISSIONS.updateStatus)) {
        if (input.outletId === undefined) {
          const scope = await access.scopeOf(principal);
          outletIds = scope.kind === 'all' ? undefined : scope.outletIds;
        } else {
          const outletId = input.outletId;
          await access.assertCanActForOutlet(principal, outletId, () =>
            outletNotFound(outletId, '/querystring/outlet_id'),
          );
          outletIds = [outletId];
        }
        if (outletIds?.length === 0) return { items: [], nextCursor: null };
      } else {
        customerId = principal.id;
        outletIds = input.outletId === undefined ? undefined : [input.outletId];
      }
      const rows = await db.run((kysely) =>
        listOrders(kysely, {
          ...(customerId === undefined ? {} : { customerId }),
          ...(outletIds === undefined ? {} : { outletIds }),
          ...(input.statuses === undefined ? {} : { statuses: input.statuses }),
          ...(input.placedAfter === undefined ? {} : { placedAfter: input.placedAfter }),
          ...(input.placedBefore === undefined ? {} : { placedBefore: input.placedBefore }),
          ...(after === undefined ? {} : { after }),
          // One more than asked tells whether there is a next page.
          limit: input.limit + 1,
        }),
      );
      const page = rows.slice(0, input.limit);
      const last = page.at(-1);
      return {
        items: page.map((row) => row.order),
        nextCursor: rows.length > input.limit && last !== undefined ? encodeCursor(last.cursor) : null,
      };
    },
  };

  /**
   * Who the principal cancels as: the customer who placed it while a
   * customer still may, else staff of its outlet (or an admin), else the
   * customer again (to be told it is too late). Undefined: not theirs to see.
   */
  async function cancellerOf(order: OrderHeader, principal: Principal): Promise<CancelledBy | undefined> {
    const isOwner = isOwnOrder(order, principal);
    if (isOwner && canCancel(order.status, 'customer')) return 'customer';
    if (await access.canActForOutlet(principal, order.outletId)) return 'staff';
    return isOwner ? 'customer' : undefined;
  }
}

/** The short stock items of a failed placement, with the ordered menu items that need each. */
/** A reserved stock row as the low-stock check reads it: this order took `requested` away. */
function toStockAfterChange(item: PlacementOutcome['stock'][number]): StockAfterChange {
  return {
    id: item.id,
    outletId: item.outletId,
    sku: item.sku,
    name: item.name,
    onHand: item.onHand,
    reserved: item.reserved,
    lowStockThreshold: item.lowStockThreshold,
    availableDecrease: item.requested,
  };
}

function describeShortage(
  outcome: PlacementOutcome,
  lines: readonly RequestedLine[],
  menu: ReadonlyMap<string, PricedMenuItem>,
): ShortStockItem[] {
  return outcome.stock
    .filter((item) => item.availableBefore < item.requested)
    .map((item) => ({
      stock_item_id: item.id,
      sku: item.sku,
      requested: item.requested,
      available: Math.max(item.availableBefore, 0),
      menu_items: lines
        .map((line) => menu.get(line.menuItemId))
        .filter(
          (menuItem): menuItem is PricedMenuItem =>
            menuItem?.components.some((component) => component.stockItemId === item.id) === true,
        )
        .map((menuItem) => ({ menu_item_id: menuItem.id, name: menuItem.name })),
    }));
}
