import type { PlatformConfig } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { KeelApp } from '../http/index.ts';
import type { JobQueueDefinition, Jobs } from '../jobs/index.ts';
import type { Notifier } from '../notifier/index.ts';
import type { Logger, ServiceMetrics } from '../observability/index.ts';
import type { Subscription } from '../outbox/index.ts';
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

/** Sends jobs; available once the server has started (from request and event handlers). */
export type JobSender = Pick<Jobs, 'send' | 'sendWith' | 'sendManyWith'>;

/**
 * What a service runs outside requests. A module declares its event
 * subscriptions, job queues and schedules while it registers; the server
 * starts them all after every module registered (so no event is delivered to
 * a half-built service) and stops them before the database pool closes.
 */
export type BackgroundRegistry = {
  /** Delivers committed outbox events of `subscription.eventTypes` to its handler, at least once, inbox-deduplicated. */
  subscribe(subscription: Subscription): void;
  /** A job queue with its handler; created, and its workers started, when the server starts. */
  addJobQueue<Payload>(definition: JobQueueDefinition<Payload>): void;
  /** Sends a job to `name` on a cron expression (UTC), once per fleet. */
  schedule(name: string, cron: string, data?: object): void;
  jobs: JobSender;
};

/**
 * Sign-in accounts for demo data, created through the platform's identity so
 * their passwords, roles and audit trail are real. `ensure` is idempotent: an
 * existing account with the email is returned as it is.
 */
export type DemoAccounts = {
  ensure(input: { email: string; roles: readonly string[] }): Promise<{ id: string; email: string }>;
  /** The password every demo account is created with (shown in the start-up banner). */
  password: string;
};

/** What `seedDemoData` receives: the service context and, when the server runs the demo, its accounts. */
export type DemoSeedContext = ServiceContext & { demoAccounts?: DemoAccounts };

/**
 * What `register` receives: the service context plus the platform's notifier,
 * background work and the service's own metrics (named `keel_<service>_…`,
 * served at `/metrics` with the platform's).
 */
export type ServiceMountContext = ServiceContext & {
  notifier: Notifier;
  background: BackgroundRegistry;
  metrics: ServiceMetrics;
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
  register: (app: KeelApp, context: ServiceMountContext) => Promise<void> | void;
  /** The roles the service declares and which one self-registration grants. */
  roles?: ServiceRoles;
  /** Inserts demo data for `npm start` on the embedded database; must be safe to run twice. */
  seedDemoData?: (context: DemoSeedContext) => Promise<void>;
};

export const systemClock: Clock = { now: () => new Date() };
