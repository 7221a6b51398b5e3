import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerDoctorRoutes } from './doctor.routes.ts';
import { createDoctorService } from './doctor.service.ts';

/** Builds the doctors feature (profiles, verification) and registers its routes. */
export function wireDoctors(app: KeelApp, deps: TelemedicineDependencies): void {
  const doctors = createDoctorService({ db: deps.db, clock: deps.clock });
  registerDoctorRoutes(app, doctors);
}
