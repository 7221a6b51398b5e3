import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../observability/logger.ts';

/**
 * Wake-ups sent after a transaction has committed, instead of a `NOTIFY`
 * inside it.
 *
 * Why: Postgres serialises the commits of notifying transactions on one
 * database-wide lock, taken at commit and held through the commit's WAL
 * flush. A transaction that notifies therefore queues behind every other
 * notifying commit's fsync while it still holds its own row locks, and the
 * writers waiting for those rows queue behind it (measured: 32 clients commit
 * 13,500 single-insert transactions/s, 4,000/s with `pg_notify`; under the
 * orders benchmark, commits waiting on that lock were the largest wait).
 *
 * A signal is delivered to this process's subscribers at once, without
 * Postgres, and to other processes by a `NOTIFY` in a transaction of its own
 * that commits asynchronously, so it holds the lock for microseconds and no
 * business transaction waits for it. Signals raised while one is being sent
 * are folded into the next, so a process sends at most one notification
 * transaction at a time however fast it commits. The payload is this
 * process's `origin`, so a process's own listener can skip what it already
 * delivered in memory. Notifications are not durable anyway (lost while a
 * listener is disconnected): receivers must also poll, and a failed send is
 * only logged.
 *
 * @example
 * const signals = createCommitSignals({ pool, logger });
 * const unsubscribe = signals.subscribe('keel_events', () => dispatcher.wake());
 * signals.send('keel_events'); // after a commit that wrote events
 */
export type CommitSignals = {
  /** Identifies this process's notifications (their payload). */
  readonly origin: string;
  /** Calls this process's subscribers of `channel` now and notifies other processes soon. */
  send(channel: string): void;
  /** Calls `listener` on every `send(channel)` of this process; returns the unsubscribe. */
  subscribe(channel: string, listener: () => void): () => void;
  /** Stops sending; resolves once a notification under way has been sent. */
  close(): Promise<void>;
};

// Channels are spliced into the NOTIFY statement (identifiers cannot be
// parameters), so only plain lower-case identifiers are accepted.
const CHANNEL_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export function createCommitSignals(options: {
  pool: Pick<pg.Pool, 'query'>;
  logger: Logger;
  /** Defaults to a random UUID. */
  origin?: string;
}): CommitSignals {
  const { pool, logger } = options;
  const origin = options.origin ?? randomUUID();
  const subscribers = new Map<string, Set<() => void>>();
  const unsent = new Set<string>();
  let sending: Promise<void> | undefined;
  let isClosed = false;
  let hasFailed = false;

  function assertChannel(channel: string): void {
    if (!CHANNEL_PATTERN.test(channel)) throw new Error(`commit signals: invalid channel ${channel}`);
  }

  async function sendUnsent(): Promise<void> {
    while (unsent.size > 0 && !isClosed) {
      const channels = [...unsent];
      unsent.clear();
      const notifications = channels.map((channel) => `notify ${channel}, '${origin}'`).join('; ');
      try {
        // One round trip (simple protocol, several statements). Asynchronous
        // commit: the notify lock is released without waiting for a WAL flush;
        // losing a notification in a crash costs a poll interval, nothing more.
        await pool.query(`begin; set local synchronous_commit = off; ${notifications}; commit`);
        if (hasFailed) logger.info('commit notifications are sent again');
        hasFailed = false;
      } catch (error) {
        // Logged once per outage: receivers poll, so a lost notification only delays them.
        if (!hasFailed) {
          logger.warn(
            { err: { message: (error as Error).message } },
            'commit notification failed; other processes will find the work by polling',
          );
        }
        hasFailed = true;
      }
    }
  }

  function startSending(): void {
    if (sending !== undefined || isClosed) return;
    sending = sendUnsent().finally(() => {
      sending = undefined;
      // A signal raised after the loop's last check, before this ran.
      if (unsent.size > 0) startSending();
    });
  }

  return {
    origin,
    send(channel) {
      assertChannel(channel);
      for (const listener of subscribers.get(channel) ?? []) {
        try {
          listener();
        } catch (error) {
          // A subscriber's failure must not reach the committed caller.
          logger.error(
            { err: { message: (error as Error).message }, channel },
            'commit signal subscriber failed',
          );
        }
      }
      if (isClosed) return;
      unsent.add(channel);
      startSending();
    },
    subscribe(channel, listener) {
      assertChannel(channel);
      let listeners = subscribers.get(channel);
      if (listeners === undefined) {
        listeners = new Set();
        subscribers.set(channel, listeners);
      }
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    async close() {
      isClosed = true;
      await sending;
    },
  };
}
