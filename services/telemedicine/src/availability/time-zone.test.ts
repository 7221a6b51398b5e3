import { describe, expect, it } from 'vitest';
import {
  addDays,
  canonicalTimeZone,
  createWallTimeResolver,
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
});
