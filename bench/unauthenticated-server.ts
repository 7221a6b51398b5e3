// Bench only: the Keel server with user-metadata's routes made public, so
// `user-metadata-get-unauthenticated` measures the same app minus
// authentication. Never shipped: it lives in bench/ and nothing imports it.
import { userMetadataModule } from '../services/user-metadata/src/index.ts';

const register = userMetadataModule.register;
userMetadataModule.register = (app, context) => {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: 'public' };
  });
  return register(app, context);
};

await import('../apps/server/src/main.ts');
