import { originOf } from '@keel/platform/auth';
import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import { toStockItemResponse } from '../inventory/inventory.routes.ts';
import { StockItemResponse } from '../inventory/inventory.schemas.ts';
import {
  CreateMenuItemBody,
  CreateOutletBody,
  CreateStockItemBody,
  MenuItemParams,
  MenuItemResponse,
  MenuResponse,
  OutletIdParams,
  OutletListResponse,
  OutletResponse,
  UpdateMenuItemBody,
} from './outlet.schemas.ts';
import type { Actor, CatalogueService } from './outlet.service.ts';
import type { MenuItem, Outlet } from './outlet.ts';

const TAGS = ['orders'];
const SECURITY = [{ bearerAuth: [] }];

function toOutletResponse(outlet: Outlet): Static<typeof OutletResponse> {
  return { id: outlet.id, name: outlet.name, currency: outlet.currency, time_zone: outlet.timeZone };
}

function toMenuItemResponse(item: MenuItem): Static<typeof MenuItemResponse> {
  return {
    id: item.id,
    outlet_id: item.outletId,
    name: item.name,
    description: item.description,
    price_minor: item.priceMinor,
    currency: item.currency,
    is_available: item.isAvailable,
    components: item.components.map((component) => ({
      stock_item_id: component.stockItemId,
      quantity: component.quantity,
    })),
    created_at: item.createdAt.toISOString(),
  };
}

/** The caller and origin of an authenticated request, for the audit trail. */
export function actorOf(request: FastifyRequest): Actor {
  const principal: Principal | undefined = request.principal;
  // The access hook sets the principal on every route that is not public.
  if (principal === undefined) throw new Error('access hook did not set a principal');
  return { principal, origin: originOf(request) };
}

/** The catalogue: public outlet and menu reads, admin-only writes (`orders:manage_catalogue`). */
export function registerCatalogueRoutes(app: KeelApp, catalogue: CatalogueService): void {
  app.get(
    '/outlets',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'listOutlets',
        tags: TAGS,
        summary: 'List the active outlets',
        response: { 200: OutletListResponse, ...problemResponses(429) },
      },
    },
    async () => ({ outlets: (await catalogue.listOutlets()).map(toOutletResponse) }),
  );

  app.get(
    '/outlets/:outletId/menu',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'getMenu',
        tags: TAGS,
        summary: "An outlet's menu",
        description:
          'Available items with their price and whether each can be ordered right now (every ingredient has ' +
          'at least one portion available).',
        params: OutletIdParams,
        response: { 200: MenuResponse, ...problemResponses(400, 404, 429) },
      },
    },
    async (request) => {
      const menu = await catalogue.getMenu(request.params.outletId);
      return {
        outlet: toOutletResponse(menu.outlet),
        items: menu.items.map((item) => ({
          id: item.id,
          name: item.name,
          description: item.description,
          price_minor: item.priceMinor,
          currency: item.currency,
          is_orderable: item.isOrderable,
        })),
      };
    },
  );

  app.post(
    '/outlets',
    {
      config: { access: ORDERS_PERMISSIONS.manageCatalogue },
      schema: {
        operationId: 'createOutlet',
        tags: TAGS,
        summary: 'Open an outlet',
        security: SECURITY,
        body: CreateOutletBody,
        response: {
          201: { ...OutletResponse, description: 'The created outlet' },
          ...problemResponses(400, 401, 403, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const outlet = await catalogue.createOutlet(actorOf(request), {
        name: request.body.name,
        currency: request.body.currency,
        timeZone: request.body.time_zone ?? 'UTC',
      });
      return reply.code(201).send(toOutletResponse(outlet));
    },
  );

  app.post(
    '/outlets/:outletId/stock-items',
    {
      config: { access: ORDERS_PERMISSIONS.manageCatalogue },
      schema: {
        operationId: 'createStockItem',
        tags: TAGS,
        summary: 'Add a stock item to an outlet',
        description: 'A sku already used at the outlet is refused with 409 `orders.sku_taken`.',
        security: SECURITY,
        params: OutletIdParams,
        body: CreateStockItemBody,
        response: {
          201: { ...StockItemResponse, description: 'The created stock item' },
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const item = await catalogue.createStockItem(actorOf(request), request.params.outletId, {
        sku: body.sku,
        name: body.name,
        unit: body.unit ?? 'each',
        onHand: body.on_hand,
        lowStockThreshold: body.low_stock_threshold,
      });
      return reply.code(201).send(toStockItemResponse(item));
    },
  );

  app.post(
    '/outlets/:outletId/menu-items',
    {
      config: { access: ORDERS_PERMISSIONS.manageCatalogue },
      schema: {
        operationId: 'createMenuItem',
        tags: TAGS,
        summary: 'Add a menu item with its recipe',
        description:
          "Priced in the outlet's currency. Components must be stock items of the same outlet (422 " +
          '`orders.invalid_component`), each listed once (400 `orders.duplicate_component`).',
        security: SECURITY,
        params: OutletIdParams,
        body: CreateMenuItemBody,
        response: {
          201: { ...MenuItemResponse, description: 'The created menu item' },
          ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const item = await catalogue.createMenuItem(actorOf(request), request.params.outletId, {
        name: body.name,
        description: body.description ?? '',
        priceMinor: body.price_minor,
        isAvailable: body.is_available ?? true,
        components: body.components.map((component) => ({
          stockItemId: component.stock_item_id,
          quantity: component.quantity,
        })),
      });
      return reply.code(201).send(toMenuItemResponse(item));
    },
  );

  app.patch(
    '/outlets/:outletId/menu-items/:menuItemId',
    {
      config: { access: ORDERS_PERMISSIONS.manageCatalogue },
      schema: {
        operationId: 'updateMenuItem',
        tags: TAGS,
        summary: "Change a menu item's price or availability",
        description: 'Orders already placed keep the price they were placed at.',
        security: SECURITY,
        params: MenuItemParams,
        body: UpdateMenuItemBody,
        response: {
          200: { ...MenuItemResponse, description: 'The menu item after the change' },
          ...problemResponses(400, 401, 403, 404, 413, 415, 429),
        },
      },
    },
    async (request) => {
      const { body } = request;
      const item = await catalogue.updateMenuItem(
        actorOf(request),
        { outletId: request.params.outletId, menuItemId: request.params.menuItemId },
        {
          ...(body.price_minor === undefined ? {} : { priceMinor: body.price_minor }),
          ...(body.is_available === undefined ? {} : { isAvailable: body.is_available }),
        },
      );
      return toMenuItemResponse(item);
    },
  );
}
