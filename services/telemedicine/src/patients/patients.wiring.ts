import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerPatientRoutes } from './patient.routes.ts';
import { createPatientService } from './patient.service.ts';

/** Builds the patients feature (profiles) and registers its routes. */
export function wirePatients(app: KeelApp, deps: TelemedicineDependencies): void {
  const patients = createPatientService({ db: deps.db, encryption: deps.encryption, clock: deps.clock });
  registerPatientRoutes(app, patients);
}
