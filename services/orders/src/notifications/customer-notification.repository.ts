import { type Kysely, sql } from '@keel/platform/db';
import {
  type CustomerNotification,
  type CustomerNotificationTemplate,
  type NotificationData,
  type PlacedAmount,
  placedAmountOf,
} from './customer-notification.ts';

// Table of migrations/0004_webhooks.sql owned by this feature.

export type CustomerNotificationsTable = {
  event_id: string;
  order_id: string;
  customer_id: string;
  template: CustomerNotificationTemplate;
  data: NotificationData;
  created_at: Date;
  sent_at: Date | null;
};

export type NotificationsSchema = { 'orders.customer_notifications': CustomerNotificationsTable };
export type NotificationsDb = Kysely<NotificationsSchema>;

export type StoredNotification = CustomerNotification & { createdAt: Date; sentAt: Date | null };

/**
 * Inserts the notifications not recorded yet, in one statement; returns the
 * event ids it inserted, in the order given and each once (none on a
 * redelivered batch).
 */
export async function insertCustomerNotifications(
  db: NotificationsDb,
  notifications: readonly (CustomerNotification & { createdAt: Date })[],
): Promise<string[]> {
  if (notifications.length === 0) return [];
  const rows = await db
    .insertInto('orders.customer_notifications')
    .values(
      notifications.map((notification) => ({
        event_id: notification.eventId,
        order_id: notification.orderId,
        customer_id: notification.customerId,
        template: notification.template,
        data: notification.data,
        created_at: notification.createdAt,
      })),
    )
    .onConflict((conflict) => conflict.column('event_id').doNothing())
    .returning('event_id')
    .execute();
  const inserted = new Set(rows.map((row) => row.event_id));
  // delete() is true once per id: an event listed twice was inserted (at most) once.
  return notifications
    .map((notification) => notification.eventId)
    .filter((eventId) => inserted.delete(eventId));
}

/** The total and currency the placement message of each order carried: by order id, the orders with one. */
export async function findPlacedAmounts(
  db: NotificationsDb,
  orderIds: readonly string[],
): Promise<Map<string, PlacedAmount>> {
  const amounts = new Map<string, PlacedAmount>();
  if (orderIds.length === 0) return amounts;
  const rows = await db
    .selectFrom('orders.customer_notifications')
    .select(['order_id', 'data'])
    .where(sql<boolean>`order_id = any(${[...new Set(orderIds)]}::uuid[])`)
    .where('template', '=', 'orders.order_placed')
    .execute();
  for (const row of rows) {
    const amount = placedAmountOf(row.data);
    // An order has one placement; should it have more, one is taken.
    if (amount !== undefined && !amounts.has(row.order_id)) amounts.set(row.order_id, amount);
  }
  return amounts;
}

export async function findCustomerNotification(
  db: NotificationsDb,
  eventId: string,
): Promise<StoredNotification | undefined> {
  const row = await db
    .selectFrom('orders.customer_notifications')
    .select(['event_id', 'order_id', 'customer_id', 'template', 'data', 'created_at', 'sent_at'])
    .where('event_id', '=', eventId)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : {
        eventId: row.event_id,
        orderId: row.order_id,
        customerId: row.customer_id,
        template: row.template,
        data: row.data,
        createdAt: row.created_at,
        sentAt: row.sent_at,
      };
}

export async function updateNotificationSent(
  db: NotificationsDb,
  eventId: string,
  sentAt: Date,
): Promise<void> {
  await db
    .updateTable('orders.customer_notifications')
    .set({ sent_at: sentAt })
    .where('event_id', '=', eventId)
    .where('sent_at', 'is', null)
    .execute();
}
