import type { PlatformConfig } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { KeelApp } from '../http/index.ts';
import type { Logger } from '../observability/index.ts';
import type { ServiceRoles } from '../rbac/index.ts';

/** Time, injected so tests and services never read the global clock directly. */
export type Clock = { now: () => Date };
/** Identifier minting, injected for the same reason. */
export type IdGenerator = { uuid: () => string };

/** What the platform hands every service when it mounts. */
export type ServiceContext = {
  config: PlatformConfig;
  database: Database;
  logger: Logger;
  clock: Clock;
  ids: IdGenerator;
};

/**
 * The contract between a service and the server that mounts it. A service
 * exports one of these from `src/index.ts`; `apps/server` mounts the ones
 * `SERVICES` selects, each in its own encapsulated Fastify context.
 *
 * @example
 * export const userMetadataModule: ServiceModule = {
 *   name: 'user-metadata', schema: 'user_metadata', routePrefix: '',
 *   migrationsDirectory: fileURLToPath(new URL('../migrations', import.meta.url)),
 *   register: (app, context) => registerUserRoutes(app, createUserMetadata(context)),
 * };
 */
export type ServiceModule = {
  /** Kebab-case; labels metrics and logs, and is what `SERVICES` lists. */
  name: string;
  /** The Postgres schema the service owns. */
  schema: string;
  /** Prefix for every route of the service ('' for none). */
  routePrefix: string;
  migrationsDirectory: string;
  /** Builds the service's dependencies (its composition root) and registers its routes. */
  register: (app: KeelApp, context: ServiceContext) => Promise<void> | void;
  /** The roles the service declares and which one self-registration grants. */
  roles?: ServiceRoles;
  /** Inserts demo data for `npm start` on the embedded database; must be safe to run twice. */
  seedDemoData?: (context: ServiceContext) => Promise<void>;
};

export const systemClock: Clock = { now: () => new Date() };
