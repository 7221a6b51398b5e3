import { AppError } from '@keel/platform/errors';
import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import { OrderAnalyticsQuery, OrderAnalyticsResponse } from './analytics.schemas.ts';
import type { AnalyticsService, OrderAnalytics } from './analytics.service.ts';
import type { AnalyticsFigures } from './analytics.ts';

type FiguresResponse = Static<typeof OrderAnalyticsResponse>['totals'];

function toFiguresResponse(figures: AnalyticsFigures): FiguresResponse {
  return {
    orders_placed: figures.ordersPlaced,
    orders_delivered: figures.ordersDelivered,
    orders_cancelled: figures.ordersCancelled,
    revenue: figures.revenue.map((money) => ({
      currency: money.currency,
      placed_value_minor: money.placedValueMinor,
      revenue_minor: money.revenueMinor,
      cancelled_value_minor: money.cancelledValueMinor,
    })),
    prep_count: figures.prepCount,
    delivery_count: figures.deliveryCount,
    avg_prep_seconds: figures.avgPrepSeconds,
    avg_delivery_seconds: figures.avgDeliverySeconds,
  };
}

function toAnalyticsResponse(analytics: OrderAnalytics): Static<typeof OrderAnalyticsResponse> {
  return {
    outlet_id: analytics.outletId ?? null,
    from: analytics.from.toISOString(),
    to: analytics.to.toISOString(),
    granularity: analytics.granularity,
    buckets: analytics.buckets.map((bucket) => ({
      start: bucket.start.toISOString(),
      ...toFiguresResponse(bucket),
    })),
    totals: toFiguresResponse(analytics.totals),
  };
}

function principalOf(request: FastifyRequest): Principal {
  // The access hook set it before any handler with a permission rule runs.
  if (request.principal === undefined)
    throw new AppError('unauthenticated', 'auth.unauthenticated', 'This operation needs valid credentials');
  return request.principal;
}

export function registerAnalyticsRoutes(app: KeelApp, analytics: AnalyticsService): void {
  app.get(
    '/analytics',
    {
      config: { access: ORDERS_PERMISSIONS.readAnalytics },
      schema: {
        operationId: 'getOrderAnalytics',
        tags: ['orders'],
        summary: 'Orders, revenue and average prep and delivery times per hour or day',
        description:
          'Served from the hourly rollup the `orders.analytics` subscriber keeps (eventually consistent, ' +
          'usually within a second). Buckets are UTC hours or UTC days. Staff must name one of their ' +
          'outlets (another outlet answers 404 `orders.outlet_not_found`); admins may omit `outlet_id` ' +
          'for the whole chain.',
        security: [{ bearerAuth: [] }],
        querystring: OrderAnalyticsQuery,
        response: {
          200: { ...OrderAnalyticsResponse, description: 'The report' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const query = request.query;
      const report = await analytics.getOrderAnalytics(principalOf(request), {
        outletId: query.outlet_id,
        from: new Date(query.from),
        to: new Date(query.to),
        granularity: query.granularity,
      });
      return toAnalyticsResponse(report);
    },
  );
}
