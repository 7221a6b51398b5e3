import type { Logger } from '@keel/platform/observability';
import { trackingClosing, trackingStreamsFull } from './tracking.errors.ts';
import type { FeedListener, ListenForFeed } from './tracking.listener.ts';
import { findFeedEntriesAfter, findFeedPositions, type TrackingDatabase } from './tracking.repository.ts';
import {
  isEntryFor,
  parseFeedNotification,
  type SseMessage,
  type StreamStart,
  toSseMessage,
} from './tracking.ts';

/** Where one stream's messages go: the HTTP layer's Server-Sent Events response. */
export type EventSink = {
  write(messages: readonly SseMessage[]): void;
  /** Ends the response cleanly (shutdown). */
  end(): void;
  /** Cuts the connection: for a client that stopped reading. */
  destroy(): void;
  /** Settles once the connection is gone, whoever ended it. */
  closed: Promise<void>;
};

/** A place for one stream, taken before the caller's access checks so the cap is never overshot. */
export type StreamSlot = {
  /** Writes `start.initialMessages`, then follows the feed after `start.position` until the sink closes. */
  attach(start: StreamStart, sink: EventSink): void;
  /** Gives the place back when the stream never opened (refused, failed). */
  release(): void;
};

export type TrackingHub = {
  /** Throws 503 `orders.tracking_streams_full` at the cap, `orders.tracking_closing` during shutdown. */
  reserve(): StreamSlot;
  streamCount(): number;
  /** Ends every stream (cutting those that do not finish within the grace), stops listening. */
  close(): Promise<void>;
};

export type TrackingHubOptions = {
  db: TrackingDatabase;
  logger: Logger;
  listen: ListenForFeed;
  maxStreams: number;
  /** Safety net for a lost notification or a failed read: compare positions this often. */
  pollIntervalMs: number;
  fetchBatchSize: number;
  /** How long shutdown waits for ended streams to flush before cutting them. */
  closeGraceMs: number;
};

type Watcher = {
  outletId: string;
  orderId: string | undefined;
  /** The feed position this stream has been brought up to (read, whether or not it was for its order). */
  position: number;
  sink: EventSink;
};

type OutletFeed = { watchers: Set<Watcher>; isFetching: boolean; isFetchPending: boolean };

/**
 * The process's fan-out: one LISTEN connection, however many streams. The
 * feed lives in Postgres, so every process serves every event whichever
 * process's subscription appended it: a notification (or the poll) says an
 * outlet moved, one read per outlet fetches what its slowest stream has not
 * seen, and each stream gets the entries after its own position. No stream
 * holds a database connection while it waits.
 *
 * Gap-free because positions commit in order (see `appendFeedEntry`): a read
 * of `position > N` returns a contiguous run, never one with a hole that a
 * late commit would fill after the stream moved past it.
 */
export function createTrackingHub(options: TrackingHubOptions): TrackingHub {
  const { db, logger } = options;
  const outlets = new Map<string, OutletFeed>();
  const fetches = new Set<Promise<void>>();
  let streams = 0;
  let isClosed = false;
  let listening: Promise<FeedListener | undefined> | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  // Started with the first stream: a process that serves none holds no connection for it.
  function ensureListening(): void {
    if (listening !== undefined) return;
    listening = options
      .listen({
        onNotification(payload) {
          const notice = parseFeedNotification(payload);
          if (notice === undefined) return;
          const feed = outlets.get(notice.outletId);
          if (feed === undefined) return;
          if (lowestPosition(feed) < notice.position) requestFetch(notice.outletId);
        },
        onConnected() {
          for (const outletId of outlets.keys()) requestFetch(outletId);
        },
      })
      .catch((error: unknown) => {
        logger.warn({ err: { message: (error as Error).message } }, 'tracking listener failed to start');
        return undefined;
      });
    pollTimer = setInterval(poll, options.pollIntervalMs);
    pollTimer.unref();
  }

  async function poll(): Promise<void> {
    if (outlets.size === 0 || isClosed) return;
    try {
      const positions = await db.run((kysely) => findFeedPositions(kysely, [...outlets.keys()]));
      for (const [outletId, position] of positions) {
        const feed = outlets.get(outletId);
        if (feed !== undefined && lowestPosition(feed) < position) requestFetch(outletId);
      }
    } catch (error) {
      logger.warn({ err: { message: (error as Error).message } }, 'tracking poll failed');
    }
  }

  function requestFetch(outletId: string): void {
    const feed = outlets.get(outletId);
    if (feed === undefined || isClosed) return;
    feed.isFetchPending = true;
    if (feed.isFetching) return;
    feed.isFetching = true;
    const fetch = fetchUntilCurrent(outletId, feed).finally(() => {
      feed.isFetching = false;
      fetches.delete(fetch);
    });
    fetches.add(fetch);
  }

  // One loop per outlet at a time, so a stream's messages never interleave.
  async function fetchUntilCurrent(outletId: string, feed: OutletFeed): Promise<void> {
    try {
      while (feed.isFetchPending && feed.watchers.size > 0 && !isClosed) {
        feed.isFetchPending = false;
        const after = lowestPosition(feed);
        const entries = await db.run((kysely) =>
          findFeedEntriesAfter(kysely, { outletId, after, limit: options.fetchBatchSize }),
        );
        const last = entries.at(-1);
        if (last === undefined) continue;
        for (const watcher of feed.watchers) {
          const messages = entries
            .filter((entry) => entry.position > watcher.position && isEntryFor(entry, watcher.orderId))
            .map(toSseMessage);
          watcher.position = Math.max(watcher.position, last.position);
          if (messages.length > 0) watcher.sink.write(messages);
        }
        if (entries.length === options.fetchBatchSize) feed.isFetchPending = true;
      }
    } catch (error) {
      // The next notification or poll tries again from the same positions.
      logger.warn({ err: { message: (error as Error).message }, outletId }, 'tracking feed read failed');
    }
  }

  function lowestPosition(feed: OutletFeed): number {
    let lowest = Number.POSITIVE_INFINITY;
    for (const watcher of feed.watchers) lowest = Math.min(lowest, watcher.position);
    return lowest;
  }

  function attach(start: StreamStart, sink: EventSink): void {
    if (start.initialMessages.length > 0) sink.write(start.initialMessages);
    const watcher: Watcher = {
      outletId: start.outletId,
      orderId: start.orderId,
      position: start.position,
      sink,
    };
    let feed = outlets.get(start.outletId);
    if (feed === undefined) {
      feed = { watchers: new Set(), isFetching: false, isFetchPending: false };
      outlets.set(start.outletId, feed);
    }
    feed.watchers.add(watcher);
    void sink.closed.then(() => {
      streams -= 1;
      const current = outlets.get(start.outletId);
      current?.watchers.delete(watcher);
      if (current?.watchers.size === 0) outlets.delete(start.outletId);
    });
    ensureListening();
    // Catches up from the start position, and closes the window between the
    // caller's snapshot read and joining the fan-out.
    requestFetch(start.outletId);
  }

  return {
    reserve() {
      if (isClosed) throw trackingClosing();
      if (streams >= options.maxStreams) throw trackingStreamsFull(5);
      streams += 1;
      let isSettled = false;
      return {
        attach(start, sink) {
          if (isSettled) return;
          isSettled = true;
          // Shutdown began while the caller checked access: end at once, the client reconnects elsewhere.
          if (isClosed) {
            streams -= 1;
            sink.end();
            return;
          }
          attach(start, sink);
        },
        release() {
          if (isSettled) return;
          isSettled = true;
          streams -= 1;
        },
      };
    },
    streamCount: () => streams,
    async close() {
      isClosed = true;
      if (pollTimer !== undefined) clearInterval(pollTimer);
      const sinks = [...outlets.values()].flatMap((feed) =>
        [...feed.watchers].map((watcher) => watcher.sink),
      );
      for (const sink of sinks) sink.end();
      let graceTimer: NodeJS.Timeout | undefined;
      const isGraceOver = new Promise<'timeout'>((resolve) => {
        graceTimer = setTimeout(() => resolve('timeout'), options.closeGraceMs);
      });
      const open = new Set(sinks);
      const allClosed = Promise.all(sinks.map((sink) => sink.closed.then(() => open.delete(sink))));
      if ((await Promise.race([allClosed, isGraceOver])) === 'timeout') {
        for (const sink of open) sink.destroy();
        await allClosed;
      }
      clearTimeout(graceTimer);
      await Promise.all(fetches);
      await (await listening)?.close();
    },
  };
}
