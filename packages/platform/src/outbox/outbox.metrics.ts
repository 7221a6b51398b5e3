import { assertNever } from '../errors/index.ts';
import { Counter, Histogram, type Registry } from '../observability/metrics.ts';

export type DeliveryOutcome =
  | { kind: 'delivered'; subscriber: string; lagSeconds: number; handlerSeconds: number }
  | { kind: 'duplicate'; subscriber: string }
  | { kind: 'retrying'; subscriber: string }
  | { kind: 'dead'; subscriber: string };

export type OutboxMetrics = { record(outcome: DeliveryOutcome): void };

const LAG_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
const HANDLER_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The dispatcher's instruments, labelled by subscriber only (a bounded set).
 * `keel_event_lag_seconds` runs from the event's insert, at the end of the
 * emitting transaction, to the commit of the handler's transaction being
 * issued: the delivery latency a subscriber sees, retries included.
 */
export function createOutboxMetrics(registry: Registry): OutboxMetrics {
  const delivered = new Counter({
    name: 'keel_events_delivered_total',
    help: 'Events handled by a subscriber (first delivery of each event)',
    labelNames: ['subscriber'],
    registers: [registry],
  });
  const duplicates = new Counter({
    name: 'keel_events_duplicates_total',
    help: 'Redeliveries the inbox recognised and skipped',
    labelNames: ['subscriber'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'keel_events_failed_total',
    help: 'Failed handler attempts that will be retried',
    labelNames: ['subscriber'],
    registers: [registry],
  });
  const dead = new Counter({
    name: 'keel_events_dead_lettered_total',
    help: 'Deliveries dead-lettered (permanent error or attempts exhausted)',
    labelNames: ['subscriber'],
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'keel_event_lag_seconds',
    help: 'Time from an event being written to its handler finishing, per subscriber',
    labelNames: ['subscriber'],
    buckets: LAG_BUCKETS_SECONDS,
    registers: [registry],
  });
  const handlerDuration = new Histogram({
    name: 'keel_event_handler_duration_seconds',
    help: 'Time a successful handler took, per subscriber',
    labelNames: ['subscriber'],
    buckets: HANDLER_BUCKETS_SECONDS,
    registers: [registry],
  });
  return {
    record(outcome) {
      const labels = { subscriber: outcome.subscriber };
      switch (outcome.kind) {
        case 'delivered':
          delivered.inc(labels);
          lag.observe(labels, outcome.lagSeconds);
          handlerDuration.observe(labels, outcome.handlerSeconds);
          return;
        case 'duplicate':
          duplicates.inc(labels);
          return;
        case 'retrying':
          failed.inc(labels);
          return;
        case 'dead':
          dead.inc(labels);
          return;
        default:
          assertNever(outcome);
      }
    },
  };
}
