import {
  type EventEnvelope,
  OrderCancelledV1,
  OrderPlacedV1,
  type OrderStatus,
  OrderStatusChangedV1,
} from '@keel/contracts';

// Which order events a customer hears about, and what each message says.
// Pure: the subscriber records the decision, a job sends it.

export const CUSTOMER_NOTIFICATION_TEMPLATES = [
  'orders.order_placed',
  'orders.order_status_changed',
  'orders.order_cancelled',
] as const;
export type CustomerNotificationTemplate = (typeof CUSTOMER_NOTIFICATION_TEMPLATES)[number];

/** Status changes worth a message; PREPARING and READY are kitchen-internal steps. */
export const NOTIFIED_STATUSES: ReadonlySet<OrderStatus> = new Set<OrderStatus>([
  'CONFIRMED',
  'OUT_FOR_DELIVERY',
  'DELIVERED',
]);

/** Ids, status and amounts only: `Notification.data` is logged by the log notifier. */
export type NotificationData = Record<string, string | number | boolean>;

export type CustomerNotification = {
  eventId: string;
  orderId: string;
  customerId: string;
  template: CustomerNotificationTemplate;
  data: NotificationData;
};

/**
 * The notifier address of a customer. Orders knows accounts, not email
 * addresses or phone numbers: the notifier adapter resolves `account:<id>`
 * to the account's contact details and preferred channel.
 */
export function recipientOf(customerId: string): string {
  return `account:${customerId}`;
}

/**
 * The message an event calls for, or undefined when the customer is not told.
 * A malformed event of a known type throws the contract's
 * `EventValidationError`, which dead-letters it.
 */
export function decideNotification(event: EventEnvelope): CustomerNotification | undefined {
  if (event.type === OrderPlacedV1.type) {
    const { payload } = OrderPlacedV1.parse(event);
    return {
      eventId: event.id,
      orderId: payload.orderId,
      customerId: payload.customerId,
      template: 'orders.order_placed',
      data: {
        orderId: payload.orderId,
        outletId: payload.outletId,
        status: 'PLACED',
        totalMinor: payload.totalMinor,
        currency: payload.currency,
      },
    };
  }
  if (event.type === OrderStatusChangedV1.type) {
    const { payload } = OrderStatusChangedV1.parse(event);
    if (!NOTIFIED_STATUSES.has(payload.to)) return undefined;
    return {
      eventId: event.id,
      orderId: payload.orderId,
      customerId: payload.customerId,
      template: 'orders.order_status_changed',
      // The total is not in a status change; the subscriber adds it from the placement's message.
      data: { orderId: payload.orderId, outletId: payload.outletId, status: payload.to },
    };
  }
  if (event.type === OrderCancelledV1.type) {
    const { payload } = OrderCancelledV1.parse(event);
    return {
      eventId: event.id,
      orderId: payload.orderId,
      customerId: payload.customerId,
      template: 'orders.order_cancelled',
      // Not the reason: staff write it free-form, and `data` ends up in logs.
      data: {
        orderId: payload.orderId,
        outletId: payload.outletId,
        status: 'CANCELLED',
        cancelledBy: payload.cancelledBy,
        totalMinor: payload.totalMinor,
        currency: payload.currency,
      },
    };
  }
  return undefined;
}

/** What a status message repeats from the order's placement message. */
export type PlacedAmount = { totalMinor: number; currency: string };

/** The total and currency a placement message's data holds, if it holds both. */
export function placedAmountOf(data: NotificationData): PlacedAmount | undefined {
  const { totalMinor, currency } = data;
  return typeof totalMinor === 'number' && typeof currency === 'string'
    ? { totalMinor, currency }
    : undefined;
}

/**
 * Status messages of a batch with their order's total added, as the
 * one-event path adds it: from the placement message already stored, else
 * from a placement earlier in the same batch (which that path would have
 * stored by then). The bus never hands a batch both for one order (the
 * subscription is ordered per order), a direct caller may.
 */
export function addPlacedAmounts(
  notifications: readonly CustomerNotification[],
  storedAmounts: ReadonlyMap<string, PlacedAmount>,
): CustomerNotification[] {
  const placedEarlier = new Map<string, PlacedAmount>();
  return notifications.map((notification) => {
    if (notification.template === 'orders.order_placed') {
      const amount = placedAmountOf(notification.data);
      if (amount !== undefined && !placedEarlier.has(notification.orderId))
        placedEarlier.set(notification.orderId, amount);
      return notification;
    }
    if (notification.template !== 'orders.order_status_changed') return notification;
    const amount = storedAmounts.get(notification.orderId) ?? placedEarlier.get(notification.orderId);
    return amount === undefined
      ? notification
      : { ...notification, data: { ...notification.data, ...amount } };
  });
}
