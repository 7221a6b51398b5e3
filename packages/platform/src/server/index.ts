export {
  buildKeelApp,
  type KeelAppDependencies,
  migrationSourcesFor,
  parseTrustProxy,
  platformMigrations,
} from './build-app.ts';
export { maskPassword, type OpenedDatabase, openDatabase } from './open-database.ts';
export { identitySettingsFrom, openPlatformSecurity, type PlatformSecurity } from './security.ts';
