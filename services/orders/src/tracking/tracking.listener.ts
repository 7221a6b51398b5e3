import type { Logger } from '@keel/platform/observability';
import pg from 'pg';

export type FeedListener = { close(): Promise<void> };

export type FeedListenerHandlers = {
  /** A notification's payload (`<outletId>:<position>`). */
  onNotification(payload: string): void;
  /**
   * Called after every (re)connect: notifications sent while disconnected
   * are gone, so the caller must look for what it missed.
   */
  onConnected(): void;
};

export type ListenForFeed = (handlers: FeedListenerHandlers) => Promise<FeedListener>;

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

/**
 * LISTENs on `channel` over one dedicated connection per process, however
 * many streams it serves. Modelled on the platform's outbox listener (which
 * is internal and hands no payload on): a pooled connection would count as
 * busy forever, and a lost one is reopened with backoff. Resolves once the
 * first LISTEN is in place, or once the first attempt failed (logged and
 * retried; the hub's safety poll covers the gap).
 */
export async function listenForFeedNotifications(
  options: { connection: pg.ClientConfig; channel: string; logger: Logger },
  handlers: FeedListenerHandlers,
): Promise<FeedListener> {
  const { channel, logger } = options;
  let client: pg.Client | undefined;
  let isClosed = false;
  let failures = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const candidate = new pg.Client({ ...options.connection, application_name: 'keel-orders-tracking' });
    candidate.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) {
        handlers.onNotification(message.payload);
      }
    });
    // Without a listener, an error on an idle connection would crash the process.
    candidate.on('error', (error) => {
      logger.warn({ err: { message: error.message } }, 'tracking listener connection failed');
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
    candidate.on('end', () => {
      if (client === candidate) client = undefined;
      scheduleReconnect();
    });
    client = candidate;
    failures = 0;
    handlers.onConnected();
  }

  function scheduleReconnect(): void {
    if (isClosed || reconnectTimer !== undefined) return;
    failures += 1;
    const delayMs = Math.min(RECONNECT_MIN_MS * 2 ** (failures - 1), RECONNECT_MAX_MS);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect().catch((error: unknown) => {
        logger.warn({ err: { message: (error as Error).message } }, 'tracking listener reconnect failed');
        scheduleReconnect();
      });
    }, delayMs);
    reconnectTimer.unref();
  }

  await connect().catch((error: unknown) => {
    logger.warn({ err: { message: (error as Error).message } }, 'tracking listener could not connect');
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
