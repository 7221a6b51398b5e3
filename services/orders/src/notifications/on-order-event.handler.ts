import { OrderCancelledV1, OrderPlacedV1, OrderStatusChangedV1 } from '@keel/contracts';
import { asPlatformTables } from '@keel/platform/db';
import type { Clock, JobSender } from '@keel/platform/module';
import type { BatchEventHandler, Subscription } from '@keel/platform/outbox';
import {
  findPlacedAmounts,
  insertCustomerNotifications,
  type NotificationsSchema,
} from './customer-notification.repository.ts';
import { addPlacedAmounts, decideNotification } from './customer-notification.ts';
import { SEND_NOTIFICATION_QUEUE, type SendNotificationJob } from './send-notification.job.ts';

export const NOTIFICATIONS_SUBSCRIPTION_NAME = 'orders.customer-notifications';

/**
 * Decides what to tell the customer and records it, with the job that sends
 * it, in the inbox transaction: the notifier is an external call that cannot
 * be rolled back, so it runs after commit, in a job with its own retries and
 * dead letters. The event id keys the record, so an event yields one job
 * however often it is delivered. A batch takes at most three statements
 * (totals, records, jobs); a single event is a batch of one.
 */
export function createCustomerNotificationsSubscription(deps: {
  clock: Clock;
  jobs: JobSender;
}): Subscription {
  // Reads every total before any record is written, where the handler reads
  // each after the earlier events' records: addPlacedAmounts makes up for it.
  const handleBatch: BatchEventHandler = async (events, trx) => {
    const decided = events.flatMap((event) => decideNotification(event) ?? []);
    if (decided.length === 0) return;
    const db = asPlatformTables<NotificationsSchema>(trx);
    const storedAmounts = await findPlacedAmounts(
      db,
      decided
        .filter((notification) => notification.template === 'orders.order_status_changed')
        .map((notification) => notification.orderId),
    );
    const inserted = await insertCustomerNotifications(
      db,
      addPlacedAmounts(decided, storedAmounts).map((notification) => ({
        ...notification,
        createdAt: deps.clock.now(),
      })),
    );
    await deps.jobs.sendManyWith<SendNotificationJob>(
      trx,
      SEND_NOTIFICATION_QUEUE,
      inserted.map((eventId) => ({ eventId })),
    );
  };
  return {
    name: NOTIFICATIONS_SUBSCRIPTION_NAME,
    eventTypes: [OrderPlacedV1.type, OrderStatusChangedV1.type, OrderCancelledV1.type],
    // The placement is recorded before the status changes that repeat its total.
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    handler: (event, trx) => handleBatch([event], trx),
    handleBatch,
  };
}
