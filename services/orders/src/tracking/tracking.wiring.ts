import type { KeelApp } from '@keel/platform/http';
import type { OrdersDependencies } from '../composition-root.ts';
import { createTrackingSubscription } from './on-order-event.handler.ts';
import { createTrackingHub } from './tracking.hub.ts';
import { listenForFeedNotifications } from './tracking.listener.ts';
import { TRACKING_CHANNEL, type TrackingSchema } from './tracking.repository.ts';
import { registerTrackingRoutes } from './tracking.routes.ts';
import { createTrackingService } from './tracking.service.ts';

/** Per-process limits of the tracking streams. */
export const TRACKING_LIMITS = {
  /** Open streams per process; beyond it 503 `orders.tracking_streams_full` (each holds a socket and a little memory, no connection). */
  maxStreams: 2_000,
  pollIntervalMs: 5_000,
  fetchBatchSize: 500,
  closeGraceMs: 2_000,
  retryMs: 2_000,
  heartbeatMs: 15_000,
  maxBufferedBytes: 1_048_576,
} as const;

/** Builds the tracking feature and registers its routes, subscriptions and jobs. */
export function wireTracking(app: KeelApp, deps: OrdersDependencies): void {
  const db = deps.database.typed<TrackingSchema>();
  deps.background.subscribe(createTrackingSubscription());

  const hub = createTrackingHub({
    db,
    logger: deps.logger,
    listen: (handlers) =>
      listenForFeedNotifications(
        { connection: deps.database.pool.options, channel: TRACKING_CHANNEL, logger: deps.logger },
        handlers,
      ),
    maxStreams: TRACKING_LIMITS.maxStreams,
    pollIntervalMs: TRACKING_LIMITS.pollIntervalMs,
    fetchBatchSize: TRACKING_LIMITS.fetchBatchSize,
    closeGraceMs: TRACKING_LIMITS.closeGraceMs,
  });
  // preClose, not onClose: Fastify closes the HTTP server before its onClose
  // hooks, and the server waits for open streams, so they must end first.
  app.addHook('preClose', async () => {
    await hub.close();
  });

  registerTrackingRoutes(app, {
    tracking: createTrackingService({ db, access: deps.access }),
    hub,
    sse: {
      retryMs: TRACKING_LIMITS.retryMs,
      heartbeatMs: TRACKING_LIMITS.heartbeatMs,
      // Streams end when an access token would have expired; see SseSettings.
      maxLifetimeMs: deps.config.AUTH_ACCESS_TOKEN_TTL_SECONDS * 1000,
      maxBufferedBytes: TRACKING_LIMITS.maxBufferedBytes,
    },
  });
}
