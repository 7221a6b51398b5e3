import { assertNever } from '@keel/platform/errors';
import { invalidAnalyticsRange } from './analytics.errors.ts';

// The analytics report's rules, free of I/O: which days a report covers and
// how the rolled-up rows add up into it (what each event adds to the rollup
// is in rollup-change.ts).

/** The longest range one report may cover (a leap year). */
export const ANALYTICS_MAX_RANGE_DAYS = 366;
/** The range a report covers when the caller names none: the last 30 days, today included. */
export const ANALYTICS_DEFAULT_RANGE_DAYS = 30;
export const TOP_DOCTORS_LIMIT = 10;

const DAY_MS = 86_400_000;

/** The UTC date (`YYYY-MM-DD`) of a time; an ISO string may carry any offset. */
export function utcDayOf(time: Date | string): string {
  return (typeof time === 'string' ? new Date(time) : time).toISOString().slice(0, 10);
}

function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS);
}

/** A real calendar date (`2030-02-30` is not), as the schema's `date` format also checks. */
function isCalendarDay(value: string): boolean {
  const time = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(time) && new Date(time).toISOString().slice(0, 10) === value;
}

/** Whole UTC days, both ends included. */
export type AnalyticsRange = { from: string; to: string };

/**
 * The days a report covers: `to` defaults to today (UTC), `from` to
 * `ANALYTICS_DEFAULT_RANGE_DAYS` days ending at `to`. Throws 400
 * `telemedicine.analytics_invalid_range` when from is after to or the range
 * is longer than `ANALYTICS_MAX_RANGE_DAYS`.
 */
export function resolveAnalyticsRange(query: { from?: string; to?: string }, now: Date): AnalyticsRange {
  if (query.from !== undefined && !isCalendarDay(query.from)) {
    throw invalidAnalyticsRange('from must be a date (YYYY-MM-DD)', '/querystring/from');
  }
  if (query.to !== undefined && !isCalendarDay(query.to)) {
    throw invalidAnalyticsRange('to must be a date (YYYY-MM-DD)', '/querystring/to');
  }
  const to = query.to ?? utcDayOf(now);
  const from = query.from ?? addDays(to, -(ANALYTICS_DEFAULT_RANGE_DAYS - 1));
  const days = daysBetween(from, to) + 1;
  if (days < 1) throw invalidAnalyticsRange('from must not be after to', '/querystring/to');
  if (days > ANALYTICS_MAX_RANGE_DAYS) {
    throw invalidAnalyticsRange(
      `the range must not exceed ${ANALYTICS_MAX_RANGE_DAYS} days (from and to included)`,
      '/querystring/to',
    );
  }
  return { from, to };
}

/** The counters of a group of rollup rows in one currency, as the repository sums them. */
export type RollupCounts = {
  booked: number;
  confirmed: number;
  completed: number;
  cancelled: number;
  noShows: number;
  expired: number;
  revenueMinor: number;
  refundsMinor: number;
  slotsOffered: number;
  slotsBooked: number;
};

/** The rollup summed per (day | specialty | doctor) and currency over the range. */
export type RollupGroupRow = RollupCounts & {
  dimension: 'day' | 'specialty' | 'doctor';
  /** The day, the specialty or the doctor's id. */
  key: string;
  /** The doctor's name (doctor rows only; null if the doctor row is gone). */
  fullName: string | null;
  currency: string;
};

/** Money per currency: amounts of different currencies are never added together. */
export type MoneyByCurrency = Record<string, number>;

export type AnalyticsFigures = {
  booked: number;
  confirmed: number;
  completed: number;
  cancelled: number;
  noShows: number;
  expired: number;
  slotsOffered: number;
  slotsBooked: number;
  revenueMinor: MoneyByCurrency;
  refundsMinor: MoneyByCurrency;
  /** cancelled / booked; null when nothing was booked. */
  cancellationRate: number | null;
  /** no_shows / (completed + no_shows); null when neither happened. */
  noShowRate: number | null;
  /** slots_booked / slots_offered; null when no slot was offered. */
  slotUtilisation: number | null;
};

export type DoctorFigures = AnalyticsFigures & { doctorId: string; fullName: string | null };

export type AnalyticsReport = AnalyticsRange & {
  totals: AnalyticsFigures;
  perDay: (AnalyticsFigures & { day: string })[];
  bySpecialty: (AnalyticsFigures & { specialty: string })[];
  byDoctor: DoctorFigures[];
  topDoctors: DoctorFigures[];
};

type Accumulator = Omit<RollupCounts, 'revenueMinor' | 'refundsMinor'> & {
  revenueMinor: Map<string, number>;
  refundsMinor: Map<string, number>;
};

function emptyAccumulator(): Accumulator {
  return {
    booked: 0,
    confirmed: 0,
    completed: 0,
    cancelled: 0,
    noShows: 0,
    expired: 0,
    slotsOffered: 0,
    slotsBooked: 0,
    revenueMinor: new Map(),
    refundsMinor: new Map(),
  };
}

function add(into: Accumulator, row: RollupGroupRow): void {
  into.booked += row.booked;
  into.confirmed += row.confirmed;
  into.completed += row.completed;
  into.cancelled += row.cancelled;
  into.noShows += row.noShows;
  into.expired += row.expired;
  into.slotsOffered += row.slotsOffered;
  into.slotsBooked += row.slotsBooked;
  into.revenueMinor.set(row.currency, (into.revenueMinor.get(row.currency) ?? 0) + row.revenueMinor);
  into.refundsMinor.set(row.currency, (into.refundsMinor.get(row.currency) ?? 0) + row.refundsMinor);
}

/** A ratio to 4 decimal places, or null for a zero denominator. */
export function rateOf(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : Math.round((numerator / denominator) * 10_000) / 10_000;
}

function sortedMoney(money: Map<string, number>): MoneyByCurrency {
  return Object.fromEntries([...money.entries()].sort(([left], [right]) => left.localeCompare(right)));
}

function toFigures(accumulator: Accumulator): AnalyticsFigures {
  return {
    booked: accumulator.booked,
    confirmed: accumulator.confirmed,
    completed: accumulator.completed,
    cancelled: accumulator.cancelled,
    noShows: accumulator.noShows,
    expired: accumulator.expired,
    slotsOffered: accumulator.slotsOffered,
    slotsBooked: accumulator.slotsBooked,
    revenueMinor: sortedMoney(accumulator.revenueMinor),
    refundsMinor: sortedMoney(accumulator.refundsMinor),
    cancellationRate: rateOf(accumulator.cancelled, accumulator.booked),
    noShowRate: rateOf(accumulator.noShows, accumulator.completed + accumulator.noShows),
    slotUtilisation: rateOf(accumulator.slotsBooked, accumulator.slotsOffered),
  };
}

function totalRevenue(figures: AnalyticsFigures): number {
  return Object.values(figures.revenueMinor).reduce((sum, amount) => sum + amount, 0);
}

/**
 * Top doctors: most completed consultations, then most revenue (a doctor
 * bills in one currency, so their amounts add up), then by name and id so
 * ties always list the same way.
 */
export function rankDoctors(doctors: readonly DoctorFigures[]): DoctorFigures[] {
  return [...doctors].sort(
    (left, right) =>
      right.completed - left.completed ||
      totalRevenue(right) - totalRevenue(left) ||
      (left.fullName ?? '').localeCompare(right.fullName ?? '') ||
      left.doctorId.localeCompare(right.doctorId),
  );
}

/**
 * Folds the grouped rollup rows into the report. Totals are the sum of the
 * days (every rollup row is in exactly one day group). Rates are recomputed
 * from the summed counts, never averaged from rates.
 */
export function summariseAnalytics(range: AnalyticsRange, rows: readonly RollupGroupRow[]): AnalyticsReport {
  const totals = emptyAccumulator();
  const days = new Map<string, Accumulator>();
  const specialties = new Map<string, Accumulator>();
  const doctors = new Map<string, { fullName: string | null; accumulator: Accumulator }>();
  const into = (groups: Map<string, Accumulator>, key: string) => {
    let accumulator = groups.get(key);
    if (accumulator === undefined) {
      accumulator = emptyAccumulator();
      groups.set(key, accumulator);
    }
    return accumulator;
  };
  for (const row of rows) {
    switch (row.dimension) {
      case 'day':
        add(into(days, row.key), row);
        add(totals, row);
        break;
      case 'specialty':
        add(into(specialties, row.key), row);
        break;
      case 'doctor': {
        let doctor = doctors.get(row.key);
        if (doctor === undefined) {
          doctor = { fullName: row.fullName, accumulator: emptyAccumulator() };
          doctors.set(row.key, doctor);
        }
        add(doctor.accumulator, row);
        break;
      }
      default:
        assertNever(row.dimension);
    }
  }
  const byKey = ([left]: [string, unknown], [right]: [string, unknown]) => left.localeCompare(right);
  const byDoctor = [...doctors.entries()]
    .map(([doctorId, doctor]) => ({ doctorId, fullName: doctor.fullName, ...toFigures(doctor.accumulator) }))
    .sort(
      (left, right) =>
        (left.fullName ?? '').localeCompare(right.fullName ?? '') ||
        left.doctorId.localeCompare(right.doctorId),
    );
  return {
    ...range,
    totals: toFigures(totals),
    perDay: [...days.entries()].sort(byKey).map(([day, accumulator]) => ({ day, ...toFigures(accumulator) })),
    bySpecialty: [...specialties.entries()]
      .sort(byKey)
      .map(([specialty, accumulator]) => ({ specialty, ...toFigures(accumulator) })),
    byDoctor,
    topDoctors: rankDoctors(byDoctor).slice(0, TOP_DOCTORS_LIMIT),
  };
}
