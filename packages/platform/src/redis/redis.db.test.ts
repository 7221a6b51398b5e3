import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../observability/index.ts';
import { captureLogs } from '../testing/test-app.ts';
import { closeRedisClient, createRedisClient, type RedisClient, waitForRedisReady } from './redis.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Port 1 refuses connections at once: a Redis that is down, deterministically.
const DEAD_REDIS_URL = 'redis://keel:hunter2-secret@127.0.0.1:1';

const openClients: RedisClient[] = [];

afterEach(async () => {
  await Promise.all(openClients.splice(0).map((client) => closeRedisClient(client)));
});

function openClient(url = REDIS_URL) {
  const { stream, logs } = captureLogs();
  const client = createRedisClient({
    url,
    logger: createLogger({ level: 'debug', destination: stream }),
    name: 'keel-test',
  });
  openClients.push(client);
  return { client, logs };
}

function uniquePrefix(): string {
  return `keel-test:redis:${randomUUID()}:`;
}

/** Resolves on the client's next `error` event (the first failed connection attempt). */
function nextError(client: RedisClient): Promise<void> {
  return new Promise((resolve) => client.once('error', () => resolve()));
}

describe('createRedisClient', () => {
  it('reads back what it writes once ready', async () => {
    const { client } = openClient();
    await waitForRedisReady(client, { timeoutMs: 5000 });
    const key = `${uniquePrefix()}greeting`;
    await client.set(key, 'hello', 'PX', 60_000);
    expect(await client.get(key)).toBe('hello');
    await client.del(key);
  });

  it('names the connection so operators can find it in CLIENT LIST', async () => {
    const { client } = openClient();
    await waitForRedisReady(client, { timeoutMs: 5000 });
    expect(await client.client('GETNAME')).toBe('keel-test');
  });

  it('rejects commands at once instead of queueing them when Redis is down', async () => {
    const { client } = openClient(DEAD_REDIS_URL);
    await nextError(client);
    await expect(client.get('anything')).rejects.toThrow(/enableOfflineQueue/);
  });

  it('logs a failed connection with host and port but never the password', async () => {
    const { client, logs } = openClient(DEAD_REDIS_URL);
    await nextError(client);
    const failure = logs.lines().find((line) => line.msg === 'redis connection failed; retrying');
    expect(failure).toMatchObject({
      level: 'error',
      redis: { name: 'keel-test', host: '127.0.0.1', port: 1 },
      err: { code: 'ECONNREFUSED' },
    });
    expect(logs.text()).not.toContain('hunter2-secret');
  });

  it('refuses a client name Redis would reject', () => {
    const { stream } = captureLogs();
    const logger = createLogger({ level: 'info', destination: stream });
    expect(() => createRedisClient({ url: REDIS_URL, logger, name: 'has spaces' })).toThrow(
      /name must match/,
    );
  });

  it('refuses a malformed URL without echoing it', () => {
    const { stream } = captureLogs();
    const logger = createLogger({ level: 'info', destination: stream });
    const attempt = () => createRedisClient({ url: 'not a url hunter2-secret', logger, name: 'keel-test' });
    expect(attempt).toThrow('REDIS_URL is not a valid URL');
  });
});

describe('waitForRedisReady', () => {
  it('rejects after the timeout when Redis never becomes ready', async () => {
    const { client } = openClient(DEAD_REDIS_URL);
    await expect(waitForRedisReady(client, { timeoutMs: 50 })).rejects.toThrow(/not ready within 50 ms/);
  });
});

describe('closeRedisClient', () => {
  it('quits a connected client', async () => {
    const { client } = openClient();
    await waitForRedisReady(client, { timeoutMs: 5000 });
    await closeRedisClient(client);
    expect(client.status).toBe('end');
  });

  it('disconnects a client whose connection attempt is failing', async () => {
    const { client } = openClient(DEAD_REDIS_URL);
    await nextError(client);
    await closeRedisClient(client);
    expect(client.status).toBe('end');
  });

  it('cancels the pending reconnect of a client waiting between attempts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { client } = openClient(DEAD_REDIS_URL);
      await new Promise<void>((resolve) => client.once('reconnecting', () => resolve()));
      await closeRedisClient(client);
      // Run every timer the client could have left behind: none may reconnect.
      vi.advanceTimersByTime(60_000);
      expect(client.status).toBe('reconnecting');
      await expect(client.get('anything')).rejects.toThrow(/enableOfflineQueue/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does nothing for a client that is already closed', async () => {
    const { client } = openClient();
    await waitForRedisReady(client, { timeoutMs: 5000 });
    await closeRedisClient(client);
    await expect(closeRedisClient(client)).resolves.toBeUndefined();
  });
});
