import { OrderCancelledV1, OrderPlacedV1, OrderStatusChangedV1 } from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import type { Clock, JobSender } from '@keel/platform/module';
import type { Subscription } from '@keel/platform/outbox';
import {
  findPlacedAmount,
  insertCustomerNotification,
  type NotificationsSchema,
} from './customer-notification.repository.ts';
import { decideNotification } from './customer-notification.ts';
import { SEND_NOTIFICATION_QUEUE, type SendNotificationJob } from './send-notification.job.ts';

export const NOTIFICATIONS_SUBSCRIPTION_NAME = 'orders.customer-notifications';

/**
 * Decides what to tell the customer and records it, with the job that sends
 * it, in the inbox transaction: the notifier is an external call that cannot
 * be rolled back, so it runs after commit, in a job with its own retries and
 * dead letters. The event id keys the record, so an event yields one job
 * however often it is delivered.
 */
export function createCustomerNotificationsSubscription(deps: {
  clock: Clock;
  jobs: JobSender;
}): Subscription {
  return {
    name: NOTIFICATIONS_SUBSCRIPTION_NAME,
    eventTypes: [OrderPlacedV1.type, OrderStatusChangedV1.type, OrderCancelledV1.type],
    // The placement is recorded before the status changes that repeat its total.
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    handler: async (event, trx) => {
      const decided = decideNotification(event);
      if (decided === undefined) return;
      const db = asPlatformTables<NotificationsSchema>(trx);
      let notification = decided;
      if (decided.template === 'orders.order_status_changed') {
        const amount = await findPlacedAmount(db, decided.orderId);
        if (amount !== undefined) notification = { ...decided, data: { ...decided.data, ...amount } };
      }
      if (!(await insertCustomerNotification(db, notification, deps.clock.now()))) return;
      await deps.jobs.sendWith<SendNotificationJob>(trx, SEND_NOTIFICATION_QUEUE, { eventId: event.id });
    },
  };
}
