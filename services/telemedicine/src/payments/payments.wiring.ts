import { randomBytes } from 'node:crypto';
import { ConfigError } from '@keel/platform/config';
import type { KeelApp } from '@keel/platform/http';
import type { Logger } from '@keel/platform/observability';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerPaymentRoutes } from './payment.routes.ts';
import { createPaymentService } from './payment.service.ts';
import { createPaymentGatewayClient } from './payment-gateway.client.ts';
import type { PaymentEventHandler, PaymentProvider } from './payment-provider.ts';
import { createSimulatedGateway } from './simulated-gateway/simulated-gateway.ts';

/** What the payments feature gives the booking saga. */
export type PaymentsFeature = {
  provider: PaymentProvider;
  /** Booking registers the saga's webhook handler here (once, while wiring). */
  handleEventsWith(handler: PaymentEventHandler): void;
};

type GatewayConnection = { provider: PaymentProvider; webhookSecret: string };

/**
 * Outside production, without PAYMENTS_GATEWAY_URL: a simulated gateway in
 * this process, listening on a loopback port from the first call on, its
 * webhooks delivered straight to our own route. Payers confirm with the
 * client secret at the logged URL (`POST /v1/payment_intents/{id}/confirm`).
 */
function connectSimulatedGateway(
  app: KeelApp,
  deps: TelemedicineDependencies,
  logger: Logger,
): GatewayConnection {
  const webhookSecret = deps.config.PAYMENTS_WEBHOOK_SECRET ?? randomBytes(32).toString('base64url');
  const apiKey = `sk_sim_${randomBytes(24).toString('base64url')}`;
  const webhookUrl = `${app.prefix}/payments/webhooks`;
  const gateway = createSimulatedGateway({
    apiKey,
    webhookSecret,
    clock: deps.clock,
    webhookMode: 'auto',
    deliver: async (body, headers) => {
      const response = await app.inject({ method: 'POST', url: webhookUrl, headers, payload: body });
      return { statusCode: response.statusCode };
    },
  });
  let client: Promise<PaymentProvider> | undefined;
  const started = (): Promise<PaymentProvider> => {
    client ??= gateway.listen().then(
      (baseUrl) => {
        logger.info({ baseUrl }, 'simulated payment gateway listening (not for production)');
        return createPaymentGatewayClient({
          baseUrl,
          apiKey,
          timeoutMs: deps.config.PAYMENTS_TIMEOUT_MS,
          fetch: globalThis.fetch,
          logger,
        });
      },
      (error: unknown) => {
        client = undefined;
        throw error;
      },
    );
    return client;
  };
  app.addHook('onClose', async () => {
    await gateway.close();
  });
  return {
    webhookSecret,
    provider: {
      name: 'gateway',
      createIntent: async (input) => (await started()).createIntent(input),
      cancelIntent: async (intentId, options) => (await started()).cancelIntent(intentId, options),
      refund: async (input) => (await started()).refund(input),
    },
  };
}

function connectGateway(app: KeelApp, deps: TelemedicineDependencies, logger: Logger): GatewayConnection {
  const { config } = deps;
  if (config.PAYMENTS_GATEWAY_URL === undefined) {
    if (config.NODE_ENV === 'production')
      throw new ConfigError([
        'PAYMENTS_GATEWAY_URL: required in production (with PAYMENTS_API_KEY and PAYMENTS_WEBHOOK_SECRET); ' +
          'the simulated gateway only runs outside production',
      ]);
    return connectSimulatedGateway(app, deps, logger);
  }
  const { PAYMENTS_API_KEY: apiKey, PAYMENTS_WEBHOOK_SECRET: webhookSecret } = config;
  if (apiKey === undefined || webhookSecret === undefined)
    throw new ConfigError(
      [
        apiKey === undefined ? 'PAYMENTS_API_KEY' : '',
        webhookSecret === undefined ? 'PAYMENTS_WEBHOOK_SECRET' : '',
      ]
        .filter((name) => name !== '')
        .map((name) => `${name}: required when PAYMENTS_GATEWAY_URL is set`),
    );
  return {
    webhookSecret,
    provider: createPaymentGatewayClient({
      baseUrl: config.PAYMENTS_GATEWAY_URL,
      apiKey,
      timeoutMs: config.PAYMENTS_TIMEOUT_MS,
      fetch: globalThis.fetch,
      logger,
    }),
  };
}

/** Builds the payments feature: the gateway adapter, the webhook route and the payment read routes. */
export function wirePayments(app: KeelApp, deps: TelemedicineDependencies): PaymentsFeature {
  const logger = deps.logger.child({ component: 'payments' });
  const { provider, webhookSecret } = connectGateway(app, deps, logger);
  let eventHandler: PaymentEventHandler | undefined;
  registerPaymentRoutes(
    app,
    createPaymentService({
      db: deps.db,
      clock: deps.clock,
      logger,
      providerName: provider.name,
      webhookSecret,
      webhookToleranceSeconds: deps.config.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS,
      eventHandler: () => eventHandler,
    }),
  );
  return {
    provider,
    handleEventsWith(handler) {
      // Two sagas applying the same event would each see it as new: a wiring mistake.
      if (eventHandler !== undefined) throw new Error('A payment event handler is already registered');
      eventHandler = handler;
    },
  };
}
