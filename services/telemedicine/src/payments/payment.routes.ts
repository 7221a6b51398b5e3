import { AppError } from '@keel/platform/errors';
import { type KeelApp, type Principal, problemResponses } from '@keel/platform/http';
import type { FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import { GATEWAY_SIGNATURE_HEADER } from './gateway-signature.ts';
import {
  ConsultationIdParams,
  PaymentIdParams,
  PaymentResponse,
  WebhookReceiptResponse,
} from './payment.schemas.ts';
import type { PaymentService } from './payment.service.ts';
import type { Payment } from './payment.ts';

const TAGS = ['payments'];
const SECURITY = [{ bearerAuth: [] }];
/** Gateway events are small; anything bigger is not one. */
export const WEBHOOK_BODY_LIMIT_BYTES = 64 * 1024;

function toPaymentResponse(payment: Payment): Static<typeof PaymentResponse> {
  return {
    id: payment.id,
    consultation_id: payment.consultationId,
    status: payment.status,
    amount_minor: payment.amountMinor,
    currency: payment.currency,
    refunded_minor: payment.refundedMinor,
    client_secret: payment.clientSecret,
    created_at: payment.createdAt.toISOString(),
    updated_at: payment.updatedAt.toISOString(),
    refunds: payment.refunds.map((refund) => ({
      id: refund.id,
      amount_minor: refund.amountMinor,
      reason: refund.reason,
      status: refund.status,
    })),
  };
}

function principalOf(request: FastifyRequest): Principal {
  // The access hook set it before any handler with a permission rule runs.
  if (request.principal === undefined)
    throw new AppError('unauthenticated', 'auth.unauthenticated', 'This operation needs valid credentials');
  return request.principal;
}

const READ_DESCRIPTION =
  'For the consultation’s patient, and for support and admins (`telemedicine:read_payments`); ' +
  'anyone else, the doctor included, gets 404 `telemedicine.payment_not_found`. `client_secret` ' +
  'is only returned to the patient, while the payment is REQUIRES_PAYMENT.';

/** The read routes (`/payments/{id}`, `/consultations/{id}/payment`) and the gateway's webhook. */
export function registerPaymentRoutes(app: KeelApp, payments: PaymentService): void {
  app.get(
    '/payments/:paymentId',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readConsultations },
      schema: {
        operationId: 'getPayment',
        tags: TAGS,
        summary: 'A payment and its refunds',
        description: READ_DESCRIPTION,
        security: SECURITY,
        params: PaymentIdParams,
        response: {
          200: { ...PaymentResponse, description: 'The payment' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const payment = await payments.getPayment(principalOf(request), request.params.paymentId);
      // It may carry a client secret: no shared cache may keep it.
      return reply.header('cache-control', 'no-store').send(toPaymentResponse(payment));
    },
  );

  app.get(
    '/consultations/:consultationId/payment',
    {
      config: { access: TELEMEDICINE_PERMISSIONS.readConsultations },
      schema: {
        operationId: 'getConsultationPayment',
        tags: TAGS,
        summary: 'The payment of a consultation',
        description: READ_DESCRIPTION,
        security: SECURITY,
        params: ConsultationIdParams,
        response: {
          200: { ...PaymentResponse, description: 'The payment' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const payment = await payments.getConsultationPayment(
        principalOf(request),
        request.params.consultationId,
      );
      return reply.header('cache-control', 'no-store').send(toPaymentResponse(payment));
    },
  );

  // Encapsulated: this context's JSON parser hands the handler the raw bytes
  // (the signature is over them), and must not change how any other route parses.
  void app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT_BYTES },
      (_request, body, done) => done(null, body),
    );
    scope.post(
      '/payments/webhooks',
      {
        bodyLimit: WEBHOOK_BODY_LIMIT_BYTES,
        config: { access: 'public' },
        schema: {
          operationId: 'receivePaymentWebhook',
          tags: TAGS,
          summary: 'Receive a payment gateway event',
          description:
            'Called by the payment gateway, authenticated by its signature: `Gateway-Signature: ' +
            't=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (several `v1` entries ' +
            'accepted), within `PAYMENTS_WEBHOOK_TOLERANCE_SECONDS` of now. Each event is applied ' +
            'once: a redelivery answers `duplicate: true` and changes nothing. 5xx means the event was ' +
            'not applied and should be delivered again.',
          response: {
            200: { ...WebhookReceiptResponse, description: 'Received (and applied, unless a duplicate)' },
            ...problemResponses(400, 413, 415, 429),
          },
        },
      },
      async (request) => {
        const header = request.headers[GATEWAY_SIGNATURE_HEADER];
        const { isDuplicate } = await payments.receiveWebhook(
          request.body as Buffer,
          typeof header === 'string' ? header : undefined,
        );
        return { received: true as const, duplicate: isDuplicate };
      },
    );
  });
}
