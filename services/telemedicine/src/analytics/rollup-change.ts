import {
  ConsultationBookedV1,
  ConsultationCancelledV1,
  ConsultationConfirmedV1,
  ConsultationExpiredV1,
  ConsultationRescheduledV1,
  ConsultationStatusChangedV1,
  type EventEnvelope,
  PaymentSucceededV1,
  RefundIssuedV1,
  SlotsChangedV1,
} from '@keel/contracts';
import { assertNever } from '@keel/platform/errors';
import { utcDayOf } from './analytics.ts';

// What each event adds to `telemedicine.analytics_daily`, free of I/O.

/** The event types the rollup follows. */
export const ANALYTICS_EVENT_TYPES = [
  ConsultationBookedV1.type,
  ConsultationConfirmedV1.type,
  ConsultationExpiredV1.type,
  ConsultationCancelledV1.type,
  ConsultationRescheduledV1.type,
  ConsultationStatusChangedV1.type,
  PaymentSucceededV1.type,
  RefundIssuedV1.type,
  SlotsChangedV1.type,
] as const;

/** The rollup's counters; each event adds to some of them (slots_booked also goes down). */
export type DailyDelta = {
  booked?: number;
  confirmed?: number;
  completed?: number;
  cancelled?: number;
  noShows?: number;
  expired?: number;
  revenueMinor?: number;
  refundsMinor?: number;
  slotsOffered?: number;
  slotsBooked?: number;
};

/** One row of the rollup: a UTC day, a doctor, the specialty booked under, the currency. */
export type RollupKey = { day: string; doctorId: string; specialty: string; currency: string };

/**
 * What one event does to the rollup. Slot offers name no specialty or
 * currency (a slot is booked under one later), so they are filed under the
 * doctor's first specialty and currency, which the repository reads.
 */
export type RollupChange =
  | { kind: 'counters'; rows: { key: RollupKey; delta: DailyDelta }[] }
  | { kind: 'slots_offered'; doctorId: string; offeredByDay: { day: string; count: number }[] }
  | { kind: 'none' };

type ConsultationFacts = { doctorId: string; specialty: string; startsAt: string; currency: string };

/** Consultation counts are filed under the day the consultation takes place. */
function consultationDay(facts: ConsultationFacts, delta: DailyDelta): RollupChange {
  return {
    kind: 'counters',
    rows: [
      {
        key: {
          day: utcDayOf(facts.startsAt),
          doctorId: facts.doctorId,
          specialty: facts.specialty,
          currency: facts.currency,
        },
        delta,
      },
    ],
  };
}

/**
 * The change an event makes; events of other types change nothing. Payloads
 * are parsed against their contracts (a malformed one is dead-lettered).
 */
export function rollupChangeOf(event: EventEnvelope): RollupChange {
  switch (event.type) {
    case ConsultationBookedV1.type:
      return consultationDay(ConsultationBookedV1.parse(event).payload, { booked: 1, slotsBooked: 1 });
    case ConsultationConfirmedV1.type:
      return consultationDay(ConsultationConfirmedV1.parse(event).payload, { confirmed: 1 });
    case ConsultationExpiredV1.type:
      return consultationDay(ConsultationExpiredV1.parse(event).payload, { expired: 1, slotsBooked: -1 });
    case ConsultationCancelledV1.type:
      return consultationDay(ConsultationCancelledV1.parse(event).payload, {
        cancelled: 1,
        slotsBooked: -1,
      });
    case ConsultationRescheduledV1.type: {
      const payload = ConsultationRescheduledV1.parse(event).payload;
      const previousDay = utcDayOf(payload.previousStartsAt);
      const day = utcDayOf(payload.startsAt);
      if (previousDay === day) return { kind: 'none' };
      const key = { doctorId: payload.doctorId, specialty: payload.specialty, currency: payload.currency };
      return {
        kind: 'counters',
        rows: [
          { key: { ...key, day: previousDay }, delta: { slotsBooked: -1 } },
          { key: { ...key, day }, delta: { slotsBooked: 1 } },
        ],
      };
    }
    case ConsultationStatusChangedV1.type: {
      const payload = ConsultationStatusChangedV1.parse(event).payload;
      switch (payload.to) {
        case 'COMPLETED':
          return consultationDay(payload, { completed: 1 });
        case 'NO_SHOW':
          return consultationDay(payload, { noShows: 1 });
        // Booking, confirmation, expiry and cancellation are counted from their own events.
        case 'PENDING_PAYMENT':
        case 'SCHEDULED':
        case 'IN_PROGRESS':
        case 'CANCELLED':
        case 'EXPIRED':
          return { kind: 'none' };
        default:
          return assertNever(payload.to);
      }
    }
    // Money is filed under the day it moved, not the consultation's day.
    case PaymentSucceededV1.type: {
      const payload = PaymentSucceededV1.parse(event).payload;
      return {
        kind: 'counters',
        rows: [
          {
            key: {
              day: utcDayOf(event.occurredAt),
              doctorId: payload.doctorId,
              specialty: payload.specialty,
              currency: payload.currency,
            },
            delta: { revenueMinor: payload.amountMinor },
          },
        ],
      };
    }
    case RefundIssuedV1.type: {
      const payload = RefundIssuedV1.parse(event).payload;
      return {
        kind: 'counters',
        rows: [
          {
            key: {
              day: utcDayOf(event.occurredAt),
              doctorId: payload.doctorId,
              specialty: payload.specialty,
              currency: payload.currency,
            },
            delta: { refundsMinor: payload.amountMinor },
          },
        ],
      };
    }
    case SlotsChangedV1.type: {
      const payload = SlotsChangedV1.parse(event).payload;
      // One row per day: a multi-row upsert may not touch a row twice.
      const byDay = new Map<string, number>();
      for (const { day, count } of payload.offeredByDay) byDay.set(day, (byDay.get(day) ?? 0) + count);
      const offeredByDay = [...byDay.entries()]
        .filter(([, count]) => count !== 0)
        .sort(([left], [right]) => left.localeCompare(right))
        .map(([day, count]) => ({ day, count }));
      if (offeredByDay.length === 0) return { kind: 'none' };
      return { kind: 'slots_offered', doctorId: payload.doctorId, offeredByDay };
    }
    default:
      return { kind: 'none' };
  }
}
