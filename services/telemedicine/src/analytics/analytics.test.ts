import { randomUUID } from 'node:crypto';
import {
  ConsultationBookedV1,
  ConsultationRescheduledV1,
  ConsultationStatusChangedV1,
  type EventEnvelope,
  PaymentSucceededV1,
  SlotsChangedV1,
} from '@keel/contracts';
import { describe, expect, it } from 'vitest';
import {
  type DoctorFigures,
  type RollupGroupRow,
  rankDoctors,
  rateOf,
  resolveAnalyticsRange,
  summariseAnalytics,
  utcDayOf,
} from './analytics.ts';
import { rollupChangeOf } from './rollup-change.ts';

function envelope(type: string, payload: object, occurredAt = '2031-05-01T23:30:00.000Z'): EventEnvelope {
  return {
    id: randomUUID(),
    type,
    aggregateType: 'consultation',
    aggregateId: randomUUID(),
    occurredAt,
    schemaVersion: 1,
    payload,
  };
}

const doctorId = randomUUID();
const facts = {
  consultationId: randomUUID(),
  patientId: randomUUID(),
  doctorId,
  slotId: randomUUID(),
  specialty: 'cardiology',
  // 01:30 on May 2nd in UTC, though still May 1st in New York.
  startsAt: '2031-05-01T21:30:00.000-04:00',
  endsAt: '2031-05-01T22:00:00.000-04:00',
  feeMinor: 5000,
  currency: 'EUR',
};
const key = { day: '2031-05-02', doctorId, specialty: 'cardiology', currency: 'EUR' };

describe('utcDayOf', () => {
  it('takes the UTC date whatever offset the time carries', () => {
    expect(utcDayOf(facts.startsAt)).toBe('2031-05-02');
    expect(utcDayOf(new Date('2031-05-01T23:59:59.999Z'))).toBe('2031-05-01');
  });
});

describe('resolveAnalyticsRange', () => {
  const now = new Date('2031-05-03T23:00:00.000Z');

  it('defaults to the last 30 days, today included', () => {
    expect(resolveAnalyticsRange({}, now)).toEqual({ from: '2031-04-04', to: '2031-05-03' });
    expect(resolveAnalyticsRange({ to: '2031-03-01' }, now)).toEqual({
      from: '2031-01-31',
      to: '2031-03-01',
    });
    expect(resolveAnalyticsRange({ from: '2031-05-01' }, now)).toEqual({
      from: '2031-05-01',
      to: '2031-05-03',
    });
  });

  it('allows one day and up to 366, refusing more, an inverted range and impossible dates', () => {
    expect(resolveAnalyticsRange({ from: '2031-05-03', to: '2031-05-03' }, now)).toBeDefined();
    expect(resolveAnalyticsRange({ from: '2032-01-01', to: '2032-12-31' }, now)).toBeDefined();
    for (const query of [
      { from: '2032-01-01', to: '2033-01-01' },
      { from: '2031-05-04', to: '2031-05-03' },
      { from: '2031-02-29', to: '2031-03-01' },
      { to: '2031-13-01' },
    ]) {
      expect(() => resolveAnalyticsRange(query, now), JSON.stringify(query)).toThrowError(
        expect.objectContaining({ code: 'telemedicine.analytics_invalid_range' }),
      );
    }
  });
});

describe('rollupChangeOf', () => {
  it('counts a booking on the UTC day the consultation takes place', () => {
    const event = envelope(ConsultationBookedV1.type, {
      ...facts,
      paymentId: randomUUID(),
      holdExpiresAt: '2031-05-01T00:10:00.000Z',
    });
    expect(rollupChangeOf(event)).toEqual({
      kind: 'counters',
      rows: [{ key, delta: { booked: 1, slotsBooked: 1 } }],
    });
  });

  it('counts completions and no-shows, and no other status change', () => {
    const change = (to: string) =>
      rollupChangeOf(envelope(ConsultationStatusChangedV1.type, { ...facts, from: 'IN_PROGRESS', to }));
    expect(change('COMPLETED')).toEqual({ kind: 'counters', rows: [{ key, delta: { completed: 1 } }] });
    expect(change('NO_SHOW')).toEqual({ kind: 'counters', rows: [{ key, delta: { noShows: 1 } }] });
    expect(change('IN_PROGRESS')).toEqual({ kind: 'none' });
  });

  it('files money under the day the event happened', () => {
    const event = envelope(PaymentSucceededV1.type, {
      paymentId: randomUUID(),
      consultationId: facts.consultationId,
      doctorId,
      specialty: 'cardiology',
      amountMinor: 5000,
      currency: 'EUR',
      succeededAt: '2031-05-01T23:30:00.000Z',
    });
    expect(rollupChangeOf(event)).toEqual({
      kind: 'counters',
      rows: [{ key: { ...key, day: '2031-05-01' }, delta: { revenueMinor: 5000 } }],
    });
  });

  it('moves a booked slot between days on a reschedule, and does nothing within a day', () => {
    const moved = envelope(ConsultationRescheduledV1.type, {
      ...facts,
      previousSlotId: randomUUID(),
      previousStartsAt: '2031-04-30T10:00:00.000Z',
    });
    expect(rollupChangeOf(moved)).toEqual({
      kind: 'counters',
      rows: [
        { key: { ...key, day: '2031-04-30' }, delta: { slotsBooked: -1 } },
        { key, delta: { slotsBooked: 1 } },
      ],
    });
    const sameDay = envelope(ConsultationRescheduledV1.type, {
      ...facts,
      previousSlotId: randomUUID(),
      previousStartsAt: '2031-05-02T08:00:00.000Z',
    });
    expect(rollupChangeOf(sameDay)).toEqual({ kind: 'none' });
  });

  it('merges slot offers per day, in day order, dropping days that net to zero', () => {
    const event = envelope(SlotsChangedV1.type, {
      doctorId,
      offeredByDay: [
        { day: '2031-05-03', count: 2 },
        { day: '2031-05-01', count: 4 },
        { day: '2031-05-03', count: 1 },
        { day: '2031-05-02', count: 3 },
        { day: '2031-05-02', count: -3 },
      ],
    });
    expect(rollupChangeOf(event)).toEqual({
      kind: 'slots_offered',
      doctorId,
      offeredByDay: [
        { day: '2031-05-01', count: 4 },
        { day: '2031-05-03', count: 3 },
      ],
    });
  });

  it('refuses a payload that breaks its contract', () => {
    expect(() =>
      rollupChangeOf(envelope(ConsultationBookedV1.type, { ...facts, doctorId: 'nope' })),
    ).toThrow();
  });
});

function buildRow(overrides: Partial<RollupGroupRow>): RollupGroupRow {
  return {
    dimension: 'day',
    key: '2031-05-01',
    fullName: null,
    currency: 'EUR',
    booked: 0,
    confirmed: 0,
    completed: 0,
    cancelled: 0,
    noShows: 0,
    expired: 0,
    revenueMinor: 0,
    refundsMinor: 0,
    slotsOffered: 0,
    slotsBooked: 0,
    ...overrides,
  };
}

describe('summariseAnalytics', () => {
  it('adds days into totals, keeps currencies apart and recomputes rates from counts', () => {
    const report = summariseAnalytics({ from: '2031-05-01', to: '2031-05-02' }, [
      buildRow({
        key: '2031-05-02',
        booked: 2,
        cancelled: 1,
        revenueMinor: 900,
        slotsOffered: 4,
        slotsBooked: 1,
      }),
      buildRow({ key: '2031-05-01', booked: 2, completed: 2, noShows: 1, revenueMinor: 100 }),
      buildRow({ key: '2031-05-01', currency: 'USD', booked: 1, revenueMinor: 50 }),
      buildRow({ dimension: 'specialty', key: 'cardiology', booked: 5 }),
      buildRow({ dimension: 'doctor', key: 'doctor-1', fullName: 'Dr One', booked: 5 }),
    ]);
    expect(report.perDay.map((day) => day.day)).toEqual(['2031-05-01', '2031-05-02']);
    expect(report.perDay[0]).toMatchObject({ booked: 3, revenueMinor: { EUR: 100, USD: 50 } });
    expect(report.totals).toEqual({
      booked: 5,
      confirmed: 0,
      completed: 2,
      cancelled: 1,
      noShows: 1,
      expired: 0,
      slotsOffered: 4,
      slotsBooked: 1,
      revenueMinor: { EUR: 1000, USD: 50 },
      refundsMinor: { EUR: 0, USD: 0 },
      cancellationRate: 0.2,
      noShowRate: 0.3333,
      slotUtilisation: 0.25,
    });
    expect(report.bySpecialty).toEqual([expect.objectContaining({ specialty: 'cardiology', booked: 5 })]);
    expect(report.byDoctor).toEqual([expect.objectContaining({ doctorId: 'doctor-1', fullName: 'Dr One' })]);
  });

  it('reports nothing and null rates for no rows', () => {
    const report = summariseAnalytics({ from: '2031-05-01', to: '2031-05-01' }, []);
    expect(report.perDay).toEqual([]);
    expect(report.totals).toMatchObject({
      booked: 0,
      cancellationRate: null,
      noShowRate: null,
      slotUtilisation: null,
    });
  });
});

describe('rankDoctors', () => {
  const doctor = (doctorId: string, completed: number, revenue: number): DoctorFigures => ({
    ...summariseAnalytics({ from: '2031-05-01', to: '2031-05-01' }, []).totals,
    doctorId,
    fullName: doctorId,
    completed,
    revenueMinor: { EUR: revenue },
  });

  it('ranks by completed consultations, then revenue, then name', () => {
    const ranked = rankDoctors([
      doctor('c', 1, 10),
      doctor('b', 2, 0),
      doctor('a', 1, 10),
      doctor('d', 1, 50),
    ]);
    expect(ranked.map((entry) => entry.doctorId)).toEqual(['b', 'd', 'a', 'c']);
  });
});

describe('rateOf', () => {
  it('rounds to four places and is null without a denominator', () => {
    expect(rateOf(1, 3)).toBe(0.3333);
    expect(rateOf(2, 3)).toBe(0.6667);
    expect(rateOf(0, 0)).toBeNull();
  });
});
