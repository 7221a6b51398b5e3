export { createEventBus, type EventBus, type EventBusOptions } from './outbox.dispatcher.ts';
export { OUTBOX_APPEND_ONLY_SQLSTATE, type OutboxErrorCode } from './outbox.errors.ts';
export { listenForNotifications, type NotificationListener } from './outbox.listener.ts';
export type { OutboxTables } from './outbox.repository.ts';
export { EVENTS_CHANNEL } from './outbox.repository.ts';
export {
  applyEventOnce,
  DEAD_LETTER_LIST_LIMIT_MAX,
  emitEvent,
  handleEventOnce,
  listDeadLetters,
  type PreparedEvent,
  prepareEvent,
  pruneEvents,
  replayDeadLetter,
  retireSubscription,
} from './outbox.service.ts';
export {
  type BatchEventHandler,
  classifyFailure,
  computeRetryDelayMs,
  DEFAULT_PUBLISHER_MAX_ATTEMPTS,
  DEFAULT_RETRY_POLICY,
  type DeadLetter,
  type EmitOptions,
  type EventHandler,
  type EventInput,
  type EventPublisher,
  type FailureClass,
  type RetryPolicy,
  type Subscription,
  WILDCARD_EVENT_TYPE,
} from './outbox.ts';
