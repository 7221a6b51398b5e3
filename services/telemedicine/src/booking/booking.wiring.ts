import type { KeelApp } from '@keel/platform/http';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { registerConsultationRoutes } from '../consultations/consultation.routes.ts';
import { createConsultationService } from '../consultations/consultation.service.ts';
import type { PaymentsFeature } from '../payments/payments.wiring.ts';
import { registerBookingRoutes } from './booking.routes.ts';
import { createBookingService } from './booking.service.ts';
import { SWEEP_EXPIRED_HOLDS_QUEUE } from './booking.ts';
import type { SagaDependencies } from './booking-saga.ts';
import { createCancelPaymentIntentJob } from './cancel-payment-intent.job.ts';
import { createCreatePaymentIntentJob } from './create-payment-intent.job.ts';
import { createExpireHoldJob } from './expire-hold.job.ts';
import { createIssueRefundJob } from './issue-refund.job.ts';
import { createPaymentEventHandler } from './on-payment-event.handler.ts';
import { createSweepExpiredHoldsJob } from './sweep-expired-holds.job.ts';

/** Builds the booking saga (book, cancel, reschedule, its jobs and webhook handler) and the consultation reads. */
export function wireBooking(app: KeelApp, deps: TelemedicineDependencies, payments: PaymentsFeature): void {
  const { db, background } = deps;
  const { provider } = payments;
  const saga: SagaDependencies = {
    clock: deps.clock,
    ids: deps.ids,
    jobs: background.jobs,
    logger: deps.logger.child({ feature: 'telemedicine.booking' }),
  };

  registerBookingRoutes(
    app,
    createBookingService({ ...saga, db, encryption: deps.encryption, provider, settings: deps.settings }),
  );
  registerConsultationRoutes(
    app,
    createConsultationService({ db, clock: deps.clock, encryption: deps.encryption }),
  );

  payments.handleEventsWith(createPaymentEventHandler({ ...saga, providerName: provider.name }));
  background.addJobQueue(createExpireHoldJob({ ...saga, db }));
  background.addJobQueue(createSweepExpiredHoldsJob({ ...saga, db }));
  background.addJobQueue(createCreatePaymentIntentJob({ ...saga, db, provider }));
  background.addJobQueue(createCancelPaymentIntentJob({ provider, logger: saga.logger }));
  background.addJobQueue(createIssueRefundJob({ ...saga, db, provider }));
  // The safety net under the per-booking expiry jobs.
  background.schedule(SWEEP_EXPIRED_HOLDS_QUEUE, '* * * * *');
}
