import type { Db } from '@keel/platform/db';
import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { Clock } from '@keel/platform/module';
import type { Notifier } from '@keel/platform/notifier';
import {
  findCustomerNotification,
  type NotificationsSchema,
  updateNotificationSent,
} from './customer-notification.repository.ts';
import { recipientOf } from './customer-notification.ts';
import { notificationNotFound } from './notification.errors.ts';

export const SEND_NOTIFICATION_QUEUE = 'orders.send-notification';

export type SendNotificationJob = { eventId: string };

/**
 * Sends one recorded notification, at least once: a crash between the
 * notifier accepting it and `sent_at` being written sends it again on the
 * retry. Only that narrow window can duplicate: a rerun after `sent_at` is
 * written sends nothing. A notifier failure is retried with backoff, then
 * dead-lettered (`/admin/jobs/orders.send-notification/dead-letters`).
 */
export function createSendNotificationQueue(deps: {
  db: Db<NotificationsSchema>;
  notifier: Notifier;
  clock: Clock;
}): JobQueueDefinition<SendNotificationJob> {
  return {
    name: SEND_NOTIFICATION_QUEUE,
    retryLimit: 6,
    retryDelaySeconds: 5,
    retryBackoff: true,
    deadLetter: true,
    concurrency: 4,
    handler: async (job) => {
      const { eventId } = job.data;
      const notification = await deps.db.run((db) => findCustomerNotification(db, eventId));
      if (notification === undefined) throw notificationNotFound(eventId);
      if (notification.sentAt !== null) return;
      await deps.notifier.send({
        to: recipientOf(notification.customerId),
        template: notification.template,
        data: notification.data,
      });
      await deps.db.run((db) => updateNotificationSent(db, eventId, deps.clock.now()));
    },
  };
}
