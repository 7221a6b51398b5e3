import { originOf } from '@keel/platform/auth';
import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { Static } from 'typebox';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import {
  AdjustInventoryBody,
  AlertListResponse,
  AlertParams,
  AlertResponse,
  IfMatchHeaders,
  InventoryListResponse,
  ListAlertsQuery,
  ListInventoryQuery,
  OutletIdParams,
  StockItemParams,
  StockItemResponse,
} from './inventory.schemas.ts';
import type { InventoryService } from './inventory.service.ts';
import { type LowStockAlert, parseIfMatch, type StockItem, stockItemETag } from './inventory.ts';
import type { StockAlertService } from './stock-alert.service.ts';

const TAGS = ['orders'];
const SECURITY = [{ bearerAuth: [] }];
const DEFAULT_LIMIT = 50;

export function toStockItemResponse(item: StockItem): Static<typeof StockItemResponse> {
  return {
    id: item.id,
    outlet_id: item.outletId,
    sku: item.sku,
    name: item.name,
    unit: item.unit,
    on_hand: item.onHand,
    reserved: item.reserved,
    available: item.available,
    low_stock_threshold: item.lowStockThreshold,
    is_low: item.isLow,
    version: item.version,
    updated_at: item.updatedAt.toISOString(),
  };
}

function toAlertResponse(alert: LowStockAlert): Static<typeof AlertResponse> {
  return {
    id: alert.id,
    outlet_id: alert.outletId,
    stock_item_id: alert.stockItemId,
    sku: alert.sku,
    name: alert.name,
    available: alert.available,
    threshold: alert.threshold,
    raised_at: alert.raisedAt.toISOString(),
    is_open: alert.acknowledgedAt === null,
    acknowledged_at: alert.acknowledgedAt?.toISOString() ?? null,
    acknowledged_by: alert.acknowledgedBy,
  };
}

// The access hook has set the principal on every route that is not public.
function principalOf(request: { principal?: Principal }): Principal {
  if (request.principal === undefined) throw new Error('access hook did not set a principal');
  return request.principal;
}

/**
 * Stock and low-stock alerts of one outlet. The route's permission says what
 * a caller may do; the services decide for which outlets (staff: their own;
 * admins: all), and answer 404 `orders.outlet_not_found` for the others.
 */
export function registerInventoryRoutes(
  app: KeelApp,
  services: { inventory: InventoryService; alerts: StockAlertService },
): void {
  const { inventory, alerts } = services;

  app.get(
    '/outlets/:outletId/inventory',
    {
      config: { access: ORDERS_PERMISSIONS.manageInventory },
      schema: {
        operationId: 'listInventory',
        tags: TAGS,
        summary: "List an outlet's stock",
        description:
          'Staff of the outlet and admins only; everyone else gets 404 `orders.outlet_not_found`. ' +
          'Ordered by sku; page with `next_cursor`.',
        security: SECURITY,
        params: OutletIdParams,
        querystring: ListInventoryQuery,
        response: { 200: InventoryListResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await inventory.listInventory(principalOf(request), request.params.outletId, {
        isLowOnly: query.low_only ?? false,
        ...(query.sku === undefined ? {} : { skuPrefix: query.sku }),
        ...(query.q === undefined ? {} : { nameContains: query.q }),
        limit: query.limit ?? DEFAULT_LIMIT,
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { items: page.items.map(toStockItemResponse), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/outlets/:outletId/inventory/:stockItemId/adjustments',
    {
      config: { access: ORDERS_PERMISSIONS.manageInventory },
      schema: {
        operationId: 'adjustInventory',
        tags: TAGS,
        summary: 'Adjust the stock on hand',
        description:
          'Adds `delta` to on hand, audited. Refused with 409 `orders.stock_would_go_negative` when it would take ' +
          'on hand below what open orders reserve. With `If-Match`, 412 `orders.stock_item_changed` if the item ' +
          'changed since it was read. Crossing the low-stock threshold raises one alert.',
        security: SECURITY,
        params: StockItemParams,
        headers: IfMatchHeaders,
        body: AdjustInventoryBody,
        response: {
          200: { ...StockItemResponse, description: 'The stock item after the adjustment' },
          ...problemResponses(400, 401, 403, 404, 409, 412, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const expectedVersion = parseIfMatch(request.headers['if-match']);
      const item = await inventory.adjustInventory(
        principalOf(request),
        {
          outletId: request.params.outletId,
          stockItemId: request.params.stockItemId,
          ...(expectedVersion === undefined ? {} : { expectedVersion }),
        },
        {
          delta: request.body.delta,
          reason: request.body.reason,
          ...(request.body.note === undefined ? {} : { note: request.body.note }),
        },
        originOf(request),
      );
      return reply.header('etag', stockItemETag(item.version)).send(toStockItemResponse(item));
    },
  );

  app.get(
    '/outlets/:outletId/alerts',
    {
      config: { access: ORDERS_PERMISSIONS.readAlerts },
      schema: {
        operationId: 'listAlerts',
        tags: TAGS,
        summary: "List an outlet's low-stock alerts",
        description:
          'Staff of the outlet and admins only; everyone else gets 404 `orders.outlet_not_found`. Newest first.',
        security: SECURITY,
        params: OutletIdParams,
        querystring: ListAlertsQuery,
        response: { 200: AlertListResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await alerts.listAlerts(principalOf(request), request.params.outletId, {
        isOpenOnly: query.open_only ?? false,
        limit: query.limit ?? DEFAULT_LIMIT,
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { alerts: page.alerts.map(toAlertResponse), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/outlets/:outletId/alerts/:alertId/acknowledge',
    {
      // Acknowledging changes state: it takes the stock-management permission,
      // not the read one.
      config: { access: ORDERS_PERMISSIONS.manageInventory },
      schema: {
        operationId: 'acknowledgeAlert',
        tags: TAGS,
        summary: 'Acknowledge a low-stock alert',
        description:
          'Idempotent: acknowledging an acknowledged alert returns it unchanged, with its first acknowledger.',
        security: SECURITY,
        params: AlertParams,
        response: {
          200: { ...AlertResponse, description: 'The acknowledged alert' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) =>
      toAlertResponse(
        await alerts.acknowledgeAlert(
          principalOf(request),
          { outletId: request.params.outletId, alertId: request.params.alertId },
          originOf(request),
        ),
      ),
  );
}
