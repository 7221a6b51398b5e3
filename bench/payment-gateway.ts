// The simulated payment gateway in a process of its own, for the telemedicine
// scenarios: in production the gateway is someone else's server, so its
// work (HTTP, JSON, its ledger) must not be billed to Keel's event loop, as
// the in-process gateway `npm start` uses would. Webhooks go to
// KEEL_WEBHOOK_URL over HTTP, signed with PAYMENTS_WEBHOOK_SECRET.
import { createSimulatedGateway } from '../services/telemedicine/src/payments/simulated-gateway/simulated-gateway.ts';

const { PORT, PAYMENTS_API_KEY, PAYMENTS_WEBHOOK_SECRET, KEEL_WEBHOOK_URL } = process.env;
if (!PAYMENTS_API_KEY || !PAYMENTS_WEBHOOK_SECRET || !KEEL_WEBHOOK_URL) {
  throw new Error('payment-gateway needs PAYMENTS_API_KEY, PAYMENTS_WEBHOOK_SECRET and KEEL_WEBHOOK_URL');
}
const webhookUrl = KEEL_WEBHOOK_URL;

const gateway = createSimulatedGateway({
  apiKey: PAYMENTS_API_KEY,
  webhookSecret: PAYMENTS_WEBHOOK_SECRET,
  clock: { now: () => new Date() },
  webhookMode: 'auto',
  port: Number(PORT ?? 0),
  deliver: async (body, headers) => {
    const response = await fetch(webhookUrl, { method: 'POST', headers, body });
    await response.arrayBuffer();
    return { statusCode: response.status };
  },
});
// The harness waits for this before starting Keel.
gateway.app.get('/ready', async () => ({ status: 'ok' }));
await gateway.listen();

process.once('SIGTERM', () => {
  gateway.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
