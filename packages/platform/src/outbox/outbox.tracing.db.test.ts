import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../observability/logger.ts';
import { getTracer, startTracing, type Tracing } from '../observability/tracing.ts';
import { createTestDatabase, type TestDatabase } from '../testing/test-database.ts';
import { createEventBus } from './outbox.dispatcher.ts';
import {
  buildEventInput,
  createManualClock,
  drainBus,
  emitCommitted,
  uniqueNames,
} from './outbox.factories.ts';

// The global tracer provider can be registered once per process, so the
// outbox's tracing tests live in this file alone.
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let testDb: TestDatabase;

beforeAll(async () => {
  tracing = startTracing({ serviceName: 'test', exporter });
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});

afterAll(async () => {
  await testDb?.drop();
  await tracing?.shutdown();
});

describe('trace context through the outbox', () => {
  it("stamps the emitting span's traceparent and runs the handler in a consumer span continuing that trace", async () => {
    const names = uniqueNames();
    let handlerTraceId: string | undefined;
    const bus = createEventBus({
      database: testDb.database,
      logger: createLogger({ level: 'silent' }),
      subscriptions: [
        {
          name: names.subscriber('traced'),
          eventTypes: [names.type('happened')],
          isOrderedPerAggregate: false,
          maxAttempts: 1,
          async handler() {
            handlerTraceId = trace.getActiveSpan()?.spanContext().traceId;
          },
        },
      ],
      pollIntervalMs: 50,
      batchSize: 10,
      clock: createManualClock(),
      isListening: false,
    });
    await bus.register();

    const { event, producer } = await getTracer().startActiveSpan('POST /orders', async (span) => {
      const [emitted] = await emitCommitted(testDb.database, [
        buildEventInput({ type: names.type('happened') }),
      ]);
      span.end();
      return { event: emitted, producer: span.spanContext() };
    });
    await drainBus(bus);

    expect(event?.traceparent).toBe(`00-${producer.traceId}-${producer.spanId}-01`);
    const consumer = exporter
      .getFinishedSpans()
      .find((span) => span.name === `process ${names.type('happened')}`);
    expect(consumer?.kind).toBe(SpanKind.CONSUMER);
    expect(consumer?.spanContext().traceId).toBe(producer.traceId);
    expect(consumer?.parentSpanContext?.spanId).toBe(producer.spanId);
    expect(consumer?.attributes['messaging.message.id']).toBe(event?.id);
    expect(handlerTraceId).toBe(producer.traceId);
  });

  it('runs a batch handler in one consumer span of its own, linked to every producer span', async () => {
    const names = uniqueNames();
    const subscriber = names.subscriber('batched');
    const bus = createEventBus({
      database: testDb.database,
      logger: createLogger({ level: 'silent' }),
      subscriptions: [
        {
          name: subscriber,
          eventTypes: [names.type('happened')],
          isOrderedPerAggregate: false,
          maxAttempts: 1,
          async handler() {},
          async handleBatch() {},
        },
      ],
      pollIntervalMs: 50,
      batchSize: 10,
      clock: createManualClock(),
      isListening: false,
    });
    await bus.register();

    const producers = [];
    for (const route of ['POST /orders', 'PATCH /orders/1']) {
      producers.push(
        await getTracer().startActiveSpan(route, async (span) => {
          await emitCommitted(testDb.database, [buildEventInput({ type: names.type('happened') })]);
          span.end();
          return span.spanContext();
        }),
      );
    }
    await drainBus(bus);

    const consumer = exporter.getFinishedSpans().find((span) => span.name === `process ${subscriber}`);
    expect(consumer?.kind).toBe(SpanKind.CONSUMER);
    expect(consumer?.parentSpanContext).toBeUndefined();
    expect(consumer?.attributes['messaging.batch.message_count']).toBe(2);
    expect(consumer?.links.map((link) => link.context.spanId)).toEqual(producers.map((p) => p.spanId));
    expect(producers.map((p) => p.traceId)).not.toContain(consumer?.spanContext().traceId);
  });
});
