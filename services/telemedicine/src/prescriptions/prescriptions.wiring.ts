import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerPrescriptionRoutes } from './prescription.routes.ts';
import { createPrescriptionService } from './prescription.service.ts';
import { loadPrescriptionSigningKey } from './prescription-signing-key.ts';

/**
 * Builds the prescriptions feature and registers its routes. Loading the
 * signing key here makes a production start without
 * TELEMEDICINE_PRESCRIPTION_SIGNING_KEY fail at once, not at the first prescription.
 */
export function wirePrescriptions(app: KeelApp, deps: TelemedicineDependencies): void {
  const { config } = deps;
  const signingKey = loadPrescriptionSigningKey({
    ...(config.TELEMEDICINE_PRESCRIPTION_SIGNING_KEY === undefined
      ? {}
      : { signingKey: config.TELEMEDICINE_PRESCRIPTION_SIGNING_KEY }),
    dataDirectory: config.KEEL_DATA_DIR,
    allowGenerate: config.NODE_ENV !== 'production',
  });
  deps.logger.info({ kid: signingKey.kid, source: signingKey.source }, 'prescription signing key loaded');
  const prescriptions = createPrescriptionService({
    db: deps.db,
    clock: deps.clock,
    ids: deps.ids,
    encryption: deps.encryption,
    signingKey,
  });
  registerPrescriptionRoutes(app, prescriptions);
}
