import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import type { PaymentsFeature } from '../payments/payments.wiring.ts';

/** Builds the booking saga and the consultation read routes. (Placeholder until the feature lands.) */
export function wireBooking(
  _app: KeelApp,
  _deps: TelemedicineDependencies,
  _payments: PaymentsFeature,
): void {}
