import { assertNever } from '../errors/index.ts';
import { Counter, type Registry } from '../observability/index.ts';

export type PublishOutcome = 'stored' | 'duplicate' | 'failed';
export type ConsumeOutcome = 'applied' | 'duplicate' | 'retrying' | 'dead';

export type RelayMetrics = { record(service: string, outcome: PublishOutcome): void };
export type ConsumerMetrics = { record(subscriber: string, outcome: ConsumeOutcome): void };

/**
 * The relay's counters, labelled by service (a bounded set). Duplicates are
 * republishes the stream dropped by `Nats-Msg-Id`: a few after a crash are
 * expected, a steady stream means the outbox is not recording deliveries.
 */
export function createRelayMetrics(registry: Registry): RelayMetrics {
  const stored = counter(registry, 'keel_jetstream_published_total', 'Events stored in JetStream', 'service');
  const duplicates = counter(
    registry,
    'keel_jetstream_publish_duplicates_total',
    'Republished events JetStream dropped by message id',
    'service',
  );
  const failed = counter(
    registry,
    'keel_jetstream_publish_failures_total',
    'Failed publishes (the outbox retries them)',
    'service',
  );
  return {
    record(service, outcome) {
      switch (outcome) {
        case 'stored':
          stored.inc({ service });
          return;
        case 'duplicate':
          duplicates.inc({ service });
          return;
        case 'failed':
          failed.inc({ service });
          return;
        default:
          assertNever(outcome);
      }
    },
  };
}

/** A consumer's counters, labelled by subscriber; several consumers share them. */
export function createConsumerMetrics(registry: Registry): ConsumerMetrics {
  const applied = counter(
    registry,
    'keel_jetstream_handled_total',
    'Events a JetStream subscriber handled (first delivery of each event)',
    'subscriber',
  );
  const duplicates = counter(
    registry,
    'keel_jetstream_duplicates_total',
    'Redeliveries the inbox recognised and skipped',
    'subscriber',
  );
  const failed = counter(
    registry,
    'keel_jetstream_failed_total',
    'Failed handler attempts that will be retried (nak with delay)',
    'subscriber',
  );
  const dead = counter(
    registry,
    'keel_jetstream_dead_lettered_total',
    'Messages terminated and published to the dead-letter stream',
    'subscriber',
  );
  return {
    record(subscriber, outcome) {
      switch (outcome) {
        case 'applied':
          applied.inc({ subscriber });
          return;
        case 'duplicate':
          duplicates.inc({ subscriber });
          return;
        case 'retrying':
          failed.inc({ subscriber });
          return;
        case 'dead':
          dead.inc({ subscriber });
          return;
        default:
          assertNever(outcome);
      }
    },
  };
}

/** Reuses a counter already in the registry: a process runs several consumers. */
function counter<Label extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: Label,
): Counter<Label> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<Label>;
  return new Counter({ name, help, labelNames: [label], registers: [registry] });
}
