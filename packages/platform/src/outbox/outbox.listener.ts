import pg from 'pg';
import type { Logger } from '../observability/logger.ts';

export type NotificationListener = { close(): Promise<void> };

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

/**
 * Listens on `channel` over a dedicated connection (a pooled one would count
 * as busy forever and stop `database.drain` from ever seeing the pool quiet)
 * and calls `onNotification` with each notification's payload. A lost
 * connection is reopened with backoff, and `onConnected` (default: an
 * `onNotification('')`) is called after every (re)connect because
 * notifications sent while disconnected are gone: the caller must look for
 * work then. Resolves once the first LISTEN is in place (so a caller that
 * awaits it cannot miss a notification sent afterwards), or once the first
 * attempt failed, which is logged and retried: polling covers the gap.
 *
 * @example
 * const listener = await listenForNotifications({
 *   connection: { connectionString }, channel: 'orders_tracking', logger,
 *   onNotification: (payload) => hub.wake(payload), onConnected: () => hub.catchUp(),
 * });
 */
export async function listenForNotifications(options: {
  connection: pg.ClientConfig;
  channel: string;
  logger: Logger;
  onNotification: (payload: string) => void;
  onConnected?: () => void;
  /** Shown in `pg_stat_activity`. */
  applicationName?: string;
}): Promise<NotificationListener> {
  const { channel, logger, onNotification } = options;
  const onConnected = options.onConnected ?? (() => onNotification(''));
  let client: pg.Client | undefined;
  let isClosed = false;
  let failures = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const candidate = new pg.Client({
      ...options.connection,
      application_name: options.applicationName ?? 'keel-event-listener',
    });
    candidate.on('notification', (message) => {
      if (message.channel === channel) onNotification(message.payload ?? '');
    });
    // Without a listener, an error on an idle connection would crash the process.
    candidate.on('error', (error) => {
      logger.warn({ err: { message: error.message }, channel }, 'listener connection failed');
    });
    try {
      await candidate.connect();
      // The channel is a constant of ours, never input; identifiers cannot be parameters.
      await candidate.query(`listen ${channel}`);
    } catch (error) {
      await candidate.end().catch(() => undefined);
      throw error;
    }
    if (isClosed) {
      await candidate.end().catch(() => undefined);
      return;
    }
    // Only now: a connection that never listened is not one to reopen.
    candidate.on('end', () => {
      if (client === candidate) client = undefined;
      scheduleReconnect();
    });
    client = candidate;
    failures = 0;
    onConnected();
  }

  function scheduleReconnect(): void {
    if (isClosed || reconnectTimer !== undefined) return;
    failures += 1;
    const delayMs = Math.min(RECONNECT_MIN_MS * 2 ** (failures - 1), RECONNECT_MAX_MS);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect().catch((error: unknown) => {
        logger.warn({ err: { message: (error as Error).message }, channel }, 'listener reconnect failed');
        scheduleReconnect();
      });
    }, delayMs);
    reconnectTimer.unref();
  }

  await connect().catch((error: unknown) => {
    // Not fatal: dispatchers still poll, and the listener keeps trying.
    logger.warn({ err: { message: (error as Error).message }, channel }, 'listener could not connect');
    scheduleReconnect();
  });
  return {
    async close() {
      isClosed = true;
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
      const open = client;
      client = undefined;
      await open?.end().catch(() => undefined);
    },
  };
}
