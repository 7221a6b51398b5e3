import { ConsultationConfirmedV1, ConsultationRescheduledV1, type EventEnvelope } from '@keel/contracts';
import type { Clock, JobSender } from '@keel/platform/module';
import type { Subscription } from '@keel/platform/outbox';
import { planReminders, type ReminderJob } from './reminders.ts';
import { SEND_REMINDER_QUEUE } from './send-reminder.job.ts';

export const REMINDERS_SUBSCRIPTION_NAME = 'telemedicine.reminders';

function scheduledStartOf(event: EventEnvelope): { consultationId: string; startsAt: string } | undefined {
  if (event.type === ConsultationConfirmedV1.type) return ConsultationConfirmedV1.parse(event).payload;
  if (event.type === ConsultationRescheduledV1.type) return ConsultationRescheduledV1.parse(event).payload;
  return undefined;
}

/**
 * Plans a consultation's reminders when it is confirmed or moved: delayed
 * jobs enqueued in the inbox transaction, so an event plans them once however
 * often it is delivered. Reminders of the old start are not cancelled; each
 * job re-reads the consultation and does nothing once the start has moved or
 * the consultation is no longer booked.
 */
export function createRemindersSubscription(deps: { clock: Clock; jobs: JobSender }): Subscription {
  return {
    name: REMINDERS_SUBSCRIPTION_NAME,
    eventTypes: [ConsultationConfirmedV1.type, ConsultationRescheduledV1.type],
    isOrderedPerAggregate: true,
    maxAttempts: 10,
    handler: async (event, trx) => {
      const scheduled = scheduledStartOf(event);
      if (scheduled === undefined) return;
      const planned = planReminders(scheduled.consultationId, new Date(scheduled.startsAt), deps.clock.now());
      for (const reminder of planned) {
        await deps.jobs.sendWith<ReminderJob>(trx, SEND_REMINDER_QUEUE, reminder.job, {
          startAfterSeconds: reminder.startAfterSeconds,
          singletonKey: reminder.singletonKey,
        });
      }
    },
  };
}
