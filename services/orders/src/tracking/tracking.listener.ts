import type { Logger } from '@keel/platform/observability';
import { listenForNotifications } from '@keel/platform/outbox';
import type pg from 'pg';

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

/**
 * LISTENs on `channel` over one dedicated connection per process, however
 * many streams it serves (the platform's listener: reconnects with backoff,
 * calls `onConnected` after each so the hub looks for what it missed).
 */
export function listenForFeedNotifications(
  options: { connection: pg.ClientConfig; channel: string; logger: Logger },
  handlers: FeedListenerHandlers,
): Promise<FeedListener> {
  return listenForNotifications({
    ...options,
    applicationName: 'keel-orders-tracking',
    onNotification: (payload) => {
      if (payload !== '') handlers.onNotification(payload);
    },
    onConnected: () => handlers.onConnected(),
  });
}
