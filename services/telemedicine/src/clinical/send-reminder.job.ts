import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { Notifier } from '@keel/platform/notifier';
import type { TelemedicineDatabase } from '../database.ts';
import { findReminderTarget } from './clinical.repository.ts';
import { isReminderDue, REMINDER_TEMPLATE, type ReminderJob } from './reminders.ts';

export const SEND_REMINDER_QUEUE = 'telemedicine.send-reminder';

/**
 * Sends one reminder to the patient and the doctor, if the consultation is
 * still SCHEDULED at the start the reminder was planned for (a cancelled or
 * rescheduled consultation's old reminders end here, doing nothing).
 * At least once: a notifier failure retries the job, and a retry after the
 * patient's message went out sends it again; reminders are harmless to repeat.
 * The message carries ids and times only, never clinical content.
 */
export function createSendReminderQueue(deps: {
  db: TelemedicineDatabase;
  notifier: Notifier;
}): JobQueueDefinition<ReminderJob> {
  return {
    name: SEND_REMINDER_QUEUE,
    retryLimit: 5,
    retryDelaySeconds: 30,
    retryBackoff: true,
    deadLetter: true,
    // With the singleton key (consultation, kind, start) one reminder waits per planned moment.
    policy: 'short',
    concurrency: 4,
    handler: async (job) => {
      const { consultationId, kind, startsAt } = job.data;
      const target = await deps.db.run((db) => findReminderTarget(db, consultationId));
      if (target === undefined || !isReminderDue(target, job.data)) return;
      const data = { consultationId, startsAt, kind };
      // People are addressed by account, as everywhere in Keel: the notifier adapter resolves
      // `account:<id>` to a channel, so no contact detail travels in job payloads.
      await deps.notifier.send({ to: `account:${target.patientId}`, template: REMINDER_TEMPLATE, data });
      await deps.notifier.send({ to: `account:${target.doctorId}`, template: REMINDER_TEMPLATE, data });
    },
  };
}
