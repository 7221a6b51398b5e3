export {
  createJetStreamConsumer,
  type JetStreamConsumer,
  type JetStreamConsumerOptions,
} from './jetstream.consumer.ts';
export {
  isNatsUnavailableError,
  type NatsErrorCode,
  toNatsFailure,
} from './jetstream.errors.ts';
export {
  createJetStreamRelay,
  JETSTREAM_RELAY_NAME,
  type JetStreamRelay,
  type JetStreamRelayOptions,
} from './jetstream.relay.ts';
export {
  type EnsuredStream,
  type EnsureStreamOptions,
  ensureDeadLetterStream,
  ensureServiceStream,
} from './jetstream.streams.ts';
export {
  DEAD_LETTER_SUBJECT_PREFIX,
  DEFAULT_DEAD_LETTER_STREAM_SETTINGS,
  DEFAULT_STREAM_SETTINGS,
  deadLetterStreamName,
  deadLetterSubject,
  durableNameFor,
  EVENTS_SUBJECT_PREFIX,
  eventStreamName,
  eventSubject,
  type StreamSettings,
  serviceOfEventType,
} from './jetstream.ts';
export { connectNats, type NatsClient, type NatsConnectionSettings } from './nats.connection.ts';
