// Wall-clock arithmetic in IANA zones on top of Intl.DateTimeFormat (Node 24
// has no Temporal by default). A "wall time" is a local date and time read as
// if it were UTC, in epoch milliseconds: `Date.UTC(2026, 2, 29, 2, 30)` is
// 02:30 on 2026-03-29 on the clock on the wall, in whatever zone is meant.

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const LOCAL_DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
// IANA names ("Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires",
// "Etc/GMT+5"); bare offsets ("+02:00") are no zone a doctor lives in.
const ZONE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;
const MAX_CACHED_FORMATTERS = 1_000;

/** ISO weekday: 1 = Monday … 7 = Sunday. */
export type IsoWeekday = 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** Where a wall time falls on the time line. */
export type ResolvedWallTime =
  /** The wall time exists; in a fall-back overlap, its first occurrence. */
  | { kind: 'exact'; instantMs: number }
  /** The wall time is skipped (spring-forward gap); `instantMs` is the transition, the first instant after it. */
  | { kind: 'skipped'; instantMs: number };

const formatters = new Map<string, Intl.DateTimeFormat>();
const canonicalNames = new Map<string, string | undefined>();

/**
 * The zone's canonical IANA name ("europe/berlin" → "Europe/Berlin"), or
 * undefined when it is not a zone this runtime knows.
 */
export function canonicalTimeZone(name: string): string | undefined {
  if (name.length === 0 || name.length > 64 || !ZONE_NAME_PATTERN.test(name)) return undefined;
  // Constructing a DateTimeFormat loads the zone's ICU data: tens of
  // microseconds, paid by every search and slot listing. Names are memoised,
  // unknown ones too (a caller repeating a bad zone costs nothing either);
  // the map is cleared when full, so hostile input cannot grow it unbounded.
  if (canonicalNames.has(name)) return canonicalNames.get(name);
  if (canonicalNames.size >= MAX_CACHED_FORMATTERS) canonicalNames.clear();
  let canonical: string | undefined;
  try {
    canonical = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    canonical = undefined;
  }
  canonicalNames.set(name, canonical);
  return canonical;
}

// Callers pass canonical names only, so the cache is bounded by the zone database.
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    if (formatters.size >= MAX_CACHED_FORMATTERS) formatters.clear();
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** The wall time (as-if-UTC milliseconds) the clocks of `timeZone` show at `instantMs`. */
export function wallTimeAt(instantMs: number, timeZone: string): number {
  const fields = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const part of formatterFor(timeZone).formatToParts(new Date(instantMs))) {
    if (part.type in fields) fields[part.type as keyof typeof fields] = Number(part.value);
  }
  const wall = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  wall.setUTCFullYear(fields.year, fields.month - 1, fields.day);
  // Some ICU versions print midnight as 24 even with h23.
  wall.setUTCHours(fields.hour % 24, fields.minute, fields.second, 0);
  // Offsets are whole seconds, so the sub-second part is the instant's.
  return wall.getTime() + (((instantMs % 1000) + 1000) % 1000);
}

/** UTC offset of `timeZone` at `instantMs`, in milliseconds (Berlin in summer: 7_200_000). */
export function offsetAt(instantMs: number, timeZone: string): number {
  return wallTimeAt(instantMs, timeZone) - instantMs;
}

/**
 * The offsets around one local date: the offset a day before, the offset a
 * day after and, when they differ, the instant the clocks changed. No zone
 * changes its offset twice within three days, so that is all there is.
 */
type OffsetRule = { offsetBefore: number; offsetAfter: number; transitionMs: number };

function offsetRuleAround(wallMs: number, timeZone: string): OffsetRule {
  const day = Math.floor(wallMs / DAY_MS);
  // Every instant whose wall time falls on `day` lies between these (offsets are within ±14 h).
  return offsetRuleBetween((day - 1) * DAY_MS, (day + 2) * DAY_MS, timeZone);
}

/** The offsets at two instants at most three days apart, and the transition between them if they differ. */
function offsetRuleBetween(fromMs: number, toMs: number, timeZone: string): OffsetRule {
  let low = fromMs;
  let high = toMs;
  const offsetBefore = offsetAt(low, timeZone);
  const offsetAfter = offsetAt(high, timeZone);
  if (offsetBefore === offsetAfter) {
    return { offsetBefore, offsetAfter, transitionMs: Number.POSITIVE_INFINITY };
  }
  // Bisect to the second (tz database transitions are whole seconds).
  while (high - low > 1000) {
    const middle = low + Math.floor((high - low) / 2000) * 1000;
    if (offsetAt(middle, timeZone) === offsetBefore) low = middle;
    else high = middle;
  }
  return { offsetBefore, offsetAfter, transitionMs: high };
}

// A wall time names the instant `wall - offset` for whichever offset was in
// force at that instant: before the transition the old one, from it on the
// new one. Both can hold (fall-back overlap: the earlier wins), or neither
// (spring-forward gap: the wall time is skipped).
function resolveWithRule(wallMs: number, rule: OffsetRule): ResolvedWallTime {
  const early = wallMs - rule.offsetBefore;
  const late = wallMs - rule.offsetAfter;
  const isEarlyValid = early < rule.transitionMs;
  const isLateValid = late >= rule.transitionMs;
  if (isEarlyValid && isLateValid) return { kind: 'exact', instantMs: Math.min(early, late) };
  if (isEarlyValid) return { kind: 'exact', instantMs: early };
  if (isLateValid) return { kind: 'exact', instantMs: late };
  return { kind: 'skipped', instantMs: rule.transitionMs };
}

/**
 * The instant a wall time names in `timeZone`: in a fall-back overlap its
 * first occurrence; in a spring-forward gap none (`skipped`, with the
 * transition instant).
 */
export function resolveWallTime(wallMs: number, timeZone: string): ResolvedWallTime {
  return resolveWithRule(wallMs, offsetRuleAround(wallMs, timeZone));
}

/**
 * `resolveWallTime` for many wall times in one zone: the offsets around each
 * local date are looked up once (a materialisation resolves thousands of slot
 * starts; each Intl lookup costs microseconds).
 */
export function createWallTimeResolver(timeZone: string): (wallMs: number) => ResolvedWallTime {
  const ruleOfDay = memoisedByDay((day) => offsetRuleAround(day * DAY_MS, timeZone));
  return (wallMs) => resolveWithRule(wallMs, ruleOfDay(wallMs));
}

/** `ruleOf(day)` computed once per day of the milliseconds it is asked for (wall or UTC days alike). */
function memoisedByDay(ruleOf: (day: number) => OffsetRule): (ms: number) => OffsetRule {
  const ruleByDay = new Map<number, OffsetRule>();
  return (ms) => {
    const day = Math.floor(ms / DAY_MS);
    let rule = ruleByDay.get(day);
    if (rule === undefined) {
      rule = ruleOf(day);
      ruleByDay.set(day, rule);
    }
    return rule;
  };
}

/** Wall time of `minutesOfDay` (0-1440; 1440 is the next midnight) on a 'YYYY-MM-DD' local date. */
export function wallTimeOf(localDate: string, minutesOfDay: number): number {
  return localDateToWallMs(localDate) + minutesOfDay * MINUTE_MS;
}

/** The local date ('YYYY-MM-DD') in `timeZone` at `instantMs`. */
export function localDateAt(instantMs: number, timeZone: string): string {
  return formatWallDate(wallTimeAt(instantMs, timeZone));
}

/** The instant the local date starts in `timeZone` (midnight, or the first instant after a skipped midnight). */
export function startOfLocalDate(localDate: string, timeZone: string): number {
  return resolveWallTime(localDateToWallMs(localDate), timeZone).instantMs;
}

/** 'YYYY-MM-DD' a number of days later (or earlier). */
export function addDays(localDate: string, days: number): string {
  return formatWallDate(localDateToWallMs(localDate) + days * DAY_MS);
}

export function isoWeekdayOf(localDate: string): IsoWeekday {
  const sundayIsZero = new Date(localDateToWallMs(localDate)).getUTCDay();
  return (sundayIsZero === 0 ? 7 : sundayIsZero) as IsoWeekday;
}

/** True for a real calendar date in 'YYYY-MM-DD' form (not 2026-02-30). */
export function isLocalDate(value: string): boolean {
  const match = LOCAL_DATE_PATTERN.exec(value);
  if (match === null) return false;
  return formatWallDate(localDateToWallMs(value)) === value;
}

/**
 * The instant as the clocks of `timeZone` show it, ISO 8601 with the offset:
 * '2026-03-30T09:00:00+02:00' (UTC is '+00:00').
 */
export function formatInZone(instantMs: number, timeZone: string): string {
  return formatWallTime(wallTimeAt(instantMs, timeZone), instantMs);
}

/**
 * `formatInZone` for many instants in one zone. A slot listing formats two
 * instants per slot, hundreds per response, and each `wallTimeAt` is an
 * `Intl` `formatToParts` call costing microseconds: under load that was a
 * quarter of the server's CPU. The offset only changes at a transition, so
 * this looks it up once per UTC day (two `Intl` calls, plus a bisection on
 * the rare day the clocks change) and formats every instant from it.
 *
 * @example
 * const format = createZoneFormatter('Europe/Berlin');
 * slots.map((slot) => format(slot.startsAt.getTime()));
 */
export function createZoneFormatter(timeZone: string): (instantMs: number) => string {
  const ruleOfUtcDay = memoisedByDay((day) => offsetRuleBetween(day * DAY_MS, (day + 1) * DAY_MS, timeZone));
  return (instantMs) => {
    const rule = ruleOfUtcDay(instantMs);
    const offset = instantMs < rule.transitionMs ? rule.offsetBefore : rule.offsetAfter;
    return formatWallTime(instantMs + offset, instantMs);
  };
}

// Wall times whose year toISOString prints as four digits, unsigned.
const FOUR_DIGIT_YEARS = { fromMs: Date.UTC(1000, 0, 1), toMs: Date.UTC(10_000, 0, 1) };

function formatWallTime(wallMs: number, instantMs: number): string {
  if (wallMs >= FOUR_DIGIT_YEARS.fromMs && wallMs < FOUR_DIGIT_YEARS.toMs) {
    // 'YYYY-MM-DDTHH:mm:ss' of toISOString (native), then the offset: a slot listing formats hundreds.
    return `${new Date(wallMs).toISOString().slice(0, 19)}${formatOffset(wallMs - instantMs)}`;
  }
  const wall = new Date(wallMs);
  const time = [wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds()]
    .map((value) => String(value).padStart(2, '0'))
    .join(':');
  return `${formatWallDate(wallMs)}T${time}${formatOffset(wallMs - instantMs)}`;
}

function formatOffset(offsetMs: number): string {
  const totalMinutes = Math.round(offsetMs / MINUTE_MS);
  const sign = totalMinutes < 0 ? '-' : '+';
  const absolute = Math.abs(totalMinutes);
  return `${sign}${String(Math.floor(absolute / 60)).padStart(2, '0')}:${String(absolute % 60).padStart(2, '0')}`;
}

function localDateToWallMs(localDate: string): number {
  const match = LOCAL_DATE_PATTERN.exec(localDate);
  if (match === null) throw new RangeError(`Not a local date: ${localDate}`);
  const wall = new Date(0);
  wall.setUTCFullYear(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return wall.getTime();
}

function formatWallDate(wallMs: number): string {
  const wall = new Date(wallMs);
  return [
    String(wall.getUTCFullYear()).padStart(4, '0'),
    String(wall.getUTCMonth() + 1).padStart(2, '0'),
    String(wall.getUTCDate()).padStart(2, '0'),
  ].join('-');
}
