import { randomBytes } from 'node:crypto';
import { loadFieldCrypto } from '@keel/platform/crypto';
import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import { createWebhookFanOutSubscription } from './on-order-event.handler.ts';
import type { WebhooksSchema } from './webhook.repository.ts';
import { registerWebhookRoutes } from './webhook.routes.ts';
import { createWebhookService } from './webhook.service.ts';
import { createWebhookDeliveryQueue } from './webhook-delivery.job.ts';

/** Builds the webhooks feature and registers its routes, subscriptions and jobs. */
export function wireWebhooks(app: KeelApp, deps: OrdersDependencies): void {
  const { config } = deps;
  // The platform's keyring (the same variables, or the same generated file
  // outside production, that the platform itself loads at start).
  const { encryption } = loadFieldCrypto({
    ...(config.KEEL_ENCRYPTION_KEYS === undefined ? {} : { encryptionKeys: config.KEEL_ENCRYPTION_KEYS }),
    ...(config.KEEL_BLIND_INDEX_KEY === undefined ? {} : { blindIndexKey: config.KEEL_BLIND_INDEX_KEY }),
    dataDirectory: config.KEEL_DATA_DIR,
    allowGenerate: config.NODE_ENV !== 'production',
  });
  const db = deps.database.typed<WebhooksSchema>();
  deps.background.subscribe(
    createWebhookFanOutSubscription({ clock: deps.clock, ids: deps.ids, jobs: deps.background.jobs }),
  );
  deps.background.addJobQueue(
    createWebhookDeliveryQueue({
      db,
      clock: deps.clock,
      encryption,
      fetch: globalThis.fetch,
      logger: deps.logger.child({ component: 'webhooks' }),
    }),
  );
  registerWebhookRoutes(
    app,
    createWebhookService({
      db,
      clock: deps.clock,
      ids: deps.ids,
      encryption,
      randomBytes,
      isProduction: config.NODE_ENV === 'production',
    }),
  );
}
