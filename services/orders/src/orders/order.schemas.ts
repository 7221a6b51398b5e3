import { ORDER_STATUSES } from '@keel/contracts';
import { Type } from 'typebox';

// No control characters: addresses and notes are printed on kitchen tickets and in logs.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';
// Notes and addresses may span lines on a ticket; still no other control characters.
const PRINTABLE_MULTILINE = '^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
// Spelled out rather than mapped from ORDER_STATUSES: a mapped array loses the literal types.
const Status = Type.Union([
  Type.Literal('PLACED'),
  Type.Literal('CONFIRMED'),
  Type.Literal('PREPARING'),
  Type.Literal('READY'),
  Type.Literal('OUT_FOR_DELIVERY'),
  Type.Literal('DELIVERED'),
  Type.Literal('CANCELLED'),
]);
const AdvancingStatus = Type.Union(
  [
    Type.Literal('CONFIRMED'),
    Type.Literal('PREPARING'),
    Type.Literal('READY'),
    Type.Literal('OUT_FOR_DELIVERY'),
    Type.Literal('DELIVERED'),
  ],
  { description: 'The next status; orders move one step at a time' },
);

export const PlaceOrderBody = Type.Object(
  {
    outlet_id: Uuid,
    lines: Type.Array(
      Type.Object(
        {
          menu_item_id: Uuid,
          quantity: Type.Integer({ minimum: 1, maximum: 100 }),
        },
        // Prices are the server's: a client `price` is refused, never trusted.
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 50, description: 'Each menu item at most once' },
    ),
    delivery_address: Type.Optional(
      Type.String({ minLength: 1, maxLength: 500, pattern: PRINTABLE_MULTILINE }),
    ),
    note: Type.Optional(Type.String({ maxLength: 500, pattern: PRINTABLE_MULTILINE })),
  },
  { additionalProperties: false },
);

export const OrderIdParams = Type.Object({ orderId: Uuid }, { additionalProperties: false });

export const UpdateStatusBody = Type.Object({ status: AdvancingStatus }, { additionalProperties: false });

export const CancelOrderBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, pattern: PRINTABLE })) },
  { additionalProperties: false },
);

export const ListOrdersQuery = Type.Object(
  {
    outlet_id: Type.Optional(Uuid),
    status: Type.Optional(
      Type.Array(Status, {
        minItems: 1,
        maxItems: ORDER_STATUSES.length,
        description: 'Repeat to match any of several: ?status=PLACED&status=CONFIRMED',
      }),
    ),
    placed_after: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive' })),
    placed_before: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive' })),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

export const OrderIfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'The ETag of the version being changed, e.g. "3"' })),
});

export const OrderResponse = Type.Object(
  {
    id: Uuid,
    outlet_id: Uuid,
    customer_id: Uuid,
    status: Status,
    version: Type.Integer({ minimum: 1 }),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    total_minor: Type.Integer({ minimum: 0, description: 'In minor units (cents) of currency' }),
    lines: Type.Array(
      Type.Object(
        {
          line_number: Type.Integer({ minimum: 1 }),
          menu_item_id: Uuid,
          name: Type.String(),
          quantity: Type.Integer({ minimum: 1 }),
          unit_price_minor: Type.Integer({ minimum: 0 }),
          line_total_minor: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
    ),
    delivery_address: Type.Union([Type.String(), Type.Null()]),
    note: Type.Union([Type.String(), Type.Null()]),
    placed_at: Timestamp,
    confirmed_at: NullableTimestamp,
    preparing_at: NullableTimestamp,
    ready_at: NullableTimestamp,
    out_for_delivery_at: NullableTimestamp,
    delivered_at: NullableTimestamp,
    cancelled_at: NullableTimestamp,
    cancelled_by: Type.Union([Type.Literal('customer'), Type.Literal('staff'), Type.Null()]),
    cancel_reason: Type.Union([Type.String(), Type.Null()]),
    updated_at: Timestamp,
  },
  { additionalProperties: false, description: 'An order; its version is also its ETag' },
);

export const OrderPageResponse = Type.Object(
  {
    items: Type.Array(OrderResponse),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as cursor for the next page; null on the last page',
    }),
  },
  { additionalProperties: false },
);
