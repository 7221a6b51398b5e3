import type { FieldError } from '@keel/platform/errors';
import type { SlotStatus } from '../database.ts';
import type { IsoWeekday } from './time-zone.ts';

/** A local time window on one day: 'HH:MM' to 'HH:MM' ('24:00' is the end of the day). */
export type ScheduleWindow = { start: string; end: string };

/** A weekly window; weekday is ISO (1 = Monday). */
export type ScheduleRule = ScheduleWindow & { weekday: IsoWeekday };

/** A doctor's weekly availability, in their own zone. */
export type Schedule = {
  doctorId: string;
  timeZone: string;
  slotMinutes: number;
  bufferMinutes: number;
  rules: ScheduleRule[];
  version: number;
  updatedAt: Date;
};

export type ScheduleInput = {
  timeZone: string;
  slotMinutes: number;
  bufferMinutes: number;
  rules: ScheduleRule[];
};

/** One local date's windows, replacing the weekly ones; no windows and not available is a day off. */
export type DateOverride = { localDate: string; isAvailable: boolean; windows: ScheduleWindow[] };

/** Absolute time off: no slot may intersect it. */
export type TimeOff = {
  id: string;
  doctorId: string;
  startsAt: Date;
  endsAt: Date;
  reason: string;
  createdAt: Date;
};

export type Slot = { id: string; doctorId: string; startsAt: Date; endsAt: Date; status: SlotStatus };

export const MINUTES_PER_DAY = 1440;

/** Minutes since midnight of 'HH:MM' or 'HH:MM:SS' (what Postgres prints for `time`). */
export function minutesOfDay(time: string): number {
  const [hours = '0', minutes = '0'] = time.split(':');
  return Number(hours) * 60 + Number(minutes);
}

/** 'HH:MM' of minutes since midnight (1440 → '24:00'). */
export function formatTimeOfDay(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** Canonical 'HH:MM' of a stored `time` ('09:00:00' → '09:00'). */
export function toTimeOfDay(stored: string): string {
  return formatTimeOfDay(minutesOfDay(stored));
}

/** A window found wrong, and where (index into the request's array). */
export type WindowProblem = { index: number; field: 'start' | 'end'; detail: string; isOverlap: boolean };

/**
 * What is wrong with a day's windows: a window that ends before it starts or
 * cannot hold one slot, and windows that overlap (which would offer the same
 * time twice). `windows` carry their index into the request.
 */
export function findWindowProblems(
  windows: { index: number; start: string; end: string }[],
  slotMinutes: number,
): WindowProblem[] {
  const problems: WindowProblem[] = [];
  const valid: { index: number; start: number; end: number }[] = [];
  for (const window of windows) {
    const start = minutesOfDay(window.start);
    const end = minutesOfDay(window.end);
    if (start >= end) {
      problems.push({ index: window.index, field: 'end', detail: 'must be after start', isOverlap: false });
    } else if (end - start < slotMinutes) {
      problems.push({
        index: window.index,
        field: 'end',
        detail: `leaves less than one ${slotMinutes}-minute slot`,
        isOverlap: false,
      });
    } else {
      valid.push({ index: window.index, start, end });
    }
  }
  valid.sort((left, right) => left.start - right.start || left.index - right.index);
  let latest: { index: number; end: number } | undefined;
  for (const window of valid) {
    if (latest !== undefined && window.start < latest.end) {
      problems.push({
        index: window.index,
        field: 'start',
        detail: `overlaps window ${latest.index}`,
        isOverlap: true,
      });
    }
    if (latest === undefined || window.end > latest.end) latest = { index: window.index, end: window.end };
  }
  return problems.sort((left, right) => left.index - right.index);
}

/** `findWindowProblems` for each weekday of a weekly schedule. */
export function findRuleProblems(rules: ScheduleRule[], slotMinutes: number): WindowProblem[] {
  const byWeekday = Map.groupBy(
    rules.map((rule, index) => ({ ...rule, index })),
    (rule) => rule.weekday,
  );
  return [...byWeekday.values()]
    .flatMap((windows) => findWindowProblems(windows, slotMinutes))
    .sort((left, right) => left.index - right.index);
}

export function toFieldErrors(problems: WindowProblem[], pointerBase: string): FieldError[] {
  return problems.map((problem) => ({
    pointer: `${pointerBase}/${problem.index}/${problem.field}`,
    detail: problem.detail,
  }));
}
