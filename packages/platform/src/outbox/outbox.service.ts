import type { EventEnvelope } from '@keel/contracts';
import { context, type Link, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RawBuilder } from 'kysely';
import { v7 as uuidv7 } from 'uuid';
import {
  type AnyTransaction,
  type AnyWriter,
  asPlatformTables,
  type Database,
  signalAfterCommit,
} from '../db/database.ts';
import { getTracer } from '../observability/tracing.ts';
import { deadLetterNotFound, invalidEvent, invalidLimit } from './outbox.errors.ts';
import {
  deleteEventsBefore,
  deleteSubscriber,
  EVENTS_CHANNEL,
  eventInsertCtes,
  findDeadLetters,
  insertEvent,
  insertInboxEntry,
  type OutboxTables,
  reviveDeadLetter,
} from './outbox.repository.ts';
import {
  type DeadLetter,
  type EmitOptions,
  type EventInput,
  formatTraceparent,
  isEventType,
  parseTraceparent,
  type Subscription,
} from './outbox.ts';

type BatchSubscription = Pick<Subscription, 'name'> & Required<Pick<Subscription, 'handleBatch'>>;

/**
 * Writes an event to the outbox inside the caller's transaction, so it is
 * delivered if and only if the transaction commits, and fans it out to every
 * subscriber of its type registered at that moment. Stamps a UUIDv7 id, the
 * time, the schema version and the active span's `traceparent`.
 * Throws 500 `events.invalid_event` for a malformed type or, with
 * `options.definition`, a payload off its contract.
 *
 * @example
 * await db.transaction(async (trx) => {
 *   await insertOrder(trx, order);
 *   await emitEvent(trx, {
 *     type: 'orders.order_placed.v1', aggregateType: 'order', aggregateId: order.id,
 *     payload: { orderId: order.id, totalMinor: order.totalMinor }, occurredAt: clock.now(),
 *   }, { definition: OrderPlacedV1 });
 * });
 */
export async function emitEvent<EventType extends string, Payload>(
  trx: AnyTransaction,
  event: EventInput<EventType, Payload>,
  options: EmitOptions = {},
): Promise<EventEnvelope<EventType, Payload>> {
  const envelope = buildEnvelope(event, options);
  await insertEvent(asPlatformTables<OutboxTables>(trx), envelope, isNotifyingInside(trx, options));
  return envelope;
}

/**
 * Whether the event's SQL must `NOTIFY` inside the transaction: only when
 * asked to notify and the transaction cannot signal after its commit (it was
 * not opened by `Db.transaction`). A notify inside the transaction would
 * serialise its commit with every other notifying commit (see `CommitSignals`).
 */
function isNotifyingInside(trx: AnyWriter, options: EmitOptions): boolean {
  if (options.isNotifying === false) return false;
  return !signalAfterCommit(trx, EVENTS_CHANNEL);
}

/** An event ready to be written by the caller's own statement (see `prepareEvent`). */
export type PreparedEvent<EventType extends string = string, Payload = unknown> = {
  envelope: EventEnvelope<EventType, Payload>;
  /**
   * The outbox write as common table expressions (`outbox_event`,
   * `outbox_deliveries`) for the statement's WITH list, written only when
   * `condition` selects a row. One event per statement: the names are fixed.
   */
  insertWhen(condition: RawBuilder<unknown>): RawBuilder<unknown>;
};

/**
 * `emitEvent` for a write that is already one statement: the same envelope
 * (id, time, version, trace context, contract check), but the outbox insert
 * and fan-out join the caller's statement instead of costing a round trip of
 * their own. The statement must run in `trx`; the event is delivered if and
 * only if it commits. `trx` is a transaction, or `Db.autocommit`'s handle when
 * the whole write is that one statement (it commits as the statement ends, and
 * the dispatchers are woken after it, without a `NOTIFY` inside it).
 *
 * @example
 * const placed = prepareEvent(trx, { type: OrderPlacedV1.type, ... }, { definition: OrderPlacedV1 });
 * await sql`with placed_order as (insert into orders.orders ... returning id),
 *   ${placed.insertWhen(sql`select 1 from placed_order`)}
 *   select ...`.execute(trx);
 */
export function prepareEvent<EventType extends string, Payload>(
  trx: AnyWriter,
  event: EventInput<EventType, Payload>,
  options: EmitOptions = {},
): PreparedEvent<EventType, Payload> {
  const envelope = buildEnvelope(event, options);
  const isNotifying = isNotifyingInside(trx, options);
  return {
    envelope,
    insertWhen: (condition) => eventInsertCtes(envelope, isNotifying, condition),
  };
}

/**
 * Stamps a UUIDv7 id, the time, the schema version and the active span's
 * `traceparent`; throws 500 `events.invalid_event` for a malformed type or,
 * with `options.definition`, a payload off its contract.
 */
function buildEnvelope<EventType extends string, Payload>(
  event: EventInput<EventType, Payload>,
  options: EmitOptions,
): EventEnvelope<EventType, Payload> {
  if (!isEventType(event.type)) {
    throw invalidEvent(event.type, 'the type must look like <service>.<event_past_tense>.v<major>');
  }
  const traceparent = formatTraceparent(trace.getActiveSpan()?.spanContext());
  const envelope: EventEnvelope<EventType, Payload> = {
    id: (options.generateId ?? uuidv7)(),
    type: event.type,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    occurredAt: (event.occurredAt ?? new Date()).toISOString(),
    schemaVersion: event.schemaVersion ?? options.definition?.schemaVersion ?? 1,
    ...(traceparent === undefined ? {} : { traceparent }),
    payload: event.payload,
  };
  const { definition } = options;
  if (definition !== undefined) {
    if (definition.type !== event.type) {
      throw invalidEvent(event.type, `the definition is for ${definition.type}`);
    }
    if (!definition.isEvent(envelope)) {
      // The payload is not echoed: it may hold personal data.
      throw invalidEvent(event.type, 'the envelope does not match its contract');
    }
  }
  return envelope;
}

export const DEAD_LETTER_LIST_LIMIT_MAX = 500;

/**
 * Dead letters, most recently dead first, optionally of one subscriber. No
 * payloads: look the event up by id if you need it.
 *
 * @example
 * const deadLetters = await listDeadLetters(database, { subscriber: 'orders.analytics' });
 */
export async function listDeadLetters(
  database: Database,
  options: { subscriber?: string; limit?: number } = {},
): Promise<DeadLetter[]> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > DEAD_LETTER_LIST_LIMIT_MAX) {
    throw invalidLimit(DEAD_LETTER_LIST_LIMIT_MAX);
  }
  return database
    .typed<OutboxTables>()
    .run((db) => findDeadLetters(db, { limit, ...(options.subscriber === undefined ? {} : options) }));
}

/**
 * Puts a dead letter back in its subscriber's queue with a fresh attempt
 * budget, due now. For an ordered subscriber it is delivered before that
 * aggregate's still-pending later events. Throws 404
 * `events.dead_letter_not_found`.
 *
 * @example
 * await replayDeadLetter(database, 'orders.analytics', eventId);
 */
export async function replayDeadLetter(
  database: Database,
  subscriber: string,
  eventId: string,
): Promise<void> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(eventId)) {
    throw deadLetterNotFound();
  }
  const isRevived = await database
    .typed<OutboxTables>()
    .transaction((trx) => reviveDeadLetter(trx, subscriber, eventId));
  if (!isRevived) throw deadLetterNotFound();
}

/**
 * Deletes inbox entries and delivered events older than `before`, `batchSize`
 * rows at a time until none is left. Keep `before` well behind the longest a
 * redelivery can take (days, not minutes): an inbox entry removed too early
 * lets a late duplicate apply twice.
 *
 * @example
 * await pruneEvents(database, { before: new Date(Date.now() - 7 * 86_400_000) });
 */
export async function pruneEvents(
  database: Database,
  options: { before: Date; batchSize?: number },
): Promise<{ inboxEntries: number; events: number }> {
  const batchSize = options.batchSize ?? 5000;
  const total = { inboxEntries: 0, events: 0 };
  for (;;) {
    const deleted = await database
      .typed<OutboxTables>()
      .transaction((trx) => deleteEventsBefore(trx, options.before, batchSize));
    total.inboxEntries += deleted.inboxEntries;
    total.events += deleted.events;
    if (deleted.inboxEntries < batchSize && deleted.events < batchSize) return total;
  }
}

/**
 * Forgets a subscriber that no longer exists in code: its subscription rows
 * (so new events stop fanning out to it) and its queued and dead deliveries.
 * Its inbox entries stay until `pruneEvents` ages them out. Run it after every
 * process running the subscriber is gone, or a bus starting with it
 * registers it again.
 *
 * @example
 * await retireSubscription(database, 'orders.legacy_projection');
 */
export async function retireSubscription(
  database: Database,
  subscriber: string,
): Promise<{ deliveries: number }> {
  return database.typed<OutboxTables>().transaction((trx) => deleteSubscriber(trx, subscriber));
}

/**
 * The exactly-once core every transport shares: inside `trx`, records the
 * event in the subscriber's inbox and runs the handler only if it was not
 * there yet. Returns false for a duplicate. The caller commits (both stick)
 * or rolls back (neither does).
 */
export async function applyEventOnce(
  trx: AnyTransaction,
  subscription: Pick<Subscription, 'name' | 'handler'>,
  event: EventEnvelope,
): Promise<boolean> {
  const isFirst = await insertInboxEntry(asPlatformTables<OutboxTables>(trx), subscription.name, event.id);
  if (!isFirst) return false;
  await runHandlerInSpan(trx, subscription, event);
  return true;
}

/**
 * Handles one event received from another transport (a JetStream consumer):
 * its own transaction, the inbox and the handler. Throws what the handler
 * throws, for the caller to nak or terminate the message.
 *
 * @example
 * const isApplied = await handleEventOnce(database, subscription, OrderPlacedV1.parse(json));
 */
export async function handleEventOnce(
  database: Database,
  subscription: Pick<Subscription, 'name' | 'handler'>,
  event: EventEnvelope,
): Promise<boolean> {
  return database.typed<unknown>().transaction((trx) => applyEventOnce(trx, subscription, event));
}

/** Runs the handler in a consumer span, child of the producer's trace (the `traceparent`). */
export async function runHandlerInSpan(
  trx: AnyTransaction,
  subscription: Pick<Subscription, 'name' | 'handler'>,
  event: EventEnvelope,
): Promise<void> {
  const producer = parseTraceparent(event.traceparent);
  const parent = producer === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, producer);
  const span = getTracer().startSpan(
    `process ${event.type}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'keel_outbox',
        'messaging.operation.type': 'process',
        'messaging.destination.name': event.type,
        'messaging.message.id': event.id,
        'messaging.consumer.group.name': subscription.name,
      },
    },
    parent,
  );
  try {
    await context.with(trace.setSpan(parent, span), () => subscription.handler(event, trx));
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs a batch handler in one consumer span. A batch has many producers, so,
 * as OpenTelemetry's messaging conventions ask, the span starts a trace of its
 * own and links to each event's producer span instead of having a parent.
 */
export async function runBatchHandlerInSpan(
  trx: AnyTransaction,
  subscription: BatchSubscription,
  events: readonly EventEnvelope[],
): Promise<void> {
  const links: Link[] = [];
  for (const event of events) {
    const producer = parseTraceparent(event.traceparent);
    if (producer !== undefined) links.push({ context: producer });
  }
  const span = getTracer().startSpan(
    `process ${subscription.name}`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        'messaging.system': 'keel_outbox',
        'messaging.operation.type': 'process',
        'messaging.batch.message_count': events.length,
        'messaging.consumer.group.name': subscription.name,
      },
    },
    ROOT_CONTEXT,
  );
  try {
    await context.with(trace.setSpan(ROOT_CONTEXT, span), () => subscription.handleBatch(events, trx));
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}
