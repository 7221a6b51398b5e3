import { fileURLToPath } from 'node:url';
import type { ServiceModule } from '@keel/platform/module';
import { createUserMetadataRoot } from './composition-root.ts';
import { seedUserMetadataDemoData } from './demo-data.ts';
import { registerUserRoutes } from './users/user.routes.ts';

export const userMetadataModule: ServiceModule = {
  name: 'user-metadata',
  schema: 'user_metadata',
  // The contract fixes the paths: POST /user, GET /user/{id}.
  routePrefix: '',
  migrationsDirectory: fileURLToPath(new URL('../migrations', import.meta.url)),
  register(app, context) {
    registerUserRoutes(app, createUserMetadataRoot(context).users);
  },
  roles: {
    definitions: [
      {
        name: 'user-metadata:reader',
        description: 'Reads user records',
        permissions: ['user-metadata:read'],
        requiresMfa: false,
      },
      {
        name: 'user-metadata:writer',
        description: 'Creates and reads user records',
        permissions: ['user-metadata:read', 'user-metadata:write'],
        requiresMfa: false,
      },
    ],
  },
  seedDemoData: seedUserMetadataDemoData,
};
