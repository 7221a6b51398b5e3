export {
  type Background,
  type BackgroundSettings,
  backgroundSettingsFrom,
  createBackground,
  PRUNE_EVENTS_QUEUE,
} from './background.ts';
export {
  buildKeelApp,
  type KeelAppDependencies,
  migrationSourcesFor,
  parseTrustProxy,
  platformMigrations,
} from './build-app.ts';
export { maskPassword, type OpenedDatabase, openDatabase } from './open-database.ts';
export { registerOperationsRoutes } from './operations.routes.ts';
export { identitySettingsFrom, openPlatformSecurity, type PlatformSecurity } from './security.ts';
