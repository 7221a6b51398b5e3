import { describe, expect, it } from 'vitest';
import {
  addDays,
  canonicalTimeZone,
  createWallTimeResolver,
  createZoneFormatter,
  formatInZone,
  isLocalDate,
  isoWeekdayOf,
  localDateAt,
  offsetAt,
  resolveWallTime,
  startOfLocalDate,
} from './time-zone.ts';

const HOUR_MS = 3_600_000;

function wall(localDateTime: string): number {
  return Date.parse(`${localDateTime}Z`);
}

function iso(instantMs: number): string {
  return new Date(instantMs).toISOString();
}

describe('time zones', () => {
  it('reads offsets on both sides of the Berlin transitions', () => {
    expect(offsetAt(Date.parse('2026-03-29T00:59:59Z'), 'Europe/Berlin')).toBe(HOUR_MS);
    expect(offsetAt(Date.parse('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toBe(2 * HOUR_MS);
    expect(offsetAt(Date.parse('2026-10-25T00:59:59Z'), 'Europe/Berlin')).toBe(2 * HOUR_MS);
    expect(offsetAt(Date.parse('2026-10-25T01:00:00Z'), 'Europe/Berlin')).toBe(HOUR_MS);
    expect(offsetAt(Date.parse('2026-06-01T00:00:00Z'), 'Asia/Kolkata')).toBe(5.5 * HOUR_MS);
  });

  it('resolves a skipped wall time to the transition and a repeated one to its first occurrence', () => {
    expect(resolveWallTime(wall('2026-03-29T02:30:00'), 'Europe/Berlin')).toEqual({
      kind: 'skipped',
      instantMs: Date.parse('2026-03-29T01:00:00Z'),
    });
    const repeated = resolveWallTime(wall('2026-10-25T02:30:00'), 'Europe/Berlin');
    expect(repeated.kind).toBe('exact');
    expect(iso(repeated.instantMs)).toBe('2026-10-25T00:30:00.000Z');
    const newYork = resolveWallTime(wall('2026-11-01T01:30:00'), 'America/New_York');
    expect(iso(newYork.instantMs)).toBe('2026-11-01T05:30:00.000Z');
    expect(resolveWallTime(wall('2026-03-08T02:15:00'), 'America/New_York').kind).toBe('skipped');
  });

  it('resolves in bulk exactly as one at a time', () => {
    const resolve = createWallTimeResolver('Europe/Berlin');
    for (const localDateTime of [
      '2026-03-28T09:00:00',
      '2026-03-29T01:59:00',
      '2026-03-29T02:00:00',
      '2026-03-29T03:00:00',
      '2026-10-25T02:15:00',
      '2026-10-25T03:00:00',
      '2026-07-01T12:00:00',
    ]) {
      expect(resolve(wall(localDateTime))).toEqual(resolveWallTime(wall(localDateTime), 'Europe/Berlin'));
    }
  });

  it('formats instants as local date-times with their offset', () => {
    const instant = Date.parse('2026-03-30T07:00:00Z');
    expect(formatInZone(instant, 'Europe/Berlin')).toBe('2026-03-30T09:00:00+02:00');
    expect(formatInZone(instant, 'America/New_York')).toBe('2026-03-30T03:00:00-04:00');
    expect(formatInZone(instant, 'Asia/Kolkata')).toBe('2026-03-30T12:30:00+05:30');
    expect(formatInZone(instant, 'UTC')).toBe('2026-03-30T07:00:00+00:00');
    expect(formatInZone(Date.parse('2026-03-27T08:00:00Z'), 'Europe/Berlin')).toBe(
      '2026-03-27T09:00:00+01:00',
    );
  });

  it('canonicalises known IANA zones and refuses the rest', () => {
    expect(canonicalTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('Mars/Olympus_Mons')).toBeUndefined();
    expect(canonicalTimeZone('+02:00')).toBeUndefined();
    expect(canonicalTimeZone('')).toBeUndefined();
    expect(canonicalTimeZone('Europe/../Berlin')).toBeUndefined();
  });

  it('does calendar arithmetic on local dates', () => {
    expect(addDays('2026-03-31', 1)).toBe('2026-04-01');
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31');
    expect(isoWeekdayOf('2026-03-29')).toBe(7);
    expect(isoWeekdayOf('2026-03-30')).toBe(1);
    expect(isLocalDate('2026-02-29')).toBe(false);
    expect(isLocalDate('2028-02-29')).toBe(true);
    expect(isLocalDate('2026-3-1')).toBe(false);
    expect(localDateAt(Date.parse('2026-03-29T23:30:00Z'), 'Europe/Berlin')).toBe('2026-03-30');
    expect(localDateAt(Date.parse('2026-03-30T03:30:00Z'), 'America/New_York')).toBe('2026-03-29');
    expect(iso(startOfLocalDate('2026-03-30', 'America/New_York'))).toBe('2026-03-30T04:00:00.000Z');
  });

  describe('createZoneFormatter', () => {
    // Zones with a one-hour DST, a half-hour DST (Lord Howe), none (Kolkata), a southern-hemisphere
    // DST (Sydney) and Samoa's 2011 jump across the date line (24 hours in one transition).
    const cases = [
      { zone: 'Europe/Berlin', year: 2026 },
      { zone: 'America/New_York', year: 2026 },
      { zone: 'Australia/Lord_Howe', year: 2026 },
      { zone: 'Australia/Sydney', year: 2026 },
      { zone: 'Asia/Kolkata', year: 2026 },
      { zone: 'Pacific/Apia', year: 2011 },
    ];

    it.each(cases)('formats every instant of $year in $zone as formatInZone does', ({ zone, year }) => {
      const format = createZoneFormatter(zone);
      const start = Date.UTC(year, 0, 1);
      const end = Date.UTC(year + 1, 0, 1);
      // An odd step, so that samples fall at every minute and second of the day over the year.
      const step = 17 * 60_000 + 13_000 + 7;
      const mismatches: string[] = [];
      for (let instant = start; instant < end; instant += step) {
        const expected = formatInZone(instant, zone);
        if (format(instant) !== expected) mismatches.push(`${new Date(instant).toISOString()} → ${expected}`);
      }
      expect(mismatches).toEqual([]);
    });

    it.each(cases)(
      'formats the instants around each transition of $year in $zone exactly',
      ({ zone, year }) => {
        const format = createZoneFormatter(zone);
        const transitions: number[] = [];
        for (let hour = Date.UTC(year, 0, 1); hour < Date.UTC(year + 1, 0, 1); hour += HOUR_MS) {
          if (offsetAt(hour, zone) !== offsetAt(hour + HOUR_MS, zone)) {
            // Find the first second with the new offset.
            let second = hour;
            while (offsetAt(second, zone) === offsetAt(hour, zone)) second += 1000;
            transitions.push(second);
          }
        }
        expect(transitions.length).toBe(zone === 'Asia/Kolkata' ? 0 : zone === 'Pacific/Apia' ? 3 : 2);
        for (const transition of transitions) {
          for (const instant of [
            transition - 1000,
            transition - 1,
            transition,
            transition + 1,
            transition + 1000,
          ]) {
            expect(format(instant)).toBe(formatInZone(instant, zone));
          }
        }
      },
    );

    it('prints four-digit years on both sides of the years toISOString prints plainly', () => {
      expect(formatInZone(Date.UTC(999, 11, 31, 23, 59, 59), 'UTC')).toBe('0999-12-31T23:59:59+00:00');
      expect(formatInZone(Date.UTC(1000, 0, 1), 'UTC')).toBe('1000-01-01T00:00:00+00:00');
      expect(formatInZone(Date.UTC(9999, 11, 31, 23, 59, 59), 'UTC')).toBe('9999-12-31T23:59:59+00:00');
      expect(createZoneFormatter('Asia/Kolkata')(Date.UTC(2026, 0, 1, 0, 0, 0, 999))).toBe(
        '2026-01-01T05:30:00+05:30',
      );
    });

    it('formats the changeover in Berlin on 2026-03-29 with the offsets either side', () => {
      const format = createZoneFormatter('Europe/Berlin');
      expect(format(Date.parse('2026-03-29T00:59:59.999Z'))).toBe('2026-03-29T01:59:59+01:00');
      expect(format(Date.parse('2026-03-29T01:00:00Z'))).toBe('2026-03-29T03:00:00+02:00');
      expect(format(Date.parse('2026-10-25T00:59:59Z'))).toBe('2026-10-25T02:59:59+02:00');
      expect(format(Date.parse('2026-10-25T01:00:00Z'))).toBe('2026-10-25T02:00:00+01:00');
    });
  });
});
