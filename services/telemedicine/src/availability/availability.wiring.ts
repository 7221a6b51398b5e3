import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerAvailabilityRoutes } from './availability.routes.ts';
import { createAvailabilityService } from './availability.service.ts';
import {
  createExtendSlotWindowsQueue,
  createMaterialiseSlotsQueue,
  EXTEND_SLOT_WINDOWS_CRON,
  EXTEND_SLOT_WINDOWS_QUEUE,
} from './materialise-slots.job.ts';
import { createDoctorVerificationSubscription } from './on-doctor-profile-changed.handler.ts';
import { createSlotMaterialiser } from './slot-materialiser.ts';

/** Builds the availability feature and registers its routes, subscription, jobs and hourly roll. */
export function wireAvailability(app: KeelApp, deps: TelemedicineDependencies): void {
  const logger = deps.logger.child({ component: 'telemedicine.availability' });
  const materialiser = createSlotMaterialiser({
    db: deps.db,
    clock: deps.clock,
    ids: deps.ids,
    logger,
    settings: deps.settings,
  });
  const availability = createAvailabilityService({
    db: deps.db,
    clock: deps.clock,
    ids: deps.ids,
    logger,
    jobs: deps.background.jobs,
    materialiser,
  });
  registerAvailabilityRoutes(app, availability);
  deps.background.subscribe(createDoctorVerificationSubscription({ materialiser }));
  deps.background.addJobQueue(createMaterialiseSlotsQueue({ materialiser }));
  deps.background.addJobQueue(createExtendSlotWindowsQueue({ db: deps.db, jobs: deps.background.jobs }));
  deps.background.schedule(EXTEND_SLOT_WINDOWS_QUEUE, EXTEND_SLOT_WINDOWS_CRON);
}
