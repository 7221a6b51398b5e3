import type { EventEnvelope } from '@keel/contracts';
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers, nanos } from '@nats-io/transport-node';
import type { Database } from '../db/index.ts';
import { isAppError } from '../errors/index.ts';
import type { Logger, Registry } from '../observability/index.ts';
import {
  classifyFailure,
  computeRetryDelayMs,
  DEFAULT_RETRY_POLICY,
  handleEventOnce,
  type RetryPolicy,
  type Subscription,
} from '../outbox/index.ts';
import { isSubscribedTo, validateSubscriptions } from '../outbox/outbox.ts';
import { invalidNatsSettings, toNatsFailure } from './jetstream.errors.ts';
import { type ConsumerMetrics, createConsumerMetrics } from './jetstream.metrics.ts';
import { apiErrorCode, ensureDeadLetterStream, ensureServiceStream } from './jetstream.streams.ts';
import {
  assertServiceName,
  consumerFilterSubjects,
  deadLetterStreamName,
  deadLetterSubject,
  durableNameFor,
  eventStreamName,
  isServerAtLeast,
  parseEnvelope,
  type StreamSettings,
  serviceEventsSubject,
} from './jetstream.ts';
import type { NatsClient } from './nats.connection.ts';

export type JetStreamConsumerOptions = {
  connection: NatsClient;
  database: Database;
  logger: Logger;
  /** The same shape as a Postgres bus subscription; its name keys the inbox and the durable consumer. */
  subscription: Subscription;
  /** The producing service whose stream is read: `orders` for `orders.*` events. */
  service: string;
  /** Defaults to the subscription's name with dots as underscores. */
  durableName?: string;
  /** Deliveries before a retryable failure is dead-lettered (default: the subscription's `maxAttempts`). */
  maxDeliver?: number;
  /** Delay before a failed message comes back (default: the subscription's `retry`, else 1 s doubling to 5 min). */
  backoff?: RetryPolicy;
  /** Redelivery when a message is neither acknowledged nor reported in progress (default 30 s). */
  ackWaitMs?: number;
  /** Messages handled at once by this process when the subscription is not ordered (default 1). */
  concurrency?: number;
  /** Where a new durable consumer starts: the whole retained stream (default) or new messages only. */
  deliverPolicy?: 'all' | 'new';
  /** Retention of the service's dead-letter stream (default 30 days). */
  deadLetterStream?: Partial<StreamSettings>;
  /** Jitter source in [0, 1); tests pin it. */
  random?: () => number;
};

export type JetStreamConsumer = {
  durableName: string;
  streamName: string;
  /** Creates the streams and the durable consumer if needed, then handles messages until `stop`. */
  start(): Promise<void>;
  /** Stops pulling, finishes the messages already received, then returns. */
  stop(): Promise<void>;
  registerMetrics(registry: Registry): void;
};

// Unordered subscribers: the server's own default for outstanding messages.
const UNORDERED_MAX_ACK_PENDING = 1000;
// JetStream API error code (nats-server's errors.json).
const CONSUMER_ALREADY_EXISTS = 10148;

/**
 * Feeds a subscription from a service's JetStream stream through a durable
 * pull consumer (explicit acknowledgement). Each message runs
 * `handleEventOnce` (inbox + handler in one transaction, so a redelivery has
 * no second effect) and is acknowledged only after that commits. A failure is
 * sorted by `classifyFailure`: retryable → `nak` with exponential backoff
 * until `maxDeliver` deliveries; permanent or exhausted → published to
 * `keel.dead.<service>.<subscriber>` (stream `KEEL_DEAD_<SERVICE>`), logged,
 * counted, and terminated. An ordered subscription gets `max_ack_pending` 1:
 * the consumer's messages go one at a time in stream order, which preserves
 * per-aggregate order at the cost of all parallelism.
 *
 * @example
 * const consumer = createJetStreamConsumer({
 *   connection: nats, database, logger, service: 'orders',
 *   subscription: { name: 'billing.orders', eventTypes: ['orders.order_placed.v1'],
 *     isOrderedPerAggregate: true, maxAttempts: 10, handler: onOrderPlaced },
 * });
 * await consumer.start();
 * // on shutdown, before nats.close() and database.close():
 * await consumer.stop();
 */
export function createJetStreamConsumer(options: JetStreamConsumerOptions): JetStreamConsumer {
  const { connection, database, subscription, service } = options;
  validateSubscriptions([subscription]);
  assertServiceName(service);
  const filterSubjects = consumerFilterSubjects(service, subscription.eventTypes);
  const durableName = options.durableName ?? durableNameFor(subscription.name);
  const streamName = eventStreamName(service);
  const maxDeliver = options.maxDeliver ?? subscription.maxAttempts;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) {
    throw invalidNatsSettings(`Consumer ${durableName}: maxDeliver must be an integer from 1`);
  }
  const isOrdered = subscription.isOrderedPerAggregate;
  const concurrency = isOrdered ? 1 : (options.concurrency ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw invalidNatsSettings(`Consumer ${durableName}: concurrency must be an integer from 1`);
  }
  const backoff = options.backoff ?? subscription.retry ?? DEFAULT_RETRY_POLICY;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const random = options.random ?? Math.random;
  const logger = options.logger.child({ component: 'jetstream-consumer', subscriber: subscription.name });
  let metrics: ConsumerMetrics | undefined;

  function consumerConfig(): Partial<ConsumerConfig> {
    // Servers before 2.10 take a single filter: such a consumer reads the
    // whole service and skips the other types itself (acknowledged unhandled).
    // Both keys are always present, one undefined, because an update merges
    // into the stored config.
    const filter =
      filterSubjects.length > 1 && isServerAtLeast(connection.serverVersion(), 2, 10)
        ? { filter_subject: undefined, filter_subjects: filterSubjects }
        : {
            filter_subject: filterSubjects.length === 1 ? filterSubjects[0] : serviceEventsSubject(service),
            filter_subjects: undefined,
          };
    return {
      durable_name: durableName,
      description: `Keel subscriber ${subscription.name}`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: options.deliverPolicy === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      // Counted by us, not the server: at the limit we publish a dead letter
      // before terminating, and a message the server gave up on would be lost.
      max_deliver: -1,
      max_ack_pending: isOrdered ? 1 : UNORDERED_MAX_ACK_PENDING,
      ...filter,
    };
  }

  async function ensureDurableConsumer(jsm: JetStreamManager): Promise<void> {
    const config = consumerConfig();
    const {
      ack_policy: _ackPolicy,
      deliver_policy: _deliverPolicy,
      durable_name: _name,
      ...updatable
    } = config;
    try {
      await jsm.consumers.info(streamName, durableName);
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ConsumerNotFoundError')) throw error;
      try {
        await jsm.consumers.add(streamName, config);
        return;
      } catch (addError) {
        // Created by another process meanwhile.
        if (apiErrorCode(addError) !== CONSUMER_ALREADY_EXISTS) throw addError;
      }
    }
    await jsm.consumers.update(streamName, durableName, updatable);
  }

  async function publishDeadLetter(message: JsMsg, event: EventEnvelope | undefined, code: string) {
    const deadLetterHeaders = headers();
    deadLetterHeaders.set('Keel-Subscriber', subscription.name);
    deadLetterHeaders.set('Keel-Error-Code', code);
    deadLetterHeaders.set('Keel-Deliveries', String(message.info.deliveryCount));
    deadLetterHeaders.set('Keel-Source-Stream', message.info.stream);
    deadLetterHeaders.set('Keel-Source-Sequence', String(message.info.streamSequence));
    deadLetterHeaders.set('Keel-Source-Subject', message.subject);
    if (event !== undefined) deadLetterHeaders.set('Keel-Event-Id', event.id);
    const traceparent = message.headers?.get('traceparent');
    if (traceparent) deadLetterHeaders.set('traceparent', traceparent);
    await connection.jetstream.publish(deadLetterSubject(service, subscription.name), message.data, {
      // The same message dead-lettered twice (terminate lost, redelivered) is stored once.
      msgID: `${durableName}-${message.info.streamSequence}`,
      headers: deadLetterHeaders,
      expect: { streamName: deadLetterStreamName(service) },
    });
  }

  async function handleMessage(message: JsMsg): Promise<void> {
    // A long handler tells the server it is still working, or the message
    // would be redelivered to another process mid-transaction.
    const keepAlive = setInterval(
      () => reply(message, 'working', () => message.working()),
      Math.max(ackWaitMs / 2, 500),
    );
    let event: EventEnvelope | undefined;
    let isApplied: boolean;
    try {
      event = parseEnvelope(message.data);
      if (!isSubscribedTo(subscription, event.type)) {
        reply(message, 'ack', () => message.ack());
        return;
      }
      isApplied = await handleEventOnce(database, subscription, event);
    } catch (error) {
      await settleFailure(message, event, error);
      return;
    } finally {
      clearInterval(keepAlive);
    }
    // Only after the commit: a crash before it redelivers, and the inbox
    // recognises the event if the commit did happen.
    reply(message, 'ack', () => message.ack());
    metrics?.record(subscription.name, isApplied ? 'applied' : 'duplicate');
  }

  /**
   * Sends an acknowledgement without letting a closed connection throw: the
   * server then redelivers the message (after ack_wait), which the inbox or
   * the retry logic handles.
   */
  function reply(message: JsMsg, kind: string, send: () => void): void {
    try {
      send();
    } catch (error) {
      logger.warn(
        { streamSequence: message.info.streamSequence, reply: kind, err: describeError(error) },
        'jetstream acknowledgement not sent; the message will be redelivered',
      );
    }
  }

  async function settleFailure(message: JsMsg, event: EventEnvelope | undefined, error: unknown) {
    const failure = classifyFailure(error);
    const deliveryCount = message.info.deliveryCount;
    const delayMs = computeRetryDelayMs(deliveryCount, backoff, random);
    const fields = {
      eventId: event?.id,
      eventType: event?.type,
      streamSequence: message.info.streamSequence,
      delivery: deliveryCount,
      errorCode: failure.code,
      // AppErrors are described by their code; anything else needs its
      // message to be diagnosed. Payloads are never logged.
      ...(isAppError(error) ? {} : { err: describeError(error) }),
    };
    if (!failure.isPermanent && deliveryCount < maxDeliver) {
      reply(message, 'nak', () => message.nak(delayMs));
      metrics?.record(subscription.name, 'retrying');
      logger.warn({ ...fields, delayMs }, 'event handler failed; will retry');
      return;
    }
    try {
      await publishDeadLetter(message, event, failure.code);
    } catch (deadLetterError) {
      // Not terminated: the message comes back and is dead-lettered then.
      reply(message, 'nak', () => message.nak(delayMs));
      logger.error(
        { ...fields, deadLetterError: describeError(deadLetterError) },
        'event dead-lettering failed; the message will be redelivered',
      );
      return;
    }
    // Servers before 2.11 do not parse a reason: "+TERM <reason>" would be
    // taken for no acknowledgement at all and redelivered after ack_wait.
    const reason = isServerAtLeast(connection.serverVersion(), 2, 11) ? failure.code : undefined;
    reply(message, 'term', () => message.term(reason));
    metrics?.record(subscription.name, 'dead');
    logger.error(fields, 'event delivery dead-lettered');
  }

  async function processMessages(messages: ConsumerMessages): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    try {
      for await (const message of messages) {
        const task: Promise<void> = handleMessage(message).finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (inFlight.size >= concurrency) await Promise.race(inFlight);
      }
    } catch (error) {
      logger.error({ err: describeError(error) }, 'jetstream consumer stopped by an error');
    } finally {
      await Promise.all(inFlight);
    }
  }

  async function logNotifications(messages: ConsumerMessages): Promise<void> {
    for await (const notification of messages.status()) {
      if (
        notification.type === 'consumer_deleted' ||
        notification.type === 'consumer_not_found' ||
        notification.type === 'stream_not_found' ||
        notification.type === 'heartbeats_missed'
      ) {
        logger.warn({ notification }, 'jetstream consumer cannot pull messages');
      }
    }
  }

  let messages: ConsumerMessages | undefined;
  let isStopping = false;
  let running: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  return {
    durableName,
    streamName,
    start() {
      starting ??= (async () => {
        let pulled: ConsumerMessages;
        try {
          const jsm = await connection.manager();
          // Created with the defaults when no producer has published yet;
          // never updated from here, the relay's settings decide retention.
          await ensureServiceStream(jsm, { service, isUpdatingExisting: false });
          await ensureDeadLetterStream(jsm, { service, ...options.deadLetterStream });
          await ensureDurableConsumer(jsm);
          const consumer = await connection.jetstream.consumers.get(streamName, durableName);
          pulled = await consumer.consume({ max_messages: isOrdered ? 1 : Math.max(concurrency * 2, 10) });
        } catch (error) {
          throw toNatsFailure(error, `start consumer ${durableName}`);
        }
        messages = pulled;
        isStopping = false;
        void logNotifications(pulled).catch(() => undefined);
        running = processMessages(pulled).then(() => {
          if (!isStopping) logger.error('jetstream consumer stopped: its connection closed');
        });
        logger.info({ stream: streamName, durableName, filterSubjects }, 'jetstream consumer started');
      })().catch((error: unknown) => {
        starting = undefined;
        throw error;
      });
      return starting;
    },
    async stop() {
      await starting?.catch(() => undefined);
      isStopping = true;
      // Buffered messages are still yielded after close, and handled.
      await messages?.close();
      await running;
      messages = undefined;
      running = undefined;
      starting = undefined;
    },
    registerMetrics(registry) {
      metrics = createConsumerMetrics(registry);
    },
  };
}

function describeError(error: unknown): { name: string; message: string; code?: string } {
  if (!(error instanceof Error)) return { name: 'non-error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string'
    ? { name: error.name, message: error.message, code }
    : { name: error.name, message: error.message };
}
