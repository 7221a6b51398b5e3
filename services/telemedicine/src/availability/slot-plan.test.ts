import { describe, expect, it } from 'vitest';
import type { DateOverride, ScheduleRule } from './schedule.ts';
import { type Interval, planSlots, type SlotPlanInput } from './slot-plan.ts';

const EVERY_DAY = [1, 2, 3, 4, 5, 6, 7] as const;

function everyDay(start: string, end: string): ScheduleRule[] {
  return EVERY_DAY.map((weekday) => ({ weekday, start, end }));
}

function plan(overrides: Partial<SlotPlanInput> & Pick<SlotPlanInput, 'from' | 'to'>): Interval[] {
  return planSlots({
    timeZone: 'UTC',
    slotMinutes: 15,
    bufferMinutes: 0,
    rules: [],
    overrides: [],
    timeOff: [],
    ...overrides,
  });
}

function starts(slots: Interval[]): string[] {
  return slots.map((slot) => slot.startsAt.toISOString());
}

function spans(slots: Interval[]): string[] {
  return slots.map((slot) => `${slot.startsAt.toISOString()}/${slot.endsAt.toISOString()}`);
}

/** The whole local day `date` (and a little around it) as the planning range. */
function aroundDay(date: string): { from: Date; to: Date } {
  const midnight = Date.parse(`${date}T00:00:00Z`);
  return { from: new Date(midnight - 14 * 3_600_000), to: new Date(midnight + 38 * 3_600_000) };
}

function assertNoOverlap(slots: Interval[]): void {
  for (let index = 1; index < slots.length; index += 1) {
    const previous = slots[index - 1];
    const current = slots[index];
    if (previous === undefined || current === undefined) continue;
    expect(current.startsAt.getTime()).toBeGreaterThanOrEqual(previous.endsAt.getTime());
  }
}

describe('planSlots', () => {
  it('cuts a window into back-to-back slots that fit entirely inside it', () => {
    const slots = plan({
      rules: [{ weekday: 1, start: '09:00', end: '10:00' }],
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-03-31T00:00:00Z'),
    });
    expect(spans(slots)).toEqual([
      '2026-03-30T09:00:00.000Z/2026-03-30T09:15:00.000Z',
      '2026-03-30T09:15:00.000Z/2026-03-30T09:30:00.000Z',
      '2026-03-30T09:30:00.000Z/2026-03-30T09:45:00.000Z',
      '2026-03-30T09:45:00.000Z/2026-03-30T10:00:00.000Z',
    ]);
  });

  it('leaves the buffer between consecutive slots and drops a slot that would overrun the window', () => {
    const slots = plan({
      slotMinutes: 20,
      bufferMinutes: 5,
      rules: [{ weekday: 1, start: '09:00', end: '10:05' }],
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-03-31T00:00:00Z'),
    });
    // 09:00, 09:25, 09:50 would end 10:10 > 10:05.
    expect(starts(slots)).toEqual(['2026-03-30T09:00:00.000Z', '2026-03-30T09:25:00.000Z']);
  });

  it('offers nothing on weekdays without rules', () => {
    const slots = plan({
      rules: [{ weekday: 2, start: '09:00', end: '10:00' }],
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-03-31T00:00:00Z'),
    });
    expect(slots).toEqual([]);
  });

  it('plans only slots starting in [from, to), keeping the window grid', () => {
    const slots = plan({
      rules: [{ weekday: 1, start: '09:00', end: '10:00' }],
      from: new Date('2026-03-30T09:07:00Z'),
      to: new Date('2026-03-30T09:45:00Z'),
    });
    expect(starts(slots)).toEqual(['2026-03-30T09:15:00.000Z', '2026-03-30T09:30:00.000Z']);
  });

  it('ends a window at 24:00 on the next midnight', () => {
    const slots = plan({
      slotMinutes: 30,
      rules: [{ weekday: 1, start: '23:00', end: '24:00' }],
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-04-01T00:00:00Z'),
    });
    expect(spans(slots)).toEqual([
      '2026-03-30T23:00:00.000Z/2026-03-30T23:30:00.000Z',
      '2026-03-30T23:30:00.000Z/2026-03-31T00:00:00.000Z',
    ]);
  });

  it('skips slots intersecting time off and keeps slots that only touch it', () => {
    const slots = plan({
      rules: [{ weekday: 1, start: '09:00', end: '10:00' }],
      timeOff: [{ startsAt: new Date('2026-03-30T09:15:00Z'), endsAt: new Date('2026-03-30T09:31:00Z') }],
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-03-31T00:00:00Z'),
    });
    expect(starts(slots)).toEqual(['2026-03-30T09:00:00.000Z', '2026-03-30T09:45:00.000Z']);
  });

  it('offers nothing on a day-off override and the override windows instead of the rules', () => {
    const overrides: DateOverride[] = [
      { localDate: '2026-03-30', isAvailable: false, windows: [] },
      { localDate: '2026-03-31', isAvailable: true, windows: [{ start: '14:00', end: '14:30' }] },
      // A date without a weekly rule (Sunday) gets hours too.
      { localDate: '2026-04-05', isAvailable: true, windows: [{ start: '10:00', end: '10:15' }] },
    ];
    const slots = plan({
      rules: everyDay('09:00', '09:30'),
      overrides,
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-04-06T00:00:00Z'),
    });
    expect(starts(slots).filter((start) => start < '2026-04-01')).toEqual([
      '2026-03-31T14:00:00.000Z',
      '2026-03-31T14:15:00.000Z',
    ]);
    expect(starts(slots).filter((start) => start.startsWith('2026-04-05'))).toEqual([
      '2026-04-05T10:00:00.000Z',
    ]);
  });

  describe('Europe/Berlin', () => {
    const berlin = { timeZone: 'Europe/Berlin' };

    it('maps 09:00 local to 08:00Z before and 07:00Z after the spring-forward on 2026-03-29', () => {
      const slots = plan({
        ...berlin,
        slotMinutes: 60,
        rules: everyDay('09:00', '10:00'),
        from: new Date('2026-03-27T00:00:00Z'),
        to: new Date('2026-03-31T00:00:00Z'),
      });
      expect(starts(slots)).toEqual([
        '2026-03-27T08:00:00.000Z',
        '2026-03-28T08:00:00.000Z',
        '2026-03-29T07:00:00.000Z',
        '2026-03-30T07:00:00.000Z',
      ]);
    });

    it('offers no slot in the skipped hour of a window spanning the gap (01:00-04:00 on 2026-03-29)', () => {
      const slots = plan({
        ...berlin,
        rules: [{ weekday: 7, start: '01:00', end: '04:00' }],
        ...aroundDay('2026-03-29'),
      });
      // 01:00-02:00 CET is 00:00-01:00Z; 03:00-04:00 CEST is 01:00-02:00Z; 02:xx never happens.
      expect(slots).toHaveLength(8);
      expect(starts(slots)).toEqual([
        '2026-03-29T00:00:00.000Z',
        '2026-03-29T00:15:00.000Z',
        '2026-03-29T00:30:00.000Z',
        '2026-03-29T00:45:00.000Z',
        '2026-03-29T01:00:00.000Z',
        '2026-03-29T01:15:00.000Z',
        '2026-03-29T01:30:00.000Z',
        '2026-03-29T01:45:00.000Z',
      ]);
      assertNoOverlap(slots);
    });

    it('never overlaps when the slot length does not divide the skipped hour', () => {
      const slots = plan({
        ...berlin,
        slotMinutes: 25,
        rules: [{ weekday: 7, start: '01:00', end: '04:00' }],
        ...aroundDay('2026-03-29'),
      });
      // Local 01:00, 01:25, 01:50 (until 03:15 CEST), then 03:05 would overlap it: 03:30 is next.
      expect(spans(slots)).toEqual([
        '2026-03-29T00:00:00.000Z/2026-03-29T00:25:00.000Z',
        '2026-03-29T00:25:00.000Z/2026-03-29T00:50:00.000Z',
        '2026-03-29T00:50:00.000Z/2026-03-29T01:15:00.000Z',
        '2026-03-29T01:30:00.000Z/2026-03-29T01:55:00.000Z',
      ]);
      assertNoOverlap(slots);
    });

    it('ends a window whose end falls in the gap when the clocks jump', () => {
      const slots = plan({
        ...berlin,
        slotMinutes: 60,
        rules: [{ weekday: 7, start: '01:00', end: '02:30' }],
        ...aroundDay('2026-03-29'),
      });
      expect(spans(slots)).toEqual(['2026-03-29T00:00:00.000Z/2026-03-29T01:00:00.000Z']);
    });

    it('maps 09:00 local to 07:00Z before and 08:00Z after the fall-back on 2026-10-25', () => {
      const slots = plan({
        ...berlin,
        slotMinutes: 60,
        rules: everyDay('09:00', '10:00'),
        from: new Date('2026-10-24T00:00:00Z'),
        to: new Date('2026-10-27T00:00:00Z'),
      });
      expect(starts(slots)).toEqual([
        '2026-10-24T07:00:00.000Z',
        '2026-10-25T08:00:00.000Z',
        '2026-10-26T08:00:00.000Z',
      ]);
    });

    it('takes the first occurrence of the repeated hour on 2026-10-25 and never overlaps', () => {
      const slots = plan({
        ...berlin,
        slotMinutes: 60,
        rules: [{ weekday: 7, start: '01:00', end: '04:00' }],
        ...aroundDay('2026-10-25'),
      });
      // 01:00 and 02:00 CEST (23:00Z, 00:00Z), then 03:00 CET (02:00Z): the second 02:xx hour is not offered.
      expect(spans(slots)).toEqual([
        '2026-10-24T23:00:00.000Z/2026-10-25T00:00:00.000Z',
        '2026-10-25T00:00:00.000Z/2026-10-25T01:00:00.000Z',
        '2026-10-25T02:00:00.000Z/2026-10-25T03:00:00.000Z',
      ]);
      assertNoOverlap(slots);
    });
  });

  describe('America/New_York', () => {
    const newYork = { timeZone: 'America/New_York' };

    it('maps 09:00 local to 14:00Z before and 13:00Z after the spring-forward on 2026-03-08', () => {
      const slots = plan({
        ...newYork,
        slotMinutes: 30,
        rules: everyDay('09:00', '09:30'),
        from: new Date('2026-03-07T00:00:00Z'),
        to: new Date('2026-03-10T00:00:00Z'),
      });
      expect(starts(slots)).toEqual([
        '2026-03-07T14:00:00.000Z',
        '2026-03-08T13:00:00.000Z',
        '2026-03-09T13:00:00.000Z',
      ]);
    });

    it('skips 02:xx on 2026-03-08', () => {
      const slots = plan({
        ...newYork,
        slotMinutes: 30,
        rules: [{ weekday: 7, start: '01:00', end: '04:00' }],
        ...aroundDay('2026-03-08'),
      });
      // 01:00, 01:30 EST (06:00Z, 06:30Z), then 03:00, 03:30 EDT (07:00Z, 07:30Z).
      expect(starts(slots)).toEqual([
        '2026-03-08T06:00:00.000Z',
        '2026-03-08T06:30:00.000Z',
        '2026-03-08T07:00:00.000Z',
        '2026-03-08T07:30:00.000Z',
      ]);
    });

    it('takes the first 01:xx on 2026-11-01 and maps 09:00 to 13:00Z before and 14:00Z after', () => {
      const slots = plan({
        ...newYork,
        slotMinutes: 30,
        rules: [
          { weekday: 6, start: '09:00', end: '09:30' },
          { weekday: 7, start: '00:30', end: '02:30' },
          { weekday: 1, start: '09:00', end: '09:30' },
        ],
        from: new Date('2026-10-31T00:00:00Z'),
        to: new Date('2026-11-03T00:00:00Z'),
      });
      expect(spans(slots)).toEqual([
        '2026-10-31T13:00:00.000Z/2026-10-31T13:30:00.000Z',
        // 00:30, 01:00, 01:30 EDT; then 02:00 EST (the clocks showed 01:00-01:59 twice).
        '2026-11-01T04:30:00.000Z/2026-11-01T05:00:00.000Z',
        '2026-11-01T05:00:00.000Z/2026-11-01T05:30:00.000Z',
        '2026-11-01T05:30:00.000Z/2026-11-01T06:00:00.000Z',
        '2026-11-01T07:00:00.000Z/2026-11-01T07:30:00.000Z',
        '2026-11-02T14:00:00.000Z/2026-11-02T14:30:00.000Z',
      ]);
    });
  });

  it('uses the fixed +05:30 offset of Asia/Kolkata all year', () => {
    const march = plan({
      timeZone: 'Asia/Kolkata',
      slotMinutes: 60,
      rules: everyDay('09:00', '10:00'),
      from: new Date('2026-03-27T00:00:00Z'),
      to: new Date('2026-03-31T00:00:00Z'),
    });
    expect(starts(march)).toEqual([
      '2026-03-27T03:30:00.000Z',
      '2026-03-28T03:30:00.000Z',
      '2026-03-29T03:30:00.000Z',
      '2026-03-30T03:30:00.000Z',
    ]);
    const october = plan({
      timeZone: 'Asia/Kolkata',
      slotMinutes: 60,
      rules: everyDay('09:00', '10:00'),
      ...aroundDay('2026-10-25'),
    });
    expect(starts(october)).toContain('2026-10-25T03:30:00.000Z');
  });

  it('plans the local date of the zone, not of UTC (a Monday morning in Auckland is Sunday in UTC)', () => {
    const slots = plan({
      timeZone: 'Pacific/Auckland',
      slotMinutes: 60,
      rules: [{ weekday: 1, start: '08:00', end: '09:00' }],
      from: new Date('2026-03-28T00:00:00Z'),
      to: new Date('2026-04-01T00:00:00Z'),
    });
    // Monday 2026-03-30 08:00 NZDT (+13) is Sunday 19:00Z.
    expect(starts(slots)).toEqual(['2026-03-29T19:00:00.000Z']);
  });

  it('is empty for an empty range', () => {
    const at = new Date('2026-03-30T00:00:00Z');
    expect(plan({ rules: everyDay('00:00', '24:00'), from: at, to: at })).toEqual([]);
  });
});
