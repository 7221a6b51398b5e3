import { AppError } from '@keel/platform/errors';
import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import {
  CreatedWebhookEndpointResponse,
  CreateWebhookEndpointBody,
  ListWebhookDeliveriesQuery,
  WebhookDeliveryListResponse,
  WebhookEndpointListResponse,
  WebhookEndpointParams,
  WebhookEndpointResponse,
} from './webhook.schemas.ts';
import type { WebhookActor, WebhookService } from './webhook.service.ts';
import type { WebhookDelivery, WebhookEndpoint } from './webhook.ts';

const TAGS = ['webhooks'];
const SECURITY = [{ bearerAuth: [] }];
const ACCESS = ORDERS_PERMISSIONS.manageWebhooks;

function toEndpointResponse(endpoint: WebhookEndpoint): Static<typeof WebhookEndpointResponse> {
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    event_types: endpoint.eventTypes,
    is_active: endpoint.isActive,
    created_by: endpoint.createdBy,
    created_at: endpoint.createdAt.toISOString(),
    deactivated_at: endpoint.deactivatedAt?.toISOString() ?? null,
  };
}

function toDeliveryResponse(
  delivery: WebhookDelivery,
): Static<typeof WebhookDeliveryListResponse>['deliveries'][number] {
  return {
    id: delivery.id,
    event_id: delivery.eventId,
    event_type: delivery.eventType,
    status: delivery.status,
    attempts: delivery.attempts,
    last_status_code: delivery.lastStatusCode,
    last_error: delivery.lastError,
    last_attempt_at: delivery.lastAttemptAt?.toISOString() ?? null,
    delivered_at: delivery.deliveredAt?.toISOString() ?? null,
    dead_at: delivery.deadAt?.toISOString() ?? null,
    created_at: delivery.createdAt.toISOString(),
  };
}

function principalOf(request: FastifyRequest): Principal {
  // The access hook set it before any handler with a permission rule runs.
  if (request.principal === undefined)
    throw new AppError('unauthenticated', 'auth.unauthenticated', 'This operation needs valid credentials');
  return request.principal;
}

function actorOf(request: FastifyRequest): WebhookActor {
  return {
    principal: principalOf(request),
    requestId: request.id,
    ip: request.ip,
    userAgent: request.headers['user-agent'],
  };
}

/**
 * `/orders/webhooks`: chain-wide endpoints, for orders admins only (no
 * outlet scope: an endpoint receives every outlet's events).
 */
export function registerWebhookRoutes(app: KeelApp, webhooks: WebhookService): void {
  app.post(
    '/webhooks',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'createWebhookEndpoint',
        tags: TAGS,
        summary: 'Register a webhook endpoint; its signing secret is returned once',
        description:
          'Deliveries are POSTed as JSON with `webhook-id`, `webhook-timestamp` and `webhook-signature` ' +
          '(Standard Webhooks, `v1,<base64 HMAC-SHA256>`), retried with backoff on 408, 429, 5xx, timeouts ' +
          'and network errors, and given up at once on other 4xx. The secret is stored encrypted and never ' +
          'shown again: store it now, or deactivate the endpoint and create another.',
        security: SECURITY,
        body: CreateWebhookEndpointBody,
        response: {
          201: { ...CreatedWebhookEndpointResponse, description: 'The endpoint and its secret' },
          ...problemResponses(400, 401, 403, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await webhooks.createEndpoint(actorOf(request), {
        url: request.body.url,
        eventTypes: request.body.event_types,
        description: request.body.description,
      });
      // The secret must not linger in a shared cache.
      return reply
        .code(201)
        .headers({ location: `/orders/webhooks/${endpoint.id}`, 'cache-control': 'no-store' })
        .send({ ...toEndpointResponse(endpoint), secret });
    },
  );

  app.get(
    '/webhooks',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'listWebhookEndpoints',
        tags: TAGS,
        summary: 'List webhook endpoints, active and deactivated, newest first',
        security: SECURITY,
        response: {
          200: { ...WebhookEndpointListResponse, description: 'Every endpoint (never their secrets)' },
          ...problemResponses(401, 403, 429),
        },
      },
    },
    async () => ({ webhooks: (await webhooks.listEndpoints()).map(toEndpointResponse) }),
  );

  app.delete(
    '/webhooks/:id',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'deactivateWebhookEndpoint',
        tags: TAGS,
        summary: 'Deactivate a webhook endpoint',
        description:
          'Stops new deliveries at once; deliveries still queued are cancelled when their turn comes. ' +
          'The endpoint and its delivery history stay readable. Idempotent.',
        security: SECURITY,
        params: WebhookEndpointParams,
        response: {
          200: { ...WebhookEndpointResponse, description: 'The deactivated endpoint' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) =>
      toEndpointResponse(await webhooks.deactivateEndpoint(actorOf(request), request.params.id)),
  );

  app.get(
    '/webhooks/:id/deliveries',
    {
      config: { access: ACCESS },
      schema: {
        operationId: 'listWebhookDeliveries',
        tags: TAGS,
        summary: "An endpoint's recent deliveries and how their attempts went",
        security: SECURITY,
        params: WebhookEndpointParams,
        querystring: ListWebhookDeliveriesQuery,
        response: {
          200: { ...WebhookDeliveryListResponse, description: 'Newest first' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => ({
      deliveries: (await webhooks.listDeliveries(request.params.id, request.query.limit)).map(
        toDeliveryResponse,
      ),
    }),
  );
}
