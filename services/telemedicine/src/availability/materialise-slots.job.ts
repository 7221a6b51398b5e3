import { AppError } from '@keel/platform/errors';
import type { JobQueueDefinition } from '@keel/platform/jobs';
import type { JobSender } from '@keel/platform/module';
import type { TelemedicineDatabase } from '../database.ts';
import { findScheduledVerifiedDoctorIds } from './schedule.repository.ts';
import type { SlotMaterialiser } from './slot-materialiser.ts';

export const MATERIALISE_SLOTS_QUEUE = 'telemedicine.materialise-slots';
export const EXTEND_SLOT_WINDOWS_QUEUE = 'telemedicine.extend-slot-windows';
/** Hourly, off the full hour: rolls every schedule's horizon forward. */
export const EXTEND_SLOT_WINDOWS_CRON = '15 * * * *';

export type MaterialiseSlotsJob = { doctorId: string };

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOCTORS_PER_PAGE = 500;

/** Options every sender of a materialise job uses: one waiting job per doctor is enough. */
export function materialiseJobOptions(doctorId: string): { singletonKey: string } {
  return { singletonKey: doctorId };
}

/**
 * Materialises one doctor's slots. Sent with every availability write (in its
 * transaction, so it exists exactly when the write does) as the safety net
 * for the inline run, and by the hourly roll. Idempotent: a rerun finds
 * nothing to do. `stately`: with one job waiting per doctor, more sends add
 * nothing, since the waiting one reads the schedule when it runs.
 */
export function createMaterialiseSlotsQueue(deps: {
  materialiser: SlotMaterialiser;
}): JobQueueDefinition<MaterialiseSlotsJob> {
  return {
    name: MATERIALISE_SLOTS_QUEUE,
    policy: 'stately',
    retryLimit: 5,
    retryDelaySeconds: 5,
    retryBackoff: true,
    deadLetter: true,
    concurrency: 2,
    handler: async (job) => {
      const { doctorId } = job.data;
      if (typeof doctorId !== 'string' || !UUID_PATTERN.test(doctorId)) {
        throw new AppError('invalid', 'telemedicine.invalid_job', 'The job names no doctor id');
      }
      await deps.materialiser.materialiseNow(doctorId);
    },
  };
}

/**
 * The hourly roll: one materialise job per verified doctor with a schedule,
 * so the horizon moves forward with the clock. Sends are keyed per doctor, so
 * a doctor whose job still waits gets no second one.
 */
export function createExtendSlotWindowsQueue(deps: {
  db: TelemedicineDatabase;
  jobs: JobSender;
}): JobQueueDefinition<object> {
  return {
    name: EXTEND_SLOT_WINDOWS_QUEUE,
    policy: 'exclusive',
    retryLimit: 2,
    retryDelaySeconds: 30,
    deadLetter: true,
    handler: async (job) => {
      let afterId: string | undefined;
      for (;;) {
        if (job.signal.aborted) return;
        const doctorIds = await deps.db.run((db) =>
          findScheduledVerifiedDoctorIds(db, afterId, DOCTORS_PER_PAGE),
        );
        for (const doctorId of doctorIds) {
          await deps.jobs.send<MaterialiseSlotsJob>(
            MATERIALISE_SLOTS_QUEUE,
            { doctorId },
            materialiseJobOptions(doctorId),
          );
        }
        if (doctorIds.length < DOCTORS_PER_PAGE) return;
        afterId = doctorIds.at(-1);
      }
    },
  };
}
