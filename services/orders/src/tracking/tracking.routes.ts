import { AppError } from '@keel/platform/errors';
import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import type { TrackingHub } from './tracking.hub.ts';
import {
  OrderStreamParams,
  OrderStreamResponse,
  OutletStreamParams,
  OutletStreamResponse,
  StreamHeaders,
  StreamQuery,
} from './tracking.schemas.ts';
import type { TrackingService } from './tracking.service.ts';
import { openSseResponse, type SseSettings } from './tracking.sse.ts';
import { parseLastEventId, type StreamStart } from './tracking.ts';

// Authentication is the platform's bearer token in `Authorization`, checked
// before the handler like on every route. Browsers' EventSource cannot set
// headers, so web clients read the stream with a fetch-based SSE client
// (fetch + ReadableStream, or a library such as @microsoft/fetch-event-source)
// and send `Last-Event-ID` themselves; there is no cookie or query-string
// token, which would leak into logs and bypass the CSRF-free bearer model.

export function registerTrackingRoutes(
  app: KeelApp,
  deps: { tracking: TrackingService; hub: TrackingHub; sse: SseSettings },
): void {
  const { tracking, hub, sse } = deps;

  // The slot is taken before the access checks and the snapshot read, so
  // requests awaiting the database cannot push the process past its cap.
  async function stream(
    request: FastifyRequest,
    reply: FastifyReply,
    start: (principal: Principal, lastEventId: number | undefined) => Promise<StreamStart>,
    lastEventIdQuery: string | undefined,
  ): Promise<void> {
    const lastEventId = parseLastEventId(request.headers['last-event-id'], lastEventIdQuery);
    const principal = principalOf(request);
    const slot = hub.reserve();
    let begin: StreamStart;
    try {
      begin = await start(principal, lastEventId);
    } catch (error) {
      slot.release();
      throw error;
    }
    slot.attach(begin, openSseResponse(reply, sse));
  }

  app.get(
    '/:orderId/events',
    {
      config: { access: ORDERS_PERMISSIONS.read },
      // A HEAD twin would open a stream that can never carry anything.
      exposeHeadRoute: false,
      schema: {
        operationId: 'streamOrderEvents',
        tags: ['orders'],
        summary: "Follow one order's progress (Server-Sent Events)",
        description:
          'For the customer who placed the order, staff of its outlet and admins; to anyone else the order does not exist. ' +
          'Send `Last-Event-ID` (or `?last_event_id=`) to resume without gaps; without it the stream starts with an `order_snapshot` of the order.',
        security: [{ bearerAuth: [] }],
        params: OrderStreamParams,
        querystring: StreamQuery,
        headers: StreamHeaders,
        response: { 200: OrderStreamResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      await stream(
        request,
        reply,
        (principal, lastEventId) => tracking.startOrderStream(principal, request.params.orderId, lastEventId),
        request.query.last_event_id,
      );
      return reply;
    },
  );

  app.get(
    '/outlets/:outletId/events',
    {
      config: { access: ORDERS_PERMISSIONS.streamOutlet },
      exposeHeadRoute: false,
      schema: {
        operationId: 'streamOutletEvents',
        tags: ['orders'],
        summary: "Follow an outlet's order board (Server-Sent Events)",
        description:
          'For staff of the outlet and admins; to other staff the outlet does not exist. ' +
          'Send `Last-Event-ID` (or `?last_event_id=`) to resume without gaps; without it the last 50 events are replayed first.',
        security: [{ bearerAuth: [] }],
        params: OutletStreamParams,
        querystring: StreamQuery,
        headers: StreamHeaders,
        response: { 200: OutletStreamResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      await stream(
        request,
        reply,
        (principal, lastEventId) =>
          tracking.startOutletStream(principal, request.params.outletId, lastEventId),
        request.query.last_event_id,
      );
      return reply;
    },
  );
}

function principalOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  // The access hook guarantees a principal on these routes; this guards a misdeclared one.
  if (principal === undefined) {
    throw new AppError('unauthenticated', 'auth.unauthenticated', 'This operation needs valid credentials');
  }
  return principal;
}
