import { fileURLToPath } from 'node:url';
import type { ServiceModule } from '@keel/platform/module';
import { TELEMEDICINE_ROLES } from './access/telemedicine-permissions.ts';
import { registerTelemedicineService } from './composition-root.ts';
import { seedTelemedicineDemoData } from './demo-data.ts';

export const telemedicineModule: ServiceModule = {
  name: 'telemedicine',
  schema: 'telemedicine',
  routePrefix: '/telemedicine',
  migrationsDirectory: fileURLToPath(new URL('../migrations', import.meta.url)),
  register: registerTelemedicineService,
  roles: TELEMEDICINE_ROLES,
  seedDemoData: seedTelemedicineDemoData,
};

export { TELEMEDICINE_ENCRYPTED_COLUMNS } from './encrypted-columns.ts';
