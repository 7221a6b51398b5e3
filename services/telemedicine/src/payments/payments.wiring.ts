import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import type { PaymentEventHandler, PaymentProvider } from './payment-provider.ts';

/** What the payments feature gives the booking saga. */
export type PaymentsFeature = {
  provider: PaymentProvider;
  /** Booking registers the saga's webhook handler here (once, while wiring). */
  handleEventsWith(handler: PaymentEventHandler): void;
};

/** Builds the payments feature: the gateway adapter and the webhook route. (Placeholder until the feature lands.) */
export function wirePayments(_app: KeelApp, _deps: TelemedicineDependencies): PaymentsFeature {
  const notBuilt = (): never => {
    throw new Error('payments feature not built yet');
  };
  return {
    provider: { name: 'unbuilt', createIntent: notBuilt, cancelIntent: notBuilt, refund: notBuilt },
    handleEventsWith: () => {},
  };
}
