import {
  type EventEnvelope,
  OrderCancelledV1,
  OrderPlacedV1,
  type OrderStatus,
  OrderStatusChangedV1,
} from '@keel/contracts';
import { lastEventIdInvalid, unknownTrackedEvent } from './tracking.errors.ts';

/** The SSE `event:` names of feed entries, one per order event. */
export type TrackingEventName = 'order_placed' | 'order_status_changed' | 'order_cancelled';

/** The first message of an order stream opened without `Last-Event-ID`. */
export const ORDER_SNAPSHOT_EVENT = 'order_snapshot';

/** What the `orders.tracking` subscription appends for one order event. */
export type FeedEntryInput = {
  outletId: string;
  orderId: string;
  customerId: string;
  eventId: string;
  eventName: TrackingEventName;
  status: OrderStatus;
  version: number;
  /** What clients receive as `data:`; see `toFeedEntryInput` for what is left out. */
  view: Record<string, unknown>;
  occurredAt: Date;
};

/** One row of the feed, as streams read it. */
export type FeedEntry = {
  outletId: string;
  /** Per-outlet, gap-free, committed in order: the SSE `id:`. */
  position: number;
  orderId: string;
  eventName: TrackingEventName;
  view: Record<string, unknown>;
};

/** One Server-Sent Events message. */
export type SseMessage = { id: string; event: string; data: Record<string, unknown> };

/**
 * Where a stream begins: the messages to write first, then feed entries of
 * `outletId` (only `orderId`'s, when set) after `position`.
 */
export type StreamStart = {
  outletId: string;
  orderId: string | undefined;
  position: number;
  initialMessages: SseMessage[];
};

/** How many recent events a board stream opened without `Last-Event-ID` replays. */
export const BOARD_REPLAY_EVENTS = 50;

/**
 * The feed entry of an order event. The view is what both audiences may see:
 * the customer of the order and the staff of its outlet. Left out on purpose:
 * `changedBy` (a staff account id), `releasedStock` (inventory internals) and
 * the customer's id (the board has no use for it; the customer knows it).
 */
export function toFeedEntryInput(event: EventEnvelope): FeedEntryInput {
  const occurredAt = new Date(event.occurredAt);
  // Parsing holds the event to its contract; a mismatch throws
  // EventValidationError, which the bus dead-letters without retrying.
  if (event.type === OrderPlacedV1.type) {
    const { payload } = OrderPlacedV1.parse(event);
    return {
      outletId: payload.outletId,
      orderId: payload.orderId,
      customerId: payload.customerId,
      eventId: event.id,
      eventName: 'order_placed',
      status: 'PLACED',
      version: payload.version,
      view: {
        orderId: payload.orderId,
        outletId: payload.outletId,
        status: 'PLACED',
        version: payload.version,
        currency: payload.currency,
        totalMinor: payload.totalMinor,
        lines: payload.lines.map((line) => ({ name: line.name, quantity: line.quantity })),
        placedAt: payload.placedAt,
      },
      occurredAt,
    };
  }
  if (event.type === OrderStatusChangedV1.type) {
    const { payload } = OrderStatusChangedV1.parse(event);
    return {
      outletId: payload.outletId,
      orderId: payload.orderId,
      customerId: payload.customerId,
      eventId: event.id,
      eventName: 'order_status_changed',
      status: payload.to,
      version: payload.version,
      view: {
        orderId: payload.orderId,
        outletId: payload.outletId,
        status: payload.to,
        from: payload.from,
        version: payload.version,
        changedAt: payload.changedAt,
      },
      occurredAt,
    };
  }
  if (event.type === OrderCancelledV1.type) {
    const { payload } = OrderCancelledV1.parse(event);
    return {
      outletId: payload.outletId,
      orderId: payload.orderId,
      customerId: payload.customerId,
      eventId: event.id,
      eventName: 'order_cancelled',
      status: 'CANCELLED',
      version: payload.version,
      view: {
        orderId: payload.orderId,
        outletId: payload.outletId,
        status: 'CANCELLED',
        from: payload.from,
        version: payload.version,
        cancelledBy: payload.cancelledBy,
        reason: payload.reason,
        cancelledAt: payload.cancelledAt,
      },
      occurredAt,
    };
  }
  throw unknownTrackedEvent(event.type);
}

// A position is a bigint in the database; 2^53 events per outlet is out of reach.
const LAST_EVENT_ID = /^[0-9]{1,15}$/;

/**
 * The position to resume after: the `Last-Event-ID` header (what EventSource
 * sends on reconnect) or, for clients that cannot set headers on the first
 * request, the `last_event_id` query parameter. The header wins.
 */
export function parseLastEventId(
  header: string | string[] | undefined,
  query: string | undefined,
): number | undefined {
  if (Array.isArray(header)) throw lastEventIdInvalid('/headers/last-event-id');
  if (header !== undefined) return parsePosition(header, '/headers/last-event-id');
  if (query !== undefined) return parsePosition(query, '/querystring/last_event_id');
  return undefined;
}

function parsePosition(value: string, pointer: string): number {
  const trimmed = value.trim();
  if (!LAST_EVENT_ID.test(trimmed)) throw lastEventIdInvalid(pointer);
  return Number(trimmed);
}

/** The message a feed entry becomes: its outlet position is the id on both streams. */
export function toSseMessage(entry: FeedEntry): SseMessage {
  return { id: String(entry.position), event: entry.eventName, data: entry.view };
}

/**
 * One message on the wire. JSON never contains a raw newline, so `data:` is
 * one line; `id` and `event` are ours (digits, snake case), never input.
 */
export function formatSseMessage(message: SseMessage): string {
  return `id: ${message.id}\nevent: ${message.event}\ndata: ${JSON.stringify(message.data)}\n\n`;
}

/** A comment line: ignored by clients, keeps proxies from timing the connection out. */
export const SSE_HEARTBEAT = ': keep-alive\n\n';

/** How long a client should wait before reconnecting, sent once at the start. */
export function formatSseRetry(retryMs: number): string {
  return `retry: ${retryMs}\n\n`;
}

/** Whether a watcher of `orderId` (or of the whole outlet when undefined) receives `entry`. */
export function isEntryFor(entry: FeedEntry, orderId: string | undefined): boolean {
  return orderId === undefined || entry.orderId === orderId;
}

/**
 * The notification payload `<outletId>:<position>` sent at commit of each append. `appendFeedEntry`
 * builds the same string in SQL (the position is only known there); a database test holds the two
 * together, so change both or neither.
 */
export function formatFeedNotification(outletId: string, position: number): string {
  return `${outletId}:${position}`;
}

export function parseFeedNotification(payload: string): { outletId: string; position: number } | undefined {
  const separator = payload.lastIndexOf(':');
  if (separator <= 0) return undefined;
  const position = Number(payload.slice(separator + 1));
  if (!Number.isSafeInteger(position) || position < 1) return undefined;
  return { outletId: payload.slice(0, separator), position };
}
