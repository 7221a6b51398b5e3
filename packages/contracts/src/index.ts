// Event schemas shared between services (STYLE.md rule 3) live here, each a
// `defineEvent` contract in `<service>.events.ts`. Services import contracts,
// never each other.
export {
  defineEvent,
  EVENT_TYPE_PATTERN,
  type EventDefinition,
  type EventEnvelope,
  EventValidationError,
  type EventValidationProblem,
  envelopeSchema,
} from './envelope.ts';
export {
  type InventoryLowStockPayload,
  InventoryLowStockV1,
  ORDER_EVENT_TYPES,
  ORDER_STATUSES,
  type OrderCancelledPayload,
  OrderCancelledV1,
  type OrderPlacedPayload,
  OrderPlacedV1,
  type OrderStatus,
  type OrderStatusChangedPayload,
  OrderStatusChangedV1,
  OrderStatusSchema,
} from './orders.events.ts';
