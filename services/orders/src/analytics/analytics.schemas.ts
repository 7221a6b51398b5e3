import { Type } from 'typebox';
import { ANALYTICS_MAX_RANGE_DAYS, type AnalyticsGranularity } from './analytics.ts';

const Timestamp = Type.String({ format: 'date-time' });
const Granularity = Type.Union([
  Type.Literal('hour' satisfies AnalyticsGranularity),
  Type.Literal('day' satisfies AnalyticsGranularity),
]);

export const OrderAnalyticsQuery = Type.Object(
  {
    outlet_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'Required for staff (one of their outlets); omitted by an admin: every outlet',
      }),
    ),
    from: Type.String({
      format: 'date-time',
      description: 'Inclusive: hour buckets starting at or after it',
    }),
    to: Type.String({
      format: 'date-time',
      description: `Exclusive: hour buckets starting before it; at most ${ANALYTICS_MAX_RANGE_DAYS} days after from`,
    }),
    granularity: Type.Union(Granularity.anyOf, { default: 'hour', description: 'UTC hours or UTC days' }),
  },
  { additionalProperties: false },
);

const CurrencyFigures = Type.Object(
  {
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    placed_value_minor: Type.Integer({ description: 'Totals of the orders placed' }),
    revenue_minor: Type.Integer({
      description: 'Totals of the orders delivered (revenue is recognised at delivery)',
    }),
    cancelled_value_minor: Type.Integer({ description: 'Totals of the orders cancelled' }),
  },
  { additionalProperties: false },
);

const figures = {
  orders_placed: Type.Integer(),
  orders_delivered: Type.Integer(),
  orders_cancelled: Type.Integer(),
  revenue: Type.Array(CurrencyFigures, { description: 'Money per currency, in minor units' }),
  prep_count: Type.Integer({ description: 'Orders that became READY' }),
  delivery_count: Type.Integer({ description: 'Orders delivered after going out for delivery' }),
  avg_prep_seconds: Type.Union([Type.Number(), Type.Null()], { description: 'Placed to READY' }),
  avg_delivery_seconds: Type.Union([Type.Number(), Type.Null()], {
    description: 'OUT_FOR_DELIVERY to DELIVERED',
  }),
};

export const OrderAnalyticsResponse = Type.Object(
  {
    outlet_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
    from: Timestamp,
    to: Timestamp,
    granularity: Granularity,
    buckets: Type.Array(Type.Object({ start: Timestamp, ...figures }, { additionalProperties: false }), {
      description: 'Buckets with activity, oldest first; empty ones are left out',
    }),
    totals: Type.Object(figures, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
