import { asPlatformTables } from '@keel/platform/db';
import type { Clock, IdGenerator, JobSender } from '@keel/platform/module';
import type { BatchEventHandler, Subscription } from '@keel/platform/outbox';
import { findActiveEndpointIdsByType, insertDeliveries, type WebhooksSchema } from './webhook.repository.ts';
import { toWebhookBody, WEBHOOK_EVENT_TYPES } from './webhook.ts';
import { WEBHOOK_DELIVERY_QUEUE, type WebhookDeliveryJob } from './webhook-delivery.job.ts';

export const WEBHOOKS_SUBSCRIPTION_NAME = 'orders.webhooks';

/**
 * Fans each event out to the active endpoints subscribed to its type: one
 * delivery row and one job per endpoint, in the inbox transaction, so the
 * jobs exist exactly when the rows do. The network calls happen in the jobs,
 * after commit: a handler must not hold its transaction across them.
 * A batch takes at most three statements (endpoints, deliveries, jobs), one
 * when no endpoint is subscribed; a single event is a batch of one.
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
  // Endpoints are read once per batch: one created meanwhile receives events
  // from the next batch on, which still keeps the promise that an endpoint
  // receives the events fanned out after it was committed.
  const handleBatch: BatchEventHandler = async (events, trx) => {
    const db = asPlatformTables<WebhooksSchema>(trx);
    const endpointIdsByType = await findActiveEndpointIdsByType(
      db,
      events.map((event) => event.type),
    );
    const deliveries = events.flatMap((event) => {
      const endpointIds = endpointIdsByType.get(event.type) ?? [];
      if (endpointIds.length === 0) return [];
      const body = toWebhookBody(event);
      const createdAt = deps.clock.now();
      return endpointIds.map((endpointId) => ({
        id: deps.ids.uuid(),
        endpointId,
        eventId: event.id,
        eventType: event.type,
        body,
        createdAt,
      }));
    });
    const inserted = await insertDeliveries(db, deliveries);
    await deps.jobs.sendManyWith<WebhookDeliveryJob>(
      trx,
      WEBHOOK_DELIVERY_QUEUE,
      inserted.map((deliveryId) => ({ deliveryId })),
    );
  };
  return {
    name: WEBHOOKS_SUBSCRIPTION_NAME,
    eventTypes: WEBHOOK_EVENT_TYPES,
    isOrderedPerAggregate: false,
    maxAttempts: 10,
    handler: (event, trx) => handleBatch([event], trx),
    handleBatch,
  };
}
