import { CONSULTATION_STATUSES } from '@keel/contracts';
import { describe, expect, it } from 'vitest';
import { earliestMomentFor, isNotesWritable, targetStatusOf } from './clinical.ts';
import { isReminderDue, planReminders } from './reminders.ts';

const startsAt = new Date('2030-03-01T09:00:00.000Z');
const consultationId = '0190a1b2-0000-7000-8000-000000000001';

describe('lifecycle windows', () => {
  it('opens the start 15 minutes before and the no-show 10 minutes after the start; completion any time', () => {
    expect(earliestMomentFor('start', startsAt)?.toISOString()).toBe('2030-03-01T08:45:00.000Z');
    expect(earliestMomentFor('no_show', startsAt)?.toISOString()).toBe('2030-03-01T09:10:00.000Z');
    expect(earliestMomentFor('complete', startsAt)).toBeUndefined();
  });

  it('maps each action to its target status', () => {
    expect([targetStatusOf('start'), targetStatusOf('complete'), targetStatusOf('no_show')]).toEqual([
      'IN_PROGRESS',
      'COMPLETED',
      'NO_SHOW',
    ]);
  });

  it('accepts notes only while IN_PROGRESS or COMPLETED', () => {
    expect(CONSULTATION_STATUSES.filter(isNotesWritable)).toEqual(['IN_PROGRESS', 'COMPLETED']);
  });
});

describe('planReminders', () => {
  it('plans both reminders when the start is more than a day away, keyed by consultation, kind and start', () => {
    const now = new Date('2030-02-27T09:00:00.000Z');
    expect(planReminders(consultationId, startsAt, now)).toEqual([
      {
        job: { consultationId, kind: '24h', startsAt: startsAt.toISOString() },
        startAfterSeconds: 24 * 3600,
        singletonKey: `${consultationId}:24h:${startsAt.toISOString()}`,
      },
      {
        job: { consultationId, kind: '1h', startsAt: startsAt.toISOString() },
        startAfterSeconds: 47 * 3600,
        singletonKey: `${consultationId}:1h:${startsAt.toISOString()}`,
      },
    ]);
  });

  it('skips the reminders whose moment has passed', () => {
    expect(
      planReminders(consultationId, startsAt, new Date('2030-03-01T06:00:00.000Z')).map((r) => r.job.kind),
    ).toEqual(['1h']);
    expect(planReminders(consultationId, startsAt, new Date('2030-03-01T08:30:00.000Z'))).toEqual([]);
  });

  it('sends a reminder due exactly now at once', () => {
    const [reminder] = planReminders(consultationId, startsAt, new Date('2030-03-01T08:00:00.000Z'));
    expect(reminder).toMatchObject({ job: { kind: '1h' }, startAfterSeconds: 0 });
  });
});

describe('isReminderDue', () => {
  const job = { startsAt: startsAt.toISOString() };

  it('is due only for a SCHEDULED consultation at the planned start', () => {
    expect(isReminderDue({ status: 'SCHEDULED', startsAt }, job)).toBe(true);
    expect(isReminderDue({ status: 'CANCELLED', startsAt }, job)).toBe(false);
    expect(isReminderDue({ status: 'IN_PROGRESS', startsAt }, job)).toBe(false);
    expect(
      isReminderDue({ status: 'SCHEDULED', startsAt: new Date(startsAt.getTime() + 3_600_000) }, job),
    ).toBe(false);
    expect(isReminderDue({ status: 'SCHEDULED', startsAt }, { startsAt: 'not a date' })).toBe(false);
  });
});
