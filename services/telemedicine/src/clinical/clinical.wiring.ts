import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerClinicalRoutes } from './clinical.routes.ts';
import { createClinicalService } from './clinical.service.ts';
import { createRemindersSubscription } from './on-consultation-scheduled.handler.ts';
import { createSendReminderQueue } from './send-reminder.job.ts';

/** Builds the clinical feature (lifecycle, notes, reminders) and registers its routes, subscription and job. */
export function wireClinical(app: KeelApp, deps: TelemedicineDependencies): void {
  const clinical = createClinicalService({ db: deps.db, clock: deps.clock, encryption: deps.encryption });
  registerClinicalRoutes(app, clinical);
  deps.background.subscribe(createRemindersSubscription({ clock: deps.clock, jobs: deps.background.jobs }));
  deps.background.addJobQueue(createSendReminderQueue({ db: deps.db, notifier: deps.notifier }));
}
