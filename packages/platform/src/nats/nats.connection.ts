import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { Logger } from '../observability/index.ts';
import { invalidNatsSettings, natsUnavailable } from './jetstream.errors.ts';

export type NatsConnectionSettings = {
  /**
   * `nats://[user:password@]host[:port]` (or `tls://`), one URL or several
   * (an array, or one string separated by commas: `NATS_URL`). Credentials
   * in the URL are used to authenticate (user and password, or a token as
   * the user part) and never logged.
   */
  servers: string | readonly string[];
  /** Shown by the server (`nats server report connections`) and in our logs; `[a-z0-9_-]`. */
  name: string;
  logger: Logger;
  /** First connection attempt (default 2 s). A server down at start fails `connectNats`. */
  connectTimeoutMs?: number;
  /** JetStream API calls and publish acknowledgements (default 5 s). */
  requestTimeoutMs?: number;
  /** Wait between reconnect attempts to one server (default 2 s); reconnects never give up. */
  reconnectTimeWaitMs?: number;
  /** How long `close` lets the drain take before closing hard (default 5 s). */
  closeTimeoutMs?: number;
};

/** A NATS connection with its JetStream handles and Keel's logging. */
export type NatsClient = {
  /** The nats.js connection, for core NATS (request/reply, plain subscriptions). */
  connection: NatsConnection;
  jetstream: JetStreamClient;
  /** The JetStream manager (streams, consumers); created on first use. */
  manager(): Promise<JetStreamManager>;
  /** `host:port` of each configured server, without credentials: safe to log. */
  servers: readonly string[];
  /** Version of the server currently connected to (`2.10.22`). */
  serverVersion(): string | undefined;
  /** Drains (subscriptions finish their messages, publishes are flushed), then closes. */
  close(): Promise<void>;
};

const CLIENT_NAME = /^[a-z0-9_-]{1,64}$/;
const DEFAULT_PORT = 4222;

/**
 * Connects to NATS with JetStream. Fails fast (`nats.unavailable`) when no
 * server answers within `connectTimeoutMs`; once connected it reconnects
 * forever, logging each disconnect, reconnect and server error with the
 * server's `host:port` only, never the URL (it may carry a password).
 *
 * @example
 * const nats = await connectNats({ servers: config.NATS_URL, name: 'keel', logger });
 * const relay = createJetStreamRelay({ connection: nats, logger });
 * // on shutdown, after the event bus stopped:
 * await nats.close();
 */
export async function connectNats(settings: NatsConnectionSettings): Promise<NatsClient> {
  if (!CLIENT_NAME.test(settings.name)) {
    throw invalidNatsSettings(`NATS client name must match ${CLIENT_NAME.source}`);
  }
  const endpoints = parseServers(settings.servers);
  const logger = settings.logger.child({ nats: { name: settings.name, servers: endpoints.servers } });
  const options: NodeConnectionOptions = {
    servers: endpoints.servers,
    name: settings.name,
    timeout: settings.connectTimeoutMs ?? 2000,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: settings.reconnectTimeWaitMs ?? 2000,
    ...endpoints.auth,
    ...(endpoints.isTls ? { tls: {} } : {}),
  };
  let connection: NatsConnection;
  try {
    connection = await connect(options);
  } catch (error) {
    // The library's message names the server, never the credentials; keep only it.
    logger.error({ err: describeNatsError(error) }, 'nats connection failed');
    throw natsUnavailable('connect', error);
  }
  logger.info({ serverVersion: connection.info?.version }, 'nats connected');
  const statusLoop = logStatusChanges(connection, logger).catch((error: unknown) => {
    logger.warn({ err: describeNatsError(error) }, 'nats status logging stopped');
  });
  const requestTimeoutMs = settings.requestTimeoutMs ?? 5000;
  let manager: Promise<JetStreamManager> | undefined;
  return {
    connection,
    jetstream: jetstream(connection, { timeout: requestTimeoutMs }),
    manager() {
      manager ??= jetstreamManager(connection, { timeout: requestTimeoutMs }).catch((error: unknown) => {
        manager = undefined;
        throw error;
      });
      return manager;
    },
    servers: endpoints.servers,
    serverVersion: () => connection.info?.version,
    async close() {
      if (!connection.isClosed()) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timed_out'>((resolve) => {
          timer = setTimeout(() => resolve('timed_out'), settings.closeTimeoutMs ?? 5000);
        });
        try {
          // A drain waits for a server that is away; past the timeout we close hard.
          const outcome = await Promise.race([connection.drain(), timeout]);
          if (outcome === 'timed_out') await connection.close();
        } catch {
          // Already draining or closed: close() is idempotent.
          await connection.close();
        } finally {
          clearTimeout(timer);
        }
      }
      await statusLoop;
    },
  };
}

/** One log line per connection event; the loop ends when the connection closes. */
async function logStatusChanges(connection: NatsConnection, logger: Logger): Promise<void> {
  const closed = connection.closed().then((error) => {
    // Only set when the client gave up on its own (authorization revoked, …).
    if (error) logger.error({ err: describeNatsError(error) }, 'nats connection closed by an error');
  });
  for await (const status of connection.status()) {
    switch (status.type) {
      case 'disconnect':
        logger.warn({ server: status.server }, 'nats disconnected; reconnecting');
        break;
      case 'reconnect':
        logger.info({ server: status.server }, 'nats reconnected');
        break;
      case 'error':
        logger.error({ err: describeNatsError(status.error) }, 'nats server reported an error');
        break;
      case 'ldm':
        logger.warn({ server: status.server }, 'nats server entering lame duck mode');
        break;
      case 'staleConnection':
      case 'slowConsumer':
        logger.warn({ status: status.type }, 'nats connection degraded');
        break;
      case 'reconnecting':
      case 'ping':
      case 'update':
      case 'forceReconnect':
      case 'close':
        // Every reconnect attempt, every ping, cluster membership: too chatty for info.
        logger.debug({ status: status.type }, 'nats status');
        break;
      default:
        // Not assertNever: the union is the library's, and a status added by
        // an upgrade must not break the logging loop at run time.
        logger.debug({ status: (status as { type: string }).type }, 'nats status');
    }
  }
  await closed;
}

type ParsedServers = {
  servers: string[];
  auth: { user?: string; pass?: string; token?: string };
  isTls: boolean;
};

/** Splits `NATS_URL` into `host:port` list and credentials; errors never echo the URL. */
export function parseServers(input: string | readonly string[]): ParsedServers {
  const entries = (typeof input === 'string' ? input.split(',') : [...input])
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw invalidNatsSettings('NATS_URL lists no server');
  const servers: string[] = [];
  let credentials: string | undefined;
  let auth: ParsedServers['auth'] = {};
  let isTls = false;
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw invalidNatsSettings('NATS_URL is not a valid URL');
    }
    if (url.protocol !== 'nats:' && url.protocol !== 'tls:') {
      throw invalidNatsSettings('NATS_URL must start with nats:// or tls://');
    }
    if (url.hostname === '') throw invalidNatsSettings('NATS_URL names no host');
    isTls ||= url.protocol === 'tls:';
    servers.push(`${url.hostname}:${url.port === '' ? DEFAULT_PORT : url.port}`);
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    const entryCredentials = `${user}\u0000${pass}`;
    if (credentials !== undefined && credentials !== entryCredentials && user !== '') {
      throw invalidNatsSettings('NATS_URL lists servers with different credentials');
    }
    if (user === '') continue;
    credentials = entryCredentials;
    auth = pass === '' ? { token: user } : { user, pass };
  }
  return { servers, auth, isTls };
}

function describeNatsError(error: unknown): { name: string; message: string } {
  if (!(error instanceof Error)) return { name: 'non-error', message: String(error) };
  return { name: error.name, message: error.message };
}
