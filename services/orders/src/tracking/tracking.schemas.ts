import { Type } from 'typebox';

export const OrderStreamParams = Type.Object({ orderId: Type.String({ format: 'uuid' }) });
export const OutletStreamParams = Type.Object({ outletId: Type.String({ format: 'uuid' }) });

export const StreamQuery = Type.Object({
  last_event_id: Type.Optional(
    Type.String({
      maxLength: 32,
      description:
        'Resume after this event id, for clients that cannot send the `Last-Event-ID` header on their first request; the header wins',
    }),
  ),
});

// Documented, not validated by the schema: the handler answers a bad value with
// `orders.last_event_id_invalid`, which a schema failure would hide.
export const StreamHeaders = {
  type: 'object',
  properties: {
    'last-event-id': {
      type: 'string',
      description: 'The id of the last event received: the stream resumes strictly after it',
    },
  },
} as const;

const SSE_FORMAT =
  'Server-Sent Events. Each message has `id:` (the outlet feed position, to resume from), `event:` and one `data:` line of JSON with `orderId`, `outletId`, `status` and `version`. ' +
  'Comment lines (`: keep-alive`) arrive every 15 s. The stream ends after the access token lifetime; reconnect with `Last-Event-ID`.';

export const OrderStreamResponse = {
  description: `${SSE_FORMAT} Events: \`order_snapshot\` (first, without Last-Event-ID), \`order_placed\`, \`order_status_changed\`, \`order_cancelled\`.`,
  content: { 'text/event-stream': { schema: Type.String() } },
};

export const OutletStreamResponse = {
  description: `${SSE_FORMAT} Events: \`order_placed\`, \`order_status_changed\`, \`order_cancelled\`; without Last-Event-ID the last 50 are replayed first.`,
  content: { 'text/event-stream': { schema: Type.String() } },
};
