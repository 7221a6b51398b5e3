import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import { AppError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { Counter, type Registry, registerGauge } from '../observability/metrics.ts';
import { getTracer } from '../observability/tracing.ts';
import {
  type BreakerState,
  createResilience,
  isBrokenCircuit,
  type Resilience,
} from '../resilience/index.ts';
import { type CommitSignals, createCommitSignals } from './commit-signals.ts';
import {
  isDatabaseOutage,
  isTransientDatabaseError,
  markConnectFailure,
  QUERY_CANCELED,
  sqlState,
} from './pg-errors.ts';

export type DatabaseSettings = {
  url: string;
  poolMax: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  retryMaxAttempts: number;
  retryBudgetMs: number;
  breakerThreshold: number;
  breakerHalfOpenAfterMs: number;
  applicationName?: string;
  /** Emit a span per query (when tracing is on). */
  traceQueries?: boolean;
};

/** A typed view of the database for one service's tables. */
export type Db<Schema> = {
  /** Runs `work` with retry on transient failures, behind the database breaker. */
  run<T>(work: (db: Kysely<Schema>) => Promise<T>): Promise<T>;
  /**
   * Runs `work` in one transaction; on a transient failure the whole
   * transaction runs again, so `work` must not have effects outside it.
   */
  transaction<T>(work: (trx: Transaction<Schema>) => Promise<T>): Promise<T>;
  /**
   * `run` for a write that is one statement, which commits on its own when
   * it ends: no BEGIN and COMMIT round trips, and its row locks are released
   * as the statement finishes, not after the next turn of this process's
   * event loop. Signals asked for through `signalAfterCommit(db, channel)`
   * are sent once `work` resolves; none when it throws. With several
   * statements each commits on its own: use `transaction` to make them one.
   */
  autocommit<T>(work: (db: Kysely<Schema>) => Promise<T>): Promise<T>;
};

export type Database = {
  pool: pg.Pool;
  /** Wake-ups sent once a transaction commits (see `signalAfterCommit`). */
  signals: CommitSignals;
  typed<Schema>(): Db<Schema>;
  breakerState(): BreakerState;
  /** A cheap round trip that bypasses retries; readiness uses it. */
  ping(): Promise<void>;
  registerMetrics(registry: Registry): void;
  /**
   * Waits until no connection is checked out or awaited for `quietMs` in a
   * row, or until `timeoutMs`. Shutdown calls it after the HTTP server has
   * closed: handlers of clients that hung up keep running and still need the
   * database (their idempotency keys would otherwise stay locked).
   */
  drain(options: { timeoutMs: number; quietMs?: number }): Promise<boolean>;
  /**
   * The same database through a pool of its own, for background work that
   * must not queue behind request traffic for a connection: under load every
   * request waits its turn for the shared pool, and a dispatcher batch waiting
   * there with them falls behind by seconds. Shares this database's commit
   * signals (so commits through either wake the same listeners) and its
   * settings otherwise. The caller closes it; its metrics are not registered.
   */
  withOwnPool(options: { poolMax: number; applicationName: string }): Database;
  close(): Promise<void>;
};

/**
 * A transaction over any service's tables. Platform records (idempotency keys,
 * later outbox and audit rows) join the service's transaction through it.
 */
// biome-ignore lint/suspicious/noExplicitAny: the service's table map is unknown to the platform.
export type AnyTransaction = Transaction<any>;

/** What a write runs on: a transaction, or `Db.autocommit`'s view for a one-statement write. */
// biome-ignore lint/suspicious/noExplicitAny: the service's table map is unknown to the platform.
export type AnyWriter = Kysely<any>;

// The channels to signal once each transaction opened by `Db.transaction`
// (or each `Db.autocommit` unit) commits. Keyed by the transaction object (a
// fresh view per autocommit unit), so an attempt that is rolled back (or
// retried as a new transaction) never signals.
const signalsAtCommit = new WeakMap<object, Set<string>>();

/**
 * Asks for `channel` to be signalled (see `CommitSignals`) once `trx`
 * commits, at most once per transaction: the way to wake other work about
 * rows this transaction writes without a `NOTIFY` inside it. Returns false
 * when `trx` was opened neither by `Db.transaction` nor by `Db.autocommit`
 * (a test's own Kysely transaction, `Db.run`'s handle): the caller must then
 * notify inside its own statement.
 */
export function signalAfterCommit(trx: AnyWriter, channel: string): boolean {
  const channels = signalsAtCommit.get(trx);
  if (channels === undefined) return false;
  channels.add(channel);
  return true;
}

/**
 * Views a service's transaction as one over platform tables. Sound because
 * every schema lives in the same database and the transaction is untyped at run time.
 */
export function asPlatformTables<Tables>(trx: AnyTransaction): Kysely<Tables> {
  return trx as unknown as Kysely<Tables>;
}

const MAX_PREPARED_STATEMENTS = 500;

const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * Opens the pool, wraps every unit of work in retry + breaker and maps an
 * unreachable database to a typed 503 (`database.unavailable`).
 *
 * @example
 * const database = createDatabase(settings, logger);
 * const db = database.typed<UserMetadataSchema>();
 * await db.transaction((trx) => insertUser(trx, user));
 */
export function createDatabase(
  settings: DatabaseSettings,
  logger: Logger,
  shared: { signals?: CommitSignals } = {},
): Database {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.poolMax,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: settings.statementTimeoutMs,
    application_name: settings.applicationName ?? 'keel',
  });
  // Without a listener, a backend terminated while its client sits idle in the
  // pool would crash the process. The pool drops that client by itself.
  pool.on('error', (error) =>
    logger.warn({ err: { message: error.message } }, 'idle database client failed'),
  );
  // The pool stops listening while a client is checked out, so a connection
  // lost mid-transaction would be an unhandled 'error' event and crash the
  // process. The running query still rejects (and is retried) and the pool
  // discards the broken client on release.
  pool.on('connect', (client) => {
    client.on('error', (error) =>
      logger.warn({ err: { message: error.message } }, 'database connection lost'),
    );
  });

  // Transitions before registerMetrics are kept and replayed into the counter.
  const transitions = new Map<BreakerState, number>();
  let onTransition: ((state: BreakerState) => void) | undefined;
  const resilience: Resilience = createResilience({
    maxAttempts: settings.retryMaxAttempts,
    budgetMs: settings.retryBudgetMs,
    initialDelayMs: 25,
    maxDelayMs: 1000,
    breakerThreshold: settings.breakerThreshold,
    halfOpenAfterMs: settings.breakerHalfOpenAfterMs,
    isTransient: isTransientDatabaseError,
    isOutage: isDatabaseOutage,
    onStateChange(state) {
      transitions.set(state, (transitions.get(state) ?? 0) + 1);
      onTransition?.(state);
      const log = state === 'open' ? logger.error.bind(logger) : logger.warn.bind(logger);
      log({ breaker: 'database', state }, `database circuit breaker ${state}`);
    },
    onRetry({ attempt, delayMs, error }) {
      logger.warn(
        { attempt, delayMs, err: summarise(error) },
        'retrying database work after transient failure',
      );
    },
  });

  const kysely = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: interceptedPool(pool, [
        preparingStatements(MAX_PREPARED_STATEMENTS),
        ...(settings.traceQueries ? [tracingQueries()] : []),
      ]),
    }),
  });

  // Owned (and closed) only when not shared with the database this one was made from.
  const signals =
    shared.signals ?? createCommitSignals({ pool, logger: logger.child({ component: 'commit-signals' }) });

  async function guarded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await resilience.execute(work);
    } catch (error) {
      throw toUnavailable(error, resilience);
    }
  }

  return {
    pool,
    signals,
    typed<Schema>(): Db<Schema> {
      const typedKysely = kysely as unknown as Kysely<Schema>;
      return {
        run: (work) => guarded(() => work(typedKysely)),
        transaction: (work) =>
          guarded(async () => {
            // Per attempt: a retry runs this function again, so only the committed attempt's
            // signals are sent.
            const channels = new Set<string>();
            const result = await typedKysely.transaction().execute((trx) => {
              signalsAtCommit.set(trx, channels);
              return work(trx);
            });
            for (const channel of channels) signals.send(channel);
            return result;
          }),
        autocommit: (work) =>
          guarded(async () => {
            const channels = new Set<string>();
            // A view of its own (same executor and pool), so its signals are told apart from
            // every other unit's.
            const view = typedKysely.$extendTables() as unknown as Kysely<Schema>;
            signalsAtCommit.set(view, channels);
            const result = await work(view);
            for (const channel of channels) signals.send(channel);
            return result;
          }),
      };
    },
    breakerState: () => resilience.state(),
    async ping() {
      await pool.query('select 1');
    },
    registerMetrics(registry) {
      registerGauge(registry, {
        name: 'keel_db_circuit_state',
        help: 'Database circuit breaker state: 0 closed, 1 half-open, 2 open',
        read: () => BREAKER_STATE_VALUE[resilience.state()],
      });
      const transitionCounter = new Counter({
        name: 'keel_db_circuit_transitions_total',
        help: 'Database circuit breaker state changes, by the state entered',
        labelNames: ['to'],
        registers: [registry],
      });
      for (const [state, count] of transitions) transitionCounter.inc({ to: state }, count);
      onTransition = (state) => transitionCounter.inc({ to: state });
      registerGauge(registry, {
        name: 'keel_db_pool_total',
        help: 'Open database connections',
        read: () => pool.totalCount,
      });
      registerGauge(registry, {
        name: 'keel_db_pool_idle',
        help: 'Idle database connections',
        read: () => pool.idleCount,
      });
      registerGauge(registry, {
        name: 'keel_db_pool_waiting',
        help: 'Requests waiting for a database connection',
        read: () => pool.waitingCount,
      });
    },
    async drain({ timeoutMs, quietMs = 200 }) {
      const deadline = Date.now() + timeoutMs;
      let quietSince = Date.now();
      while (Date.now() < deadline) {
        const isBusy = pool.totalCount > pool.idleCount || pool.waitingCount > 0;
        if (isBusy) quietSince = Date.now();
        else if (Date.now() - quietSince >= quietMs) return true;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return false;
    },
    withOwnPool(options) {
      return createDatabase({ ...settings, ...options }, logger, { signals });
    },
    async close() {
      if (shared.signals === undefined) await signals.close();
      await kysely.destroy();
    },
  };
}

function toUnavailable(error: unknown, resilience: Resilience): unknown {
  if (isBrokenCircuit(error)) {
    return new AppError(
      'unavailable',
      'database.unavailable',
      'The database is unavailable; try again later',
      {
        retryAfterSeconds: resilience.retryAfterSeconds(),
        cause: error,
      },
    );
  }
  if (isTransientDatabaseError(error)) {
    return new AppError(
      'unavailable',
      'database.unavailable',
      'The database did not answer; try again later',
      {
        retryAfterSeconds: 1,
        cause: error,
      },
    );
  }
  if (sqlState(error) === QUERY_CANCELED) {
    return new AppError('unavailable', 'database.timeout', 'The database took too long to answer', {
      retryAfterSeconds: 1,
      cause: error,
    });
  }
  return error;
}

function summarise(error: unknown): { code?: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  const code = sqlState(error);
  return code === undefined ? { message } : { code, message };
}

type QueryFunction = (text: unknown, values?: unknown) => Promise<unknown>;
type QueryWrapper = (query: QueryFunction) => QueryFunction;

/**
 * The one interception point between Kysely and the pool. Every error from
 * opening a connection is marked as an outage (see pg-errors.ts: only failures
 * to connect may open the breaker), and each checked-out client's `query` is
 * passed through the wrappers (statement preparation, tracing).
 */
function interceptedPool(pool: pg.Pool, wrappers: QueryWrapper[]): pg.Pool {
  return new Proxy(pool, {
    get(target, property, receiver) {
      if (property === 'connect') {
        return async () => {
          let client: pg.PoolClient;
          try {
            client = await target.connect();
          } catch (error) {
            markConnectFailure(error);
            throw error;
          }
          if (wrappers.length === 0) return client;
          const original = client.query.bind(client) as QueryFunction;
          const query = wrappers.reduce((wrapped, wrapper) => wrapper(wrapped), original);
          return new Proxy(client, {
            get(clientTarget, clientProperty, clientReceiver) {
              if (clientProperty === 'query') return query;
              return Reflect.get(clientTarget, clientProperty, clientReceiver);
            },
          });
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Sends repeated parameterised statements as named prepared statements, so
 * Postgres parses and plans each once per connection instead of on every
 * execution (in the POST /user benchmark, parse and plan were a large share of
 * Postgres's CPU). Kysely generates the same text for the same query shape;
 * shapes that vary (e.g. IN lists of different lengths) could grow the set
 * without bound, so only the first `maxStatements` distinct texts are named.
 */
function preparingStatements(maxStatements: number): QueryWrapper {
  const names = new Map<string, string>();
  return (query) => (text, values) => {
    if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0) return query(text, values);
    let name = names.get(text);
    if (name === undefined) {
      if (names.size >= maxStatements) return query(text, values);
      name = `keel_${names.size.toString(36)}`;
      names.set(text, name);
    }
    return query({ name, text, values });
  };
}

/**
 * Runs each query in a client span (`db.system=postgresql`) under the active
 * request span. Parameters are never recorded: they carry personal data.
 */
function tracingQueries(): QueryWrapper {
  const tracer = getTracer();
  return (query) => async (text, values) => {
    const statement = typeof text === 'string' ? text : ((text as { text?: string }).text ?? '');
    const operation = statement.trimStart().split(/\s+/, 1)[0]?.toUpperCase() ?? 'QUERY';
    return tracer.startActiveSpan(
      `${operation} postgresql`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'db.system': 'postgresql', 'db.query.text': statement.slice(0, 2000) },
      },
      async (span) => {
        try {
          return await query(text, values);
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: sqlState(error) ?? 'error' });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  };
}
