import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { StoredResponse } from '@keel/platform/idempotency';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import {
  CancelOrderBody,
  ListOrdersQuery,
  OrderIdParams,
  OrderIfMatchHeaders,
  OrderPageResponse,
  OrderResponse,
  PlaceOrderBody,
  UpdateStatusBody,
} from './order.schemas.ts';
import type { OrderService } from './order.service.ts';
import { formatEtag, type Order, orderLocation } from './order.ts';

const TAGS = ['orders'];
const SECURITY = [{ bearerAuth: [] }];

export function toOrderResponse(order: Order): Static<typeof OrderResponse> {
  return {
    id: order.id,
    outlet_id: order.outletId,
    customer_id: order.customerId,
    status: order.status,
    version: order.version,
    currency: order.currency,
    total_minor: order.totalMinor,
    lines: order.lines.map((line) => ({
      line_number: line.lineNumber,
      menu_item_id: line.menuItemId,
      name: line.name,
      quantity: line.quantity,
      unit_price_minor: line.unitPriceMinor,
      line_total_minor: line.lineTotalMinor,
    })),
    delivery_address: order.deliveryAddress,
    note: order.note,
    placed_at: order.placedAt.toISOString(),
    confirmed_at: order.confirmedAt?.toISOString() ?? null,
    preparing_at: order.preparingAt?.toISOString() ?? null,
    ready_at: order.readyAt?.toISOString() ?? null,
    out_for_delivery_at: order.outForDeliveryAt?.toISOString() ?? null,
    delivered_at: order.deliveredAt?.toISOString() ?? null,
    cancelled_at: order.cancelledAt?.toISOString() ?? null,
    cancelled_by: order.cancelledBy,
    cancel_reason: order.cancelReason,
    updated_at: order.updatedAt.toISOString(),
  };
}

function placed(order: Order) {
  return {
    statusCode: 201 as const,
    headers: { location: orderLocation(order.id), etag: formatEtag(order.version) },
    body: toOrderResponse(order),
  } satisfies StoredResponse;
}

// Every route below declares a permission, so the access hook has set the principal.
function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error('orders route reached without a principal');
  return principal;
}

function ifMatchOf(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function registerOrderRoutes(app: KeelApp, orders: OrderService): void {
  // '' under the module prefix is exactly /orders (no /orders/ twin).
  app.post(
    '',
    {
      config: { access: ORDERS_PERMISSIONS.place, idempotency: { required: true } },
      schema: {
        operationId: 'placeOrder',
        tags: TAGS,
        summary: 'Place an order',
        security: SECURITY,
        description:
          'Prices every line from the menu (client prices are refused), and reserves the stock of every ' +
          'line in one step: either all of it or none (`orders.out_of_stock` lists what is short). ' +
          '`Idempotency-Key` is required; a retry with the same key and body replays the first answer. ' +
          'Each menu item may appear once.',
        headers: {
          type: 'object',
          // Documented, not validated here: the idempotency hook answers
          // `idempotency.key_required` / `idempotency.key_invalid` itself.
          properties: {
            'idempotency-key': { type: 'string', description: '1-255 printable ASCII characters' },
          },
        },
        body: PlaceOrderBody,
        response: {
          201: { ...OrderResponse, description: 'The placed order; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const claim = request.idempotency;
      const { body } = request;
      const order = await orders.placeOrder(
        principalOf(request),
        {
          outletId: body.outlet_id,
          lines: body.lines.map((line) => ({ menuItemId: line.menu_item_id, quantity: line.quantity })),
          deliveryAddress: body.delivery_address ?? null,
          note: body.note ?? null,
        },
        claim === undefined ? {} : { idempotency: { claim, respond: placed } },
      );
      const response = placed(order);
      return reply.code(response.statusCode).headers(response.headers).send(response.body);
    },
  );

  app.get(
    '',
    {
      config: { access: ORDERS_PERMISSIONS.read },
      schema: {
        operationId: 'listOrders',
        tags: TAGS,
        summary: 'List orders, newest first',
        security: SECURITY,
        description:
          'Customers see their own orders; staff the orders of their outlets (`outlet_id` must be one ' +
          'of them, or leave it out for all of them); admins every order. Keyset-paginated: pass ' +
          '`next_cursor` back as `cursor` with the same filters.',
        querystring: ListOrdersQuery,
        response: { 200: OrderPageResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await orders.listOrders(principalOf(request), {
        limit: query.limit,
        ...(query.outlet_id === undefined ? {} : { outletId: query.outlet_id }),
        ...(query.status === undefined ? {} : { statuses: query.status }),
        ...(query.placed_after === undefined ? {} : { placedAfter: new Date(query.placed_after) }),
        ...(query.placed_before === undefined ? {} : { placedBefore: new Date(query.placed_before) }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { items: page.items.map(toOrderResponse), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/:orderId',
    {
      config: { access: ORDERS_PERMISSIONS.read },
      schema: {
        operationId: 'getOrder',
        tags: TAGS,
        summary: 'Fetch an order',
        security: SECURITY,
        description:
          'Its customer, staff of its outlet and admins may read it; to anyone else it does not exist (404).',
        params: OrderIdParams,
        response: {
          200: { ...OrderResponse, description: 'The order; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const order = await orders.getOrder(principalOf(request), request.params.orderId);
      return reply.header('etag', formatEtag(order.version)).send(toOrderResponse(order));
    },
  );

  app.post(
    '/:orderId/status',
    {
      config: { access: ORDERS_PERMISSIONS.updateStatus },
      schema: {
        operationId: 'updateOrderStatus',
        tags: TAGS,
        summary: 'Move an order one step forward',
        security: SECURITY,
        description:
          'PLACED → CONFIRMED → PREPARING → READY → OUT_FOR_DELIVERY → DELIVERED, one step at a time ' +
          '(`orders.invalid_transition` otherwise). Staff of the order’s outlet and admins only. ' +
          '`If-Match` with the order’s ETag is required (`orders.precondition_required`, 400); a stale ' +
          'one gets 412 `orders.version_mismatch`. OUT_FOR_DELIVERY consumes the reserved stock.',
        params: OrderIdParams,
        headers: OrderIfMatchHeaders,
        body: UpdateStatusBody,
        response: {
          200: { ...OrderResponse, description: 'The order after the change; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 409, 412, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const order = await orders.updateStatus(
        principalOf(request),
        request.params.orderId,
        request.body.status,
        ifMatchOf(request),
      );
      return reply.header('etag', formatEtag(order.version)).send(toOrderResponse(order));
    },
  );

  app.post(
    '/:orderId/cancel',
    {
      config: { access: ORDERS_PERMISSIONS.cancel },
      // The body only carries an optional reason: a bare POST cancels too.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        operationId: 'cancelOrder',
        tags: TAGS,
        summary: 'Cancel an order and return its stock',
        security: SECURITY,
        description:
          'The customer may cancel while the order is PLACED or CONFIRMED (later: ' +
          '`orders.cancel_window_closed`); staff of its outlet and admins until it leaves the kitchen ' +
          '(PLACED…READY). The stock is returned exactly once: a second cancellation, concurrent or ' +
          'not, gets 409 `orders.invalid_transition`. `If-Match` is optional; a stale one gets 412.',
        params: OrderIdParams,
        headers: OrderIfMatchHeaders,
        body: CancelOrderBody,
        response: {
          200: { ...OrderResponse, description: 'The cancelled order; ETag carries its version' },
          ...problemResponses(400, 401, 403, 404, 409, 412, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const order = await orders.cancelOrder(principalOf(request), request.params.orderId, {
        reason: request.body.reason ?? null,
        ifMatch: ifMatchOf(request),
      });
      return reply.header('etag', formatEtag(order.version)).send(toOrderResponse(order));
    },
  );
}
