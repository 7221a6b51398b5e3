import { InventoryLowStockV1, OrderCancelledV1, OrderPlacedV1, OrderStatusChangedV1 } from '@keel/contracts';
import { type Static, Type } from 'typebox';
import type { WebhookEventType } from './webhook.ts';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
// Spelled out: a mapped array would lose the literal types.
const EventType = Type.Union(
  [
    Type.Literal(OrderPlacedV1.type),
    Type.Literal(OrderStatusChangedV1.type),
    Type.Literal(OrderCancelledV1.type),
    Type.Literal(InventoryLowStockV1.type),
  ],
  { description: 'An orders event type' },
);
// Compile-time check that the union and WEBHOOK_EVENT_TYPES list the same types.
type EventTypeMatches = [Static<typeof EventType>] extends [WebhookEventType]
  ? [WebhookEventType] extends [Static<typeof EventType>]
    ? true
    : never
  : never;
const eventTypesMatch: EventTypeMatches = true;
void eventTypesMatch;

export const CreateWebhookEndpointBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2000,
      description: 'https (production refuses loopback and private addresses)',
    }),
    event_types: Type.Array(EventType, { minItems: 1, maxItems: 20, uniqueItems: true }),
    description: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
  },
  { additionalProperties: false },
);

export const WebhookEndpointParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const WebhookEndpointResponse = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    description: Type.String(),
    event_types: Type.Array(Type.String()),
    is_active: Type.Boolean(),
    created_by: Uuid,
    created_at: Timestamp,
    deactivated_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);

export const CreatedWebhookEndpointResponse = Type.Object(
  {
    ...WebhookEndpointResponse.properties,
    secret: Type.String({
      description:
        'Shown once. Verify each delivery: base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` ' +
        'under the base64-decoded part after `whsec_` (Standard Webhooks)',
    }),
  },
  { additionalProperties: false },
);

export const WebhookEndpointListResponse = Type.Object(
  { webhooks: Type.Array(WebhookEndpointResponse) },
  { additionalProperties: false },
);

export const ListWebhookDeliveriesQuery = Type.Object(
  { limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) },
  { additionalProperties: false },
);

export const WebhookDeliveryResponse = Type.Object(
  {
    id: Uuid,
    event_id: Uuid,
    event_type: Type.String(),
    status: Type.Union([
      Type.Literal('pending'),
      Type.Literal('delivered'),
      Type.Literal('dead'),
      Type.Literal('cancelled'),
    ]),
    attempts: Type.Integer(),
    last_status_code: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
    last_attempt_at: Type.Union([Timestamp, Type.Null()]),
    delivered_at: Type.Union([Timestamp, Type.Null()]),
    dead_at: Type.Union([Timestamp, Type.Null()]),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);

export const WebhookDeliveryListResponse = Type.Object(
  { deliveries: Type.Array(WebhookDeliveryResponse, { description: 'Newest first' }) },
  { additionalProperties: false },
);
