import { type DateOverride, minutesOfDay, type ScheduleRule, type ScheduleWindow } from './schedule.ts';
import { addDays, createWallTimeResolver, isoWeekdayOf, localDateAt, wallTimeOf } from './time-zone.ts';

const MINUTE_MS = 60_000;

export type Interval = { startsAt: Date; endsAt: Date };

export type SlotPlanInput = {
  timeZone: string;
  slotMinutes: number;
  bufferMinutes: number;
  rules: ScheduleRule[];
  overrides: DateOverride[];
  timeOff: Interval[];
  /** Slots starting in [from, to) are planned. */
  from: Date;
  to: Date;
};

/**
 * The slots a schedule offers in [from, to), earliest first. Local wall times
 * become instants through the doctor's zone, so 09:00 in Berlin is 08:00Z in
 * winter and 07:00Z in summer:
 * - each window is cut into `slotMinutes` slots, `bufferMinutes` apart, from
 *   its start; a slot must end (in absolute time) by the window's end;
 * - a slot whose local start does not exist (spring-forward gap) is not
 *   offered; in the fall-back overlap a local start means its first occurrence;
 * - a date override replaces that date's weekly windows (a day off has none);
 * - no slot intersects time off.
 * The result never overlaps itself, whatever the clocks did.
 */
export function planSlots(input: SlotPlanInput): Interval[] {
  const { timeZone, slotMinutes, bufferMinutes } = input;
  const fromMs = input.from.getTime();
  const toMs = input.to.getTime();
  if (fromMs >= toMs) return [];
  const resolve = createWallTimeResolver(timeZone);
  const slotMs = slotMinutes * MINUTE_MS;
  const stepMinutes = slotMinutes + bufferMinutes;
  const rulesByWeekday = Map.groupBy(input.rules, (rule) => rule.weekday);
  const overridesByDate = Map.groupBy(input.overrides, (override) => override.localDate);
  const timeOff = input.timeOff.map((off) => ({
    startMs: off.startsAt.getTime(),
    endMs: off.endsAt.getTime(),
  }));

  const planned: { startMs: number; endMs: number }[] = [];
  // A day either side: the local dates around `from` and `to` may hold instants inside the range.
  const lastDate = addDays(localDateAt(toMs, timeZone), 1);
  for (let date = addDays(localDateAt(fromMs, timeZone), -1); date <= lastDate; date = addDays(date, 1)) {
    const midnightWallMs = wallTimeOf(date, 0);
    for (const window of windowsOf(date, overridesByDate, rulesByWeekday)) {
      const windowStart = minutesOfDay(window.start);
      const windowEnd = minutesOfDay(window.end);
      // A window ending inside a gap ends when the clocks jump.
      const windowEndMs = resolve(midnightWallMs + windowEnd * MINUTE_MS).instantMs;
      let previousEndMs = Number.NEGATIVE_INFINITY;
      for (let start = windowStart; start + slotMinutes <= windowEnd; start += stepMinutes) {
        const resolved = resolve(midnightWallMs + start * MINUTE_MS);
        if (resolved.kind === 'skipped') continue;
        const startMs = resolved.instantMs;
        const endMs = startMs + slotMs;
        // Past a gap, wall-clock steps can land closer than a slot plus buffer.
        if (endMs > windowEndMs || startMs < previousEndMs + bufferMinutes * MINUTE_MS) continue;
        previousEndMs = endMs;
        if (startMs < fromMs || startMs >= toMs) continue;
        if (timeOff.some((off) => off.startMs < endMs && startMs < off.endMs)) continue;
        planned.push({ startMs, endMs });
      }
    }
  }
  planned.sort((left, right) => left.startMs - right.startMs);
  const slots: Interval[] = [];
  let latestEndMs = Number.NEGATIVE_INFINITY;
  for (const slot of planned) {
    if (slot.startMs < latestEndMs) continue;
    latestEndMs = slot.endMs;
    slots.push({ startsAt: new Date(slot.startMs), endsAt: new Date(slot.endMs) });
  }
  return slots;
}

function windowsOf(
  date: string,
  overridesByDate: Map<string, DateOverride[]>,
  rulesByWeekday: Map<number, ScheduleRule[]>,
): ScheduleWindow[] {
  const overrides = overridesByDate.get(date);
  if (overrides !== undefined) {
    if (overrides.some((override) => !override.isAvailable)) return [];
    return overrides.flatMap((override) => override.windows);
  }
  return rulesByWeekday.get(isoWeekdayOf(date)) ?? [];
}

/** 'YYYY-MM-DD' of the instant in UTC (how slot counts are bucketed). */
export function utcDayOf(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}
