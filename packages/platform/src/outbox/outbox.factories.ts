import { randomBytes, randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@keel/contracts';
import type { Database } from '../db/database.ts';
import type { EventBus } from './outbox.dispatcher.ts';
import { emitEvent } from './outbox.service.ts';
import type { EmitOptions, EventInput } from './outbox.ts';

/**
 * Names no other test uses: subscriptions live in the database, so a test
 * that reused another's event type would receive its deliveries too.
 */
export function uniqueNames(): { type: (name: string) => string; subscriber: (name: string) => string } {
  const tag = `t${randomBytes(4).toString('hex')}`;
  return {
    type: (name) => `tests.${tag}_${name}.v1`,
    subscriber: (name) => `tests.${tag}.${name}`,
  };
}

/** Test data: an event input with a fresh aggregate id, overridable field by field. */
export function buildEventInput(overrides: Partial<EventInput> & { type: string }): EventInput {
  return {
    aggregateType: 'thing',
    aggregateId: randomUUID(),
    payload: { note: 'hello', amountMinor: 1250 },
    ...overrides,
  };
}

/** Emits events in one committed transaction; returns their envelopes in order. */
export async function emitCommitted(
  database: Database,
  events: EventInput[],
  options: EmitOptions = {},
): Promise<EventEnvelope[]> {
  return database.typed<unknown>().transaction(async (trx) => {
    const envelopes: EventEnvelope[] = [];
    for (const event of events) envelopes.push(await emitEvent(trx, event, options));
    return envelopes;
  });
}

/** A clock tests move by hand. */
export function createManualClock(start = new Date()): { now: () => Date; advance: (ms: number) => void } {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    advance(ms) {
      current += ms;
    },
  };
}

/** Runs the bus until nothing is due; returns the number of deliveries attempted. */
export async function drainBus(bus: EventBus): Promise<number> {
  let total = 0;
  for (let run = 0; run < 1000; run += 1) {
    const attempted = await bus.runOnce();
    if (attempted === 0) return total;
    total += attempted;
  }
  throw new Error('the bus still had due deliveries after 1000 runs');
}
