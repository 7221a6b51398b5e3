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
