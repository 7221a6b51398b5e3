import { asPlatformTables } from '@keel/platform/db';
import type { Clock, IdGenerator, JobSender } from '@keel/platform/module';
import type { Subscription } from '@keel/platform/outbox';
import { findActiveEndpointIdsFor, insertDeliveries, type WebhooksSchema } from './webhook.repository.ts';
import { toWebhookBody, WEBHOOK_EVENT_TYPES } from './webhook.ts';
import { WEBHOOK_DELIVERY_QUEUE, type WebhookDeliveryJob } from './webhook-delivery.job.ts';

export const WEBHOOKS_SUBSCRIPTION_NAME = 'orders.webhooks';

/**
 * Fans each event out to the active endpoints subscribed to its type: one
 * delivery row and one job per endpoint, in the inbox transaction, so the
 * jobs exist exactly when the rows do. The network calls happen in the jobs,
 * after commit: a handler must not hold its transaction across them.
 *
 * Not ordered per aggregate: deliveries run concurrently and are retried
 * independently, so receivers see events in no guaranteed order anyway and
 * order them by the payload's `version`.
 */
export function createWebhookFanOutSubscription(deps: {
  clock: Clock;
  ids: IdGenerator;
  jobs: JobSender;
}): Subscription {
  return {
    name: WEBHOOKS_SUBSCRIPTION_NAME,
    eventTypes: WEBHOOK_EVENT_TYPES,
    isOrderedPerAggregate: false,
    maxAttempts: 10,
    handler: async (event, trx) => {
      const db = asPlatformTables<WebhooksSchema>(trx);
      const endpointIds = await findActiveEndpointIdsFor(db, event.type);
      if (endpointIds.length === 0) return;
      const body = toWebhookBody(event);
      const inserted = await insertDeliveries(
        db,
        endpointIds.map((endpointId) => ({
          id: deps.ids.uuid(),
          endpointId,
          eventId: event.id,
          eventType: event.type,
          body,
        })),
        deps.clock.now(),
      );
      for (const deliveryId of inserted)
        await deps.jobs.sendWith<WebhookDeliveryJob>(trx, WEBHOOK_DELIVERY_QUEUE, { deliveryId });
    },
  };
}
