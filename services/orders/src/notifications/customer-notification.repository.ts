import type { Kysely } from '@keel/platform/db';
import type {
  CustomerNotification,
  CustomerNotificationTemplate,
  NotificationData,
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

/** False when the event was already recorded (a redelivery): the caller then enqueues nothing. */
export async function insertCustomerNotification(
  db: NotificationsDb,
  notification: CustomerNotification,
  createdAt: Date,
): Promise<boolean> {
  const row = await db
    .insertInto('orders.customer_notifications')
    .values({
      event_id: notification.eventId,
      order_id: notification.orderId,
      customer_id: notification.customerId,
      template: notification.template,
      data: notification.data,
      created_at: createdAt,
    })
    .onConflict((conflict) => conflict.column('event_id').doNothing())
    .returning('event_id')
    .executeTakeFirst();
  return row !== undefined;
}

/** The total and currency the placement message of an order carried, if there was one. */
export async function findPlacedAmount(
  db: NotificationsDb,
  orderId: string,
): Promise<{ totalMinor: number; currency: string } | undefined> {
  const row = await db
    .selectFrom('orders.customer_notifications')
    .select('data')
    .where('order_id', '=', orderId)
    .where('template', '=', 'orders.order_placed')
    .executeTakeFirst();
  const totalMinor = row?.data.totalMinor;
  const currency = row?.data.currency;
  return typeof totalMinor === 'number' && typeof currency === 'string'
    ? { totalMinor, currency }
    : undefined;
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
