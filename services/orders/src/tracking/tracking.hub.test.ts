import { randomUUID } from 'node:crypto';
import { isAppError } from '@keel/platform/errors';
import { createLogger } from '@keel/platform/observability';
import { describe, expect, it } from 'vitest';
import { createTrackingHub, type EventSink } from './tracking.hub.ts';
import type { TrackingDatabase } from './tracking.repository.ts';
import type { SseMessage } from './tracking.ts';

// The hub's bookkeeping: the per-process cap and shutdown. Fan-out itself is
// exercised end to end, on Postgres and real sockets, in
// test/tracking.http.test.ts.

// An empty feed: every read finds nothing new.
const emptyFeed = { run: async () => [], transaction: async () => [] } as unknown as TrackingDatabase;
const logger = createLogger({ level: 'silent' });

function buildHub(overrides: { maxStreams?: number; closeGraceMs?: number } = {}) {
  const listening = { isClosed: false };
  const hub = createTrackingHub({
    db: emptyFeed,
    logger,
    listen: async () => ({
      close: async () => {
        listening.isClosed = true;
      },
    }),
    maxStreams: overrides.maxStreams ?? 2,
    pollIntervalMs: 60_000,
    fetchBatchSize: 100,
    closeGraceMs: overrides.closeGraceMs ?? 1_000,
  });
  return { hub, listening };
}

type FakeSink = EventSink & { written: SseMessage[]; isEnded: boolean; isDestroyed: boolean };

/** A sink whose connection closes when ended, unless `isStuck` (a client that stopped reading). */
function fakeSink(options: { isStuck?: boolean } = {}): FakeSink {
  let close: () => void = () => undefined;
  const sink: FakeSink = {
    written: [],
    isEnded: false,
    isDestroyed: false,
    closed: new Promise<void>((resolve) => {
      close = resolve;
    }),
    write(messages) {
      sink.written.push(...messages);
    },
    end() {
      sink.isEnded = true;
      if (!options.isStuck) close();
    },
    destroy() {
      sink.isDestroyed = true;
      close();
    },
  };
  return sink;
}

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return isAppError(error) ? `${error.kind}:${error.code}` : String(error);
  }
  return undefined;
}

const start = () => ({ outletId: randomUUID(), orderId: undefined, position: 0, initialMessages: [] });

describe('createTrackingHub', () => {
  it('refuses with orders.tracking_streams_full (503) at the cap and counts a released place free again', async () => {
    const { hub } = buildHub({ maxStreams: 2 });
    const first = hub.reserve();
    hub.reserve().attach(start(), fakeSink());
    expect(codeOf(() => hub.reserve())).toBe('unavailable:orders.tracking_streams_full');

    first.release();
    first.release();
    expect(hub.streamCount()).toBe(1);
    hub.reserve();
    expect(hub.streamCount()).toBe(2);
    await hub.close();
  });

  it('frees the place of a stream when its connection closes', async () => {
    const { hub } = buildHub({ maxStreams: 1 });
    const sink = fakeSink();
    hub.reserve().attach(start(), sink);
    expect(hub.streamCount()).toBe(1);
    sink.destroy();
    await sink.closed;
    await Promise.resolve();
    expect(hub.streamCount()).toBe(0);
    await hub.close();
  });

  it('writes the initial messages before anything from the feed', async () => {
    const { hub } = buildHub();
    const sink = fakeSink();
    const snapshot = { id: '4', event: 'order_snapshot', data: { status: 'READY' } };
    hub.reserve().attach({ ...start(), position: 4, initialMessages: [snapshot] }, sink);
    expect(sink.written).toEqual([snapshot]);
    await hub.close();
  });

  it('ends every stream on close, cuts one that does not finish within the grace, and stops listening', async () => {
    const { hub, listening } = buildHub({ closeGraceMs: 10 });
    const healthy = fakeSink();
    const stuck = fakeSink({ isStuck: true });
    hub.reserve().attach(start(), healthy);
    hub.reserve().attach(start(), stuck);

    await hub.close();

    expect(healthy).toMatchObject({ isEnded: true, isDestroyed: false });
    expect(stuck).toMatchObject({ isEnded: true, isDestroyed: true });
    expect(listening.isClosed).toBe(true);
  });

  it('refuses new streams with orders.tracking_closing once closing, and ends one that was being opened', async () => {
    const { hub } = buildHub();
    const opening = hub.reserve();
    await hub.close();
    expect(codeOf(() => hub.reserve())).toBe('unavailable:orders.tracking_closing');

    const late = fakeSink();
    opening.attach(start(), late);
    expect(late.isEnded).toBe(true);
    expect(hub.streamCount()).toBe(0);
  });
});
