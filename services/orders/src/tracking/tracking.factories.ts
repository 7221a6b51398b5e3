import { randomUUID } from 'node:crypto';
import {
  type EventDefinition,
  type EventEnvelope,
  OrderCancelledV1,
  OrderPlacedV1,
  type OrderStatus,
  OrderStatusChangedV1,
} from '@keel/contracts';
import type { Database } from '@keel/platform/db';
import { emitEvent } from '@keel/platform/outbox';
import type { TSchema } from 'typebox';

// Test data for the tracking feed: order events as the orders feature emits
// them, built from the contracts, so these tests do not depend on that feature.

export type TrackedOrder = { orderId: string; outletId: string; customerId: string };

export type OrderEvent = {
  definition: EventDefinition<string, TSchema>;
  payload: TrackedOrder & Record<string, unknown>;
};

export function buildTrackedOrder(overrides: Partial<TrackedOrder> & { outletId: string }): TrackedOrder {
  return { orderId: randomUUID(), customerId: randomUUID(), ...overrides };
}

const at = () => new Date().toISOString();

export function orderPlaced(order: TrackedOrder): OrderEvent {
  return {
    definition: OrderPlacedV1,
    payload: {
      ...order,
      version: 1,
      currency: 'EUR',
      totalMinor: 899,
      lines: [{ menuItemId: randomUUID(), name: 'Burger', quantity: 1, unitPriceMinor: 899 }],
      placedAt: at(),
    },
  };
}

/** The status changes from PLACED through `statuses`, versions 2, 3, … */
export function statusChanges(order: TrackedOrder, statuses: OrderStatus[]): OrderEvent[] {
  let from: OrderStatus = 'PLACED';
  return statuses.map((to, index) => {
    const event: OrderEvent = {
      definition: OrderStatusChangedV1,
      payload: {
        ...order,
        from,
        to,
        version: index + 2,
        placedAt: at(),
        changedAt: at(),
        changedBy: randomUUID(),
      },
    };
    from = to;
    return event;
  });
}

export function orderCancelled(order: TrackedOrder, from: OrderStatus, version: number): OrderEvent {
  return {
    definition: OrderCancelledV1,
    payload: {
      ...order,
      from,
      version,
      cancelledBy: 'staff',
      reason: 'out of buns',
      currency: 'EUR',
      totalMinor: 899,
      releasedStock: [],
      placedAt: at(),
      cancelledAt: at(),
    },
  };
}

/** The envelope `emitEvent` would write, for feeding a handler directly. */
export function toEnvelope(event: OrderEvent): EventEnvelope {
  return {
    id: randomUUID(),
    type: event.definition.type,
    aggregateType: 'order',
    aggregateId: event.payload.orderId,
    occurredAt: at(),
    schemaVersion: event.definition.schemaVersion,
    payload: event.payload,
  };
}

/** Emits the events, in order, in one committed transaction (as the orders feature would). */
export async function emitOrderEvents(database: Database, events: OrderEvent[]): Promise<EventEnvelope[]> {
  return database.typed<unknown>().transaction(async (trx) => {
    const envelopes: EventEnvelope[] = [];
    for (const event of events) {
      envelopes.push(
        await emitEvent(
          trx,
          {
            type: event.definition.type,
            aggregateType: 'order',
            aggregateId: event.payload.orderId,
            payload: event.payload,
          },
          { definition: event.definition },
        ),
      );
    }
    return envelopes;
  });
}
