import { randomBytes } from 'node:crypto';
import type { KeelApp } from '@keel/platform/http';
import { type Clock, systemClock } from '@keel/platform/module';
import { findFreePort } from '@keel/platform/testing';
import type {
  GatewayIntent,
  GatewayPaymentMethod,
} from '../src/payments/simulated-gateway/gateway-ledger.ts';
import {
  createSimulatedGateway,
  type SimulatedGateway,
} from '../src/payments/simulated-gateway/simulated-gateway.ts';

export const PAYMENTS_WEBHOOK_URL = '/telemedicine/payments/webhooks';

export type GatewayForTests = {
  /** For `useTestApp({ env })`: the app talks to this gateway over HTTP with these credentials. */
  env: { PAYMENTS_GATEWAY_URL: string; PAYMENTS_API_KEY: string; PAYMENTS_WEBHOOK_SECRET: string };
  gateway: SimulatedGateway;
  /** Listens, and delivers webhooks to `app` (POST /telemedicine/payments/webhooks via inject). */
  start(app: Pick<KeelApp, 'inject'>): Promise<void>;
  stop(): Promise<void>;
  /** The payer's step, then waits until its webhook was delivered (auto mode). */
  pay(intentId: string, paymentMethod?: GatewayPaymentMethod): Promise<GatewayIntent>;
};

/**
 * A simulated gateway on a port chosen now, so its URL can go into
 * `useTestApp({ env })`. Pass the test's clock when the test moves time: the
 * webhook route checks signature timestamps against the app's clock.
 *
 * @example
 * const payments = await createGatewayForTests({ clock });
 * const harness = useTestApp({ modules: [telemedicineModule], clock, env: payments.env });
 * beforeAll(() => payments.start(harness.testApp.app));
 * afterAll(() => payments.stop());
 */
export async function createGatewayForTests(
  options: { clock?: Clock; webhookMode?: 'auto' | 'manual'; deliveryAttempts?: number } = {},
): Promise<GatewayForTests> {
  const port = await findFreePort();
  const apiKey = `sk_test_${randomBytes(16).toString('hex')}`;
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  let target: Pick<KeelApp, 'inject'> | undefined;
  const gateway = createSimulatedGateway({
    apiKey,
    webhookSecret,
    port,
    clock: options.clock ?? systemClock,
    webhookMode: options.webhookMode ?? 'auto',
    ...(options.deliveryAttempts === undefined ? {} : { deliveryAttempts: options.deliveryAttempts }),
    deliveryBackoffMs: 5,
    deliver: async (body, headers) => {
      if (target === undefined) throw new Error('createGatewayForTests: call start(app) before delivering');
      const response = await target.inject({
        method: 'POST',
        url: PAYMENTS_WEBHOOK_URL,
        headers,
        payload: body,
      });
      return { statusCode: response.statusCode };
    },
  });
  return {
    env: {
      PAYMENTS_GATEWAY_URL: `http://127.0.0.1:${port}`,
      PAYMENTS_API_KEY: apiKey,
      PAYMENTS_WEBHOOK_SECRET: webhookSecret,
    },
    gateway,
    async start(app) {
      target = app;
      await gateway.listen();
    },
    stop: () => gateway.close(),
    async pay(intentId, paymentMethod = 'pm_card_ok') {
      const intent = await gateway.confirmIntent(intentId, paymentMethod);
      await gateway.idle();
      return intent;
    },
  };
}
