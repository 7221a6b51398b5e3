import type { PlatformConfig } from '@keel/platform/config';
import { type FieldEncryption, loadFieldCrypto } from '@keel/platform/crypto';
import type { KeelApp } from '@keel/platform/http';
import type { ServiceMountContext } from '@keel/platform/module';
import { wireAnalytics } from './analytics/analytics.wiring.ts';
import { wireAvailability } from './availability/availability.wiring.ts';
import { wireBooking } from './booking/booking.wiring.ts';
import { wireClinical } from './clinical/clinical.wiring.ts';
import { wireCompliance } from './compliance/compliance.wiring.ts';
import type { TelemedicineDatabase, TelemedicineSchema } from './database.ts';
import { wireDoctors } from './doctors/doctors.wiring.ts';
import { wirePatients } from './patients/patients.wiring.ts';
import { wirePayments } from './payments/payments.wiring.ts';
import { wirePrescriptions } from './prescriptions/prescriptions.wiring.ts';
import { wireReviews } from './reviews/reviews.wiring.ts';
import { wireSearch } from './search/search.wiring.ts';

/** The service's tunables, from the platform configuration (README lists them). */
export type TelemedicineSettings = {
  /** How long a booking holds its slot while payment is pending. */
  holdMinutes: number;
  /** How far ahead slots are materialised. */
  slotHorizonDays: number;
  /** A patient who cancels at least this long before the start gets a full refund. */
  fullRefundHours: number;
  /** What a later patient cancellation refunds, in percent of the fee. */
  lateCancelRefundPercent: number;
  searchCacheTtlSeconds: number;
  /** How often a marked search-cache invalidation is published (one generation bump at most per interval). */
  searchCacheCoalesceMs: number;
};

/** What every telemedicine feature is built from. */
export type TelemedicineDependencies = ServiceMountContext & {
  db: TelemedicineDatabase;
  encryption: FieldEncryption;
  settings: TelemedicineSettings;
};

/**
 * The platform's keyring (the same variables, or the same generated file
 * outside production, that the platform itself loads at start).
 */
export function loadTelemedicineEncryption(config: PlatformConfig): FieldEncryption {
  return loadFieldCrypto({
    ...(config.KEEL_ENCRYPTION_KEYS === undefined ? {} : { encryptionKeys: config.KEEL_ENCRYPTION_KEYS }),
    ...(config.KEEL_BLIND_INDEX_KEY === undefined ? {} : { blindIndexKey: config.KEEL_BLIND_INDEX_KEY }),
    dataDirectory: config.KEEL_DATA_DIR,
    allowGenerate: config.NODE_ENV !== 'production',
  }).encryption;
}

export function createTelemedicineDependencies(context: ServiceMountContext): TelemedicineDependencies {
  const { config } = context;
  return {
    ...context,
    db: context.database.typed<TelemedicineSchema>(),
    encryption: loadTelemedicineEncryption(config),
    settings: {
      holdMinutes: config.TELEMEDICINE_HOLD_MINUTES,
      slotHorizonDays: config.TELEMEDICINE_SLOT_HORIZON_DAYS,
      fullRefundHours: config.TELEMEDICINE_FULL_REFUND_HOURS,
      lateCancelRefundPercent: config.TELEMEDICINE_LATE_CANCEL_REFUND_PERCENT,
      searchCacheTtlSeconds: config.TELEMEDICINE_SEARCH_CACHE_TTL_SECONDS,
      searchCacheCoalesceMs: config.TELEMEDICINE_SEARCH_CACHE_COALESCE_MS,
    },
  };
}

/**
 * The telemedicine service's composition root. Each feature's `wire*` builds
 * that feature's objects from the shared dependencies and registers its
 * routes, event subscriptions and job queues. The payments feature comes
 * before booking (booking calls the gateway) and hands its webhook events to
 * the booking saga; the order here is the order routes appear in OpenAPI.
 */
export function registerTelemedicineService(app: KeelApp, context: ServiceMountContext): void {
  const deps = createTelemedicineDependencies(context);
  wirePatients(app, deps);
  wireDoctors(app, deps);
  wireAvailability(app, deps);
  wireSearch(app, deps);
  const payments = wirePayments(app, deps);
  wireBooking(app, deps, payments);
  wireClinical(app, deps);
  wirePrescriptions(app, deps);
  wireReviews(app, deps);
  wireCompliance(app, deps);
  wireAnalytics(app, deps);
}
