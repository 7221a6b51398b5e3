import { Redis } from 'ioredis';
import type { Logger } from '../observability/index.ts';

/** The shared Redis connection type (ioredis). */
export type RedisClient = Redis;

export type RedisClientOptions = {
  /** `redis://` or `rediss://` (TLS) URL; may carry a username and password. */
  url: string;
  logger: Logger;
  /** Labels log lines and the server-side `CLIENT SETNAME`; `[a-z0-9_-]`. */
  name: string;
};

// Every caller (rate limiter, session cache) has a fallback when Redis fails,
// so a dead or hung Redis must fail a command in about a second, not queue it.
const CONNECT_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 1000;
const MAX_RETRIES_PER_REQUEST = 2;
const RECONNECT_BASE_DELAY_MS = 50;
const RECONNECT_MAX_DELAY_MS = 5000;
const QUIT_TIMEOUT_MS = 1000;
const CLIENT_NAME = /^[a-z0-9_-]{1,64}$/;

/**
 * Opens an ioredis client for `REDIS_URL`, tuned to fail fast: commands sent
 * while disconnected are rejected at once (no offline queue), a command
 * without a reply after a second times out, and the client keeps
 * reconnecting with capped exponential backoff. Connection errors are logged
 * (host and port only, never the URL or its password) instead of surfacing
 * as unhandled `error` events. Commands fail until the first connection is
 * ready; `waitForRedisReady` waits for it.
 *
 * @example
 * const redis = createRedisClient({ url: config.REDIS_URL, logger, name: 'keel-api' });
 * await waitForRedisReady(redis);
 * await redis.set('key', 'value', 'PX', 5000);
 * await closeRedisClient(redis);
 */
export function createRedisClient(options: RedisClientOptions): RedisClient {
  if (!CLIENT_NAME.test(options.name)) {
    throw new Error(`Redis client name must match ${CLIENT_NAME.source}`);
  }
  const endpoint = describeEndpoint(options.url);
  const logger = options.logger.child({ redis: { name: options.name, ...endpoint } });
  const client = new Redis(options.url, {
    connectionName: options.name,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    enableOfflineQueue: false,
    // Commands issued in the same event-loop tick go out in one write: under
    // load (a rate-limit check or cache read per request) that replaces one
    // socket write per command with one per tick.
    enableAutoPipelining: true,
    // Never give up: an outage ends, and every caller falls back meanwhile.
    retryStrategy: (attempt) => Math.min(RECONNECT_BASE_DELAY_MS * 2 ** attempt, RECONNECT_MAX_DELAY_MS),
  });

  // One error line per outage, not one per reconnect attempt; `ready` ends it.
  let isFailing = false;
  client.on('error', (error: Error & { code?: string }) => {
    // Only message and code: ioredis errors can carry the failed command with
    // its arguments (AUTH's is the password).
    const err = { message: error.message, code: error.code };
    if (isFailing) {
      logger.debug({ err }, 'redis connection still failing');
      return;
    }
    isFailing = true;
    logger.error({ err }, 'redis connection failed; retrying');
  });
  client.on('ready', () => {
    if (isFailing) logger.info('redis connection restored');
    isFailing = false;
  });
  return client;
}

/**
 * Resolves once the client is connected and ready, rejects after `timeoutMs`.
 * Startup code and tests call it because commands fail while disconnected.
 *
 * @example
 * await waitForRedisReady(redis, { timeoutMs: 5000 });
 */
export function waitForRedisReady(client: RedisClient, options: { timeoutMs: number }): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis was not ready within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    client.once('ready', onReady);
  });
}

/**
 * Closes the client: `QUIT` (pending replies arrive first), or a hard
 * disconnect when Redis is unreachable or does not answer within a second.
 *
 * @example
 * app.addHook('onClose', () => closeRedisClient(redis));
 */
export async function closeRedisClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timed_out'>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), QUIT_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([client.quit(), timeout]);
    if (outcome === 'timed_out') client.disconnect();
  } catch {
    // Without an offline queue, QUIT is refused while disconnected.
    client.disconnect();
  }
  // Between reconnect attempts there is no socket to close: disconnect() only
  // cancelled the next attempt, and ioredis never emits `end`.
  if (client.status === 'reconnecting') {
    clearTimeout(timer);
    return;
  }
  // QUIT's reply arrives before the socket closes; callers expect a closed client.
  await Promise.race([ended, timeout]);
  clearTimeout(timer);
}

function describeEndpoint(url: string): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The message must not echo the URL: it may hold a password.
    throw new Error('REDIS_URL is not a valid URL');
  }
  return { host: parsed.hostname, port: parsed.port === '' ? 6379 : Number(parsed.port) };
}
