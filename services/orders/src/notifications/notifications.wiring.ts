import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import type { NotificationsSchema } from './customer-notification.repository.ts';
import { createCustomerNotificationsSubscription } from './on-order-event.handler.ts';
import { createSendNotificationQueue } from './send-notification.job.ts';

/** Builds the notifications feature and registers its routes, subscriptions and jobs. */
export function wireNotifications(_app: KeelApp, deps: OrdersDependencies): void {
  deps.background.subscribe(
    createCustomerNotificationsSubscription({ clock: deps.clock, jobs: deps.background.jobs }),
  );
  deps.background.addJobQueue(
    createSendNotificationQueue({
      db: deps.database.typed<NotificationsSchema>(),
      notifier: deps.notifier,
      clock: deps.clock,
    }),
  );
}
