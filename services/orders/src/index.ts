import { fileURLToPath } from 'node:url';
import type { ServiceModule } from '@keel/platform/module';
import { ORDERS_ROLES } from './access/orders-permissions.ts';
import { registerOrdersService } from './composition-root.ts';
import { seedOrdersDemoData } from './demo-data.ts';

export const ordersModule: ServiceModule = {
  name: 'orders',
  schema: 'orders',
  routePrefix: '/orders',
  migrationsDirectory: fileURLToPath(new URL('../migrations', import.meta.url)),
  register: registerOrdersService,
  roles: ORDERS_ROLES,
  seedDemoData: seedOrdersDemoData,
};

export { webhookSecretColumn } from './webhooks/webhook.service.ts';
// For receivers of Keel's webhooks: check a delivery's Standard Webhooks signature.
export { signWebhook, verifyWebhookSignature } from './webhooks/webhook-signature.ts';
