import type { Principal } from '@keel/platform/http';
import type { OutletAccess } from '../access/outlet-access.ts';
import { orderNotFound, outletNotFound } from './tracking.errors.ts';
import {
  findOrderTrackingState,
  findOutletFeedPosition,
  type TrackingDatabase,
} from './tracking.repository.ts';
import { BOARD_REPLAY_EVENTS, ORDER_SNAPSHOT_EVENT, type StreamStart } from './tracking.ts';

/** Decides who may follow what, and where their stream begins. */
export type TrackingService = {
  /**
   * The order's customer, staff of its outlet, or an admin; anyone else gets
   * 404 `orders.order_not_found`, as for a missing order. Without
   * `lastEventId` the stream opens with an `order_snapshot` of the order.
   */
  startOrderStream(
    principal: Principal,
    orderId: string,
    lastEventId: number | undefined,
  ): Promise<StreamStart>;
  /**
   * Staff of the outlet or an admin; anyone else gets 404
   * `orders.outlet_not_found`. Without `lastEventId` the stream replays the
   * outlet's last `BOARD_REPLAY_EVENTS` events.
   */
  startOutletStream(
    principal: Principal,
    outletId: string,
    lastEventId: number | undefined,
  ): Promise<StreamStart>;
};

export function createTrackingService(deps: { db: TrackingDatabase; access: OutletAccess }): TrackingService {
  const { db, access } = deps;
  return {
    async startOrderStream(principal, orderId, lastEventId) {
      const order = await db.run((kysely) => findOrderTrackingState(kysely, orderId));
      if (order === undefined) throw orderNotFound(orderId);
      const isCustomer = principal.kind === 'user' && principal.id === order.customerId;
      if (!isCustomer && !(await access.canActForOutlet(principal, order.outletId))) {
        throw orderNotFound(orderId);
      }
      if (lastEventId !== undefined) {
        return {
          outletId: order.outletId,
          orderId,
          position: resumePosition(lastEventId, order.feedPosition),
          initialMessages: [],
        };
      }
      // The snapshot's id is the outlet's feed position read with the order,
      // so a reconnect resumes right after it. The feed trails the orders
      // table (it is fed by events), so entries after the snapshot may repeat
      // a change it already shows: clients keep the highest `version`.
      return {
        outletId: order.outletId,
        orderId,
        position: order.feedPosition,
        initialMessages: [
          {
            id: String(order.feedPosition),
            event: ORDER_SNAPSHOT_EVENT,
            data: {
              orderId,
              outletId: order.outletId,
              status: order.status,
              version: order.version,
              updatedAt: order.updatedAt.toISOString(),
            },
          },
        ],
      };
    },

    async startOutletStream(principal, outletId, lastEventId) {
      if (!(await access.canActForOutlet(principal, outletId))) throw outletNotFound(outletId);
      // Admins may name any id: an outlet that does not exist is not found for them either.
      const position = await db.run((kysely) => findOutletFeedPosition(kysely, outletId));
      if (position === undefined) throw outletNotFound(outletId);
      return {
        outletId,
        orderId: undefined,
        position:
          lastEventId === undefined
            ? Math.max(0, position - BOARD_REPLAY_EVENTS)
            : resumePosition(lastEventId, position),
        initialMessages: [],
      };
    },
  };
}

// An id beyond the feed's head cannot come from this feed as it stands (a
// database restored from a backup, another environment): resuming there
// would hold back every event until the feed caught up, so resume from the
// head instead.
function resumePosition(lastEventId: number, feedPosition: number): number {
  return Math.min(lastEventId, feedPosition);
}
