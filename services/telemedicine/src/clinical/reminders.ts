import { assertNever } from '@keel/platform/errors';

// When consultation reminders go out. Pure: the subscriber plans them, a
// delayed job sends each one after re-checking the consultation.

export const REMINDER_KINDS = ['24h', '1h'] as const;
export type ReminderKind = (typeof REMINDER_KINDS)[number];

export const REMINDER_TEMPLATE = 'telemedicine.consultation_reminder';

/** The payload of one `telemedicine.send-reminder` job. `startsAt` is the start it was planned for. */
export type ReminderJob = { consultationId: string; kind: ReminderKind; startsAt: string };

export type PlannedReminder = { job: ReminderJob; startAfterSeconds: number; singletonKey: string };

export function leadTimeMs(kind: ReminderKind): number {
  switch (kind) {
    case '24h':
      return 24 * 3_600_000;
    case '1h':
      return 3_600_000;
    default:
      return assertNever(kind);
  }
}

/**
 * The reminders still ahead of `now` for a consultation starting at
 * `startsAt`: one 24 hours and one an hour before, each skipped once its
 * moment has passed (a booking made 3 hours ahead gets only the 1-hour one).
 * The singleton key names the start, so a reschedule plans new reminders
 * instead of colliding with the old ones, which then find the start moved
 * and send nothing.
 */
export function planReminders(consultationId: string, startsAt: Date, now: Date): PlannedReminder[] {
  const startsAtText = startsAt.toISOString();
  return REMINDER_KINDS.flatMap((kind) => {
    const dueInMs = startsAt.getTime() - leadTimeMs(kind) - now.getTime();
    if (dueInMs < 0) return [];
    return [
      {
        job: { consultationId, kind, startsAt: startsAtText },
        startAfterSeconds: Math.ceil(dueInMs / 1000),
        singletonKey: `${consultationId}:${kind}:${startsAtText}`,
      },
    ];
  });
}

/** Whether a planned reminder still applies: the consultation is still booked, for the same start. */
export function isReminderDue(
  consultation: { status: string; startsAt: Date },
  job: Pick<ReminderJob, 'startsAt'>,
): boolean {
  return consultation.status === 'SCHEDULED' && consultation.startsAt.getTime() === Date.parse(job.startsAt);
}
