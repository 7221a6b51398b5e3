import { isAppError } from '@keel/platform/errors';
import type { Principal } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import type { TelemedicineDatabase } from '../database.ts';
import {
  consultationPaymentNotFound,
  eventNotApplied,
  eventsNotHandled,
  paymentNotFound,
} from './payment.errors.ts';
import { findPaymentByConsultationId, findPaymentById, insertWebhookEvent } from './payment.repository.ts';
import { isClientSecretVisible, type Payment, viewerOf } from './payment.ts';
import type { PaymentEventHandler } from './payment-provider.ts';
import { verifyPaymentWebhook } from './payment-webhook.ts';

export type PaymentServiceDeps = {
  db: TelemedicineDatabase;
  clock: Clock;
  logger: Logger;
  /** The provider's name: the namespace of its event ids in `payment_webhook_events`. */
  providerName: string;
  webhookSecret: string;
  webhookToleranceSeconds: number;
  /** The booking saga's handler, once registered. */
  eventHandler: () => PaymentEventHandler | undefined;
};

export type PaymentService = ReturnType<typeof createPaymentService>;

/** What a viewer gets: the payment, with the client secret only when they may pay with it. */
function asSeenBy(principal: Principal, payment: Payment | undefined): Payment | undefined {
  if (payment === undefined) return undefined;
  const viewer = viewerOf(principal, payment);
  if (viewer === null) return undefined;
  return isClientSecretVisible(viewer, payment) ? payment : { ...payment, clientSecret: null };
}

export function createPaymentService(deps: PaymentServiceDeps) {
  return {
    /**
     * Applies one webhook: verified, then recorded and handed to the saga in
     * one transaction. A redelivery finds its id recorded and changes
     * nothing. A handler failure rolls the record back, so the gateway's
     * retry applies the event; it answers 503 when the handler said
     * `unavailable`, a generic 500 otherwise (logged here with the event, so
     * the gateway, a third party, never sees our internals).
     */
    async receiveWebhook(
      rawBody: Uint8Array,
      signatureHeader: string | undefined,
    ): Promise<{ isDuplicate: boolean }> {
      const verified = verifyPaymentWebhook(rawBody, signatureHeader, {
        secret: deps.webhookSecret,
        toleranceSeconds: deps.webhookToleranceSeconds,
        now: deps.clock.now(),
      });
      // Acknowledged so the gateway stops sending it; not recorded, as nothing was applied.
      if (!verified.isHandled) return { isDuplicate: false };
      const { event } = verified;
      const handler = deps.eventHandler();
      if (handler === undefined) throw eventsNotHandled();
      try {
        return await deps.db.transaction(async (trx) => {
          const isNew = await insertWebhookEvent(trx, {
            provider: deps.providerName,
            eventId: event.id,
            eventType: event.type,
            receivedAt: deps.clock.now(),
          });
          if (!isNew) return { isDuplicate: true };
          await handler(trx, event);
          return { isDuplicate: false };
        });
      } catch (error) {
        if (isAppError(error) && error.kind === 'unavailable') throw error;
        deps.logger.error(
          { err: error, eventId: event.id, eventType: event.type },
          'a payment webhook event could not be applied; the gateway will redeliver it',
        );
        throw eventNotApplied(error);
      }
    },

    async getPayment(principal: Principal, id: string): Promise<Payment> {
      const payment = asSeenBy(principal, await deps.db.run((db) => findPaymentById(db, id)));
      if (payment === undefined) throw paymentNotFound(id);
      return payment;
    },

    async getConsultationPayment(principal: Principal, consultationId: string): Promise<Payment> {
      const payment = asSeenBy(
        principal,
        await deps.db.run((db) => findPaymentByConsultationId(db, consultationId)),
      );
      if (payment === undefined) throw consultationPaymentNotFound(consultationId);
      return payment;
    },
  };
}
