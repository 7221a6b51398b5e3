import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerPrescriptionRoutes } from './prescription.routes.ts';
import { createPrescriptionService } from './prescription.service.ts';
import { loadPrescriptionFonts } from './prescription-fonts.ts';
import { loadPrescriptionSigningKey, loadRetiredVerificationKeys } from './prescription-signing-key.ts';

/**
 * Builds the prescriptions feature and registers its routes. Loading the
 * keys here makes a production start without
 * TELEMEDICINE_PRESCRIPTION_SIGNING_KEY, or with a malformed retired key,
 * fail at once, not at the first prescription or verification; likewise
 * the PDF fonts are read and parsed here, once per process, not per print.
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
  const retiredKeys = loadRetiredVerificationKeys(
    config.TELEMEDICINE_PRESCRIPTION_RETIRED_PUBLIC_KEYS,
    signingKey,
  );
  deps.logger.info(
    { kid: signingKey.kid, source: signingKey.source, retiredKids: retiredKeys.map((key) => key.kid) },
    'prescription signing key loaded',
  );
  const prescriptions = createPrescriptionService({
    db: deps.db,
    clock: deps.clock,
    ids: deps.ids,
    encryption: deps.encryption,
    signingKey,
    retiredKeys,
  });
  registerPrescriptionRoutes(app, prescriptions, loadPrescriptionFonts());
}
