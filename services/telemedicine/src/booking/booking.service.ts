import { ConsultationBookedV1, ConsultationRescheduledV1 } from '@keel/contracts';
import type { FieldEncryption } from '@keel/platform/crypto';
import { isUniqueViolation } from '@keel/platform/db';
import { isAppError } from '@keel/platform/errors';
import type { Principal } from '@keel/platform/http';
import type { IdempotencyClaim, StoredResponse } from '@keel/platform/idempotency';
import { emitEvent, prepareEvent } from '@keel/platform/outbox';
import { consultationNotFound, patientProfileRequired } from '../access/access.errors.ts';
import { relationTo } from '../access/consultation-access.ts';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import { refreshNextAvailableAt } from '../availability/slot.repository.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import type { TelemedicineSettings } from '../composition-root.ts';
import { invalidTransition } from '../consultations/consultation.errors.ts';
import {
  findConsultationById,
  findLiveConsultationOnSlot,
  lockConsultation,
  updateConsultationCancelled,
  updateConsultationRescheduled,
} from '../consultations/consultation.repository.ts';
import {
  CANCELLABLE_STATUSES,
  type ConsultationRecord,
  isCancellable,
} from '../consultations/consultation.ts';
import type { CancelledBy, TelemedicineDatabase, TelemedicineDb } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import type { PaymentIntent, PaymentProvider } from '../payments/payment-provider.ts';
import {
  consentRequired,
  rescheduleOtherDoctor,
  slotNotFound,
  slotUnavailable,
  specialtyNotOffered,
} from './booking.errors.ts';
import {
  findBookableSlot,
  findPaymentByConsultation,
  findPaymentById,
  hasPatientProfile,
  insertBookingHoldingSlot,
  lockSlots,
  updateFreshPaymentIntentRecorded,
  updatePaymentIntentRecorded,
  updatePaymentStatus,
  updateSlotBooked,
  updateSlotReleased,
} from './booking.repository.ts';
import {
  CREATE_INTENT_RETRY_DELAY_SECONDS,
  CREATE_PAYMENT_INTENT_QUEUE,
  type CreatePaymentIntentJob,
  EXPIRE_HOLD_QUEUE,
  type ExpireHoldJob,
  type PaymentRecord,
  UNPAID_PAYMENT_STATUSES,
} from './booking.ts';
import {
  consultationFacts,
  emitConsultationCancelled,
  queueRefund,
  type SagaDependencies,
  type SagaTransaction,
  sendCancelIntent,
} from './booking-saga.ts';
import { decideRefund } from './refund-policy.ts';

export type BookingServiceDependencies = SagaDependencies & {
  db: TelemedicineDatabase;
  encryption: FieldEncryption;
  provider: PaymentProvider;
  settings: Pick<TelemedicineSettings, 'holdMinutes' | 'fullRefundHours' | 'lateCancelRefundPercent'>;
};

export type BookConsultationInput = {
  slotId: string;
  reason: string | null;
  specialty: string | null;
  consent: { treatment?: boolean; telehealth?: boolean; version: string } | undefined;
};

/** A booking as its patient sees it: the consultation and what to pay with. */
export type Booking = { consultation: ConsultationRecord; payment: PaymentRecord };

/** The request's idempotency claim and the response to store with the booking. */
export type BookingIdempotency = { claim: IdempotencyClaim; respond: (booking: Booking) => StoredResponse };

export type BookingService = ReturnType<typeof createBookingService>;

const SLOT_CONSTRAINT = 'consultations_one_active_per_slot';
// Each lost race means the consultation moved (paid, cancelled): a handful of moves in its life.
const MAX_CANCEL_ATTEMPTS = 10;

export function createBookingService(deps: BookingServiceDependencies) {
  const { db, clock, ids, jobs, logger, encryption, provider, settings } = deps;

  /**
   * Step 1 of the saga: hold the slot and write everything the booking is
   * (consultation, payment, consents, event, audit), in one statement
   * (`insertBookingHoldingSlot`). `isNew` is false when the slot was already
   * this patient's: a retried or duplicated booking gets that booking back
   * instead of a 409.
   */
  async function holdSlot(
    principal: Principal,
    input: BookConsultationInput & { consent: { version: string } },
    slot: { id: string; doctorId: string; startsAt: Date; endsAt: Date; feeMinor: number; currency: string },
    specialty: string,
    origin: RequestOrigin,
  ): Promise<{ booking: Booking; isNew: boolean }> {
    const now = clock.now();
    const holdExpiresAt = new Date(now.getTime() + settings.holdMinutes * 60_000);
    const booking = newBooking(principal, input, slot, specialty, { now, holdExpiresAt });
    const { consultation, payment } = booking;
    const hold = (writer: TelemedicineDb) =>
      insertBookingHoldingSlot(writer, {
        consultation,
        payment,
        consents: (['treatment', 'telehealth'] as const).map((kind) => ({
          id: ids.uuid(),
          patientId: principal.id,
          consultationId: consultation.id,
          kind,
          version: input.consent.version,
          givenAt: now,
        })),
        holdExpiresAt,
        at: now,
        event: prepareEvent(
          writer,
          {
            type: ConsultationBookedV1.type,
            aggregateType: 'consultation',
            aggregateId: consultation.id,
            occurredAt: now,
            payload: {
              ...consultationFacts(consultation),
              paymentId: payment.id,
              holdExpiresAt: holdExpiresAt.toISOString(),
            },
          },
          { definition: ConsultationBookedV1 },
        ),
        access:
          input.reason === null
            ? undefined
            : {
                actor: principal,
                patientId: principal.id,
                operation: 'write',
                resource: 'consultation',
                resourceId: consultation.id,
                purpose: 'treatment',
                origin,
                occurredAt: now,
              },
      });
    const expiry = { consultationId: consultation.id } satisfies ExpireHoldJob;
    const expiryOptions = { startAfterSeconds: settings.holdMinutes * 60, singletonKey: consultation.id };
    try {
      // The common case: one autocommit statement, no BEGIN and COMMIT round
      // trips, and the slot's lock released as it ends.
      if (await db.autocommit(hold)) {
        // Not in the booking's commit, so best effort: a booking whose expiry
        // job was never queued is expired by the minute sweeper instead.
        await jobs.send(EXPIRE_HOLD_QUEUE, expiry, expiryOptions).catch((error: unknown) => {
          logger.warn(
            { consultationId: consultation.id, err: describeFailure(error) },
            'could not queue the hold expiry; the sweeper will expire the hold',
          );
        });
        // No intent job here: step 2 runs inline next, and only a failed
        // attempt enqueues one. A process that dies in between leaves the
        // payment CREATING, which the minute sweeper finds and hands to the job.
        return { booking, isNew: true };
      }
      // The slot was not OPEN: find out why under its lock (it may also have
      // opened again meanwhile, and is then held here).
      return await db.transaction(async (trx) => {
        if (await hold(trx)) {
          await jobs.sendWith(trx, EXPIRE_HOLD_QUEUE, expiry, expiryOptions);
          return { booking, isNew: true };
        }
        const [locked] = await lockSlots(trx, [slot.id]);
        if (locked === undefined) throw slotNotFound(slot.id);
        if (locked.status === 'HELD' || locked.status === 'BOOKED') {
          const own = await ownBookingOn(trx, slot.id, principal.id);
          if (own !== undefined) return { booking: own, isNew: false };
        }
        throw slotUnavailable(slot.id);
      });
    } catch (error) {
      // The slot lock makes this unreachable while every writer keeps slot
      // status and consultations in step; the index is the guarantee if one does not.
      if (isUniqueViolation(error, SLOT_CONSTRAINT)) throw slotUnavailable(slot.id);
      throw error;
    }
  }

  /** A booking as step 1 writes it: pending payment, held until `holdExpiresAt`. */
  function newBooking(
    principal: Principal,
    input: BookConsultationInput & { consent: { version: string } },
    slot: { id: string; doctorId: string; startsAt: Date; endsAt: Date; feeMinor: number; currency: string },
    specialty: string,
    { now, holdExpiresAt }: { now: Date; holdExpiresAt: Date },
  ): Booking {
    const consultationId = ids.uuid();
    const consultation: ConsultationRecord = {
      id: consultationId,
      patientId: principal.id,
      doctorId: slot.doctorId,
      slotId: slot.id,
      status: 'PENDING_PAYMENT',
      startsAt: slot.startsAt,
      endsAt: slot.endsAt,
      holdExpiresAt,
      feeMinor: slot.feeMinor,
      currency: slot.currency,
      specialty,
      encryptedReason:
        input.reason === null
          ? null
          : encryption.encrypt(
              input.reason,
              fieldAad('telemedicine.consultations', 'reason', consultationId),
            ),
      consentVersion: input.consent.version,
      consentedAt: now,
      rescheduledFromSlotId: null,
      startedAt: null,
      completedAt: null,
      cancelledAt: null,
      cancelledBy: null,
      cancelReason: null,
      expiredReason: null,
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    const payment: PaymentRecord = {
      id: ids.uuid(),
      consultationId,
      patientId: principal.id,
      provider: provider.name,
      providerIntentId: null,
      clientSecret: null,
      amountMinor: slot.feeMinor,
      currency: slot.currency,
      status: 'CREATING',
      refundedMinor: 0,
      failureCode: null,
    };
    return { consultation, payment };
  }

  /** Step 2 again, later, by job: the inline attempt could not create the intent. */
  async function sendCreateIntent(trx: SagaTransaction, paymentId: string): Promise<void> {
    await jobs.sendWith(trx, CREATE_PAYMENT_INTENT_QUEUE, { paymentId } satisfies CreatePaymentIntentJob, {
      startAfterSeconds: CREATE_INTENT_RETRY_DELAY_SECONDS,
      singletonKey: paymentId,
    });
  }

  async function ownBookingOn(
    trx: SagaTransaction,
    slotId: string,
    patientId: string,
  ): Promise<Booking | undefined> {
    const holder = await findLiveConsultationOnSlot(trx, slotId);
    if (holder === undefined || holder.patientId !== patientId) return undefined;
    const payment = await findPaymentByConsultation(trx, holder.id);
    if (payment === undefined) throw new Error(`consultation ${holder.id} has no payment`);
    return { consultation: holder, payment };
  }

  /**
   * Step 2, inline: the payment intent, keyed by the payment id (the gateway
   * answers a repeated create with the first intent). Undefined when the
   * gateway cannot be reached or refuses: the booking stands, the fallback
   * job tries again, and the client polls the payment.
   */
  async function createIntent(payment: PaymentRecord): Promise<PaymentIntent | undefined> {
    if (payment.status !== 'CREATING') return undefined;
    try {
      return await provider.createIntent({
        amountMinor: payment.amountMinor,
        currency: payment.currency,
        idempotencyKey: payment.id,
        metadata: { consultation_id: payment.consultationId, payment_id: payment.id },
      });
    } catch (error) {
      logger.warn(
        { paymentId: payment.id, err: describeFailure(error) },
        'could not create the payment intent inline; the fallback job will',
      );
      return undefined;
    }
  }

  return {
    /**
     * Books a slot: holds it for `holdMinutes` while the patient pays. See
     * booking-saga.ts for the saga; this runs its first two steps and stores
     * the response under the request's Idempotency-Key once the intent is
     * known (or known to be late), so a replay carries the client secret.
     */
    async bookConsultation(
      principal: Principal,
      input: BookConsultationInput,
      options: { idempotency?: BookingIdempotency; origin?: RequestOrigin } = {},
    ): Promise<Booking> {
      const { consent } = input;
      const missing = (['treatment', 'telehealth'] as const).filter((kind) => consent?.[kind] !== true);
      if (consent === undefined || missing.length > 0)
        throw consentRequired(consent === undefined ? [] : missing);
      // Independent reads, so they run side by side.
      const [hasProfile, slot] = await Promise.all([
        db.run((kysely) => hasPatientProfile(kysely, principal.id)),
        db.run((kysely) => findBookableSlot(kysely, input.slotId)),
      ]);
      if (!hasProfile) throw patientProfileRequired();
      if (slot === undefined || slot.doctorStatus !== 'VERIFIED' || slot.startsAt <= clock.now()) {
        throw slotNotFound(input.slotId);
      }
      const specialty = input.specialty ?? slot.specialties[0];
      if (specialty === undefined || !slot.specialties.includes(specialty)) {
        throw specialtyNotOffered(input.specialty ?? '');
      }
      // Cheap pre-check, no lock: a taken slot fails here, so a crowd racing
      // for one slot queues on its row lock only while it still looked open.
      if (slot.status !== 'OPEN') {
        const holder = await db.run((kysely) => findLiveConsultationOnSlot(kysely, slot.id));
        if (holder?.patientId !== principal.id) throw slotUnavailable(slot.id);
      }

      const { booking: held, isNew } = await holdSlot(
        principal,
        { ...input, consent },
        slot,
        specialty,
        options.origin ?? {},
      );
      const intent = await createIntent(held.payment);
      const { idempotency } = options;

      if (isNew && intent !== undefined) {
        // The common case, in one statement: the intent recorded on the
        // payment and, if nothing else touched the booking since step 1, the
        // response stored under the Idempotency-Key.
        const booking: Booking = {
          consultation: held.consultation,
          payment: {
            ...held.payment,
            providerIntentId: intent.id,
            clientSecret: intent.clientSecret,
            status: 'REQUIRES_PAYMENT',
          },
        };
        const isSettled = await db.autocommit((writer) =>
          updateFreshPaymentIntentRecorded(writer, {
            id: held.payment.id,
            intentId: intent.id,
            clientSecret: intent.clientSecret,
            at: clock.now(),
            consultation: { id: held.consultation.id, version: held.consultation.version },
            claim: idempotency?.claim.completionSql(idempotency.respond(booking)),
          }),
        );
        if (isSettled) {
          idempotency?.claim.markCompleted();
          return booking;
        }
        // The booking moved meanwhile (expired, cancelled), or the claim was
        // taken over: the transaction below records what is true now.
      }

      return db.transaction(async (trx) => {
        const paymentId = held.payment.id;
        let recorded: PaymentRecord | undefined;
        if (intent !== undefined) {
          recorded = await updatePaymentIntentRecorded(trx, {
            id: paymentId,
            intentId: intent.id,
            clientSecret: intent.clientSecret,
            at: clock.now(),
          });
          // The hold ran out (or the booking was cancelled) while we were at
          // the gateway: the intent we just made must not take money.
          if (recorded !== undefined && (recorded.status === 'CANCELLED' || recorded.status === 'FAILED')) {
            await sendCancelIntent(trx, deps, { paymentId, intentId: intent.id });
          }
        } else if (held.payment.status === 'CREATING') {
          await sendCreateIntent(trx, paymentId);
        }
        // As they are now: a retry may find the booking paid, or its intent made by the fallback job.
        const current = recorded ?? (await findPaymentById(trx, paymentId)) ?? held.payment;
        const consultation = (await findConsultationById(trx, held.consultation.id)) ?? held.consultation;
        const booking = { consultation, payment: current };
        if (idempotency !== undefined) await idempotency.claim.complete(trx, idempotency.respond(booking));
        return booking;
      });
    },

    /**
     * Cancels from PENDING_PAYMENT or SCHEDULED, once however many
     * cancellations race: the conditional update on (status, version) picks
     * one winner, which alone frees the slot, files the refund and emits
     * `consultation_cancelled`; a loser re-reads and gets
     * `telemedicine.invalid_transition`. A paid booking is refunded by
     * policy (refund-policy.ts); an unpaid one has its intent cancelled.
     */
    async cancelConsultation(
      principal: Principal,
      consultationId: string,
      input: { reason: string | null },
    ): Promise<{ consultation: ConsultationRecord; refundMinor: number }> {
      for (let attempt = 1; attempt <= MAX_CANCEL_ATTEMPTS; attempt += 1) {
        const consultation = await db.run((kysely) => findConsultationById(kysely, consultationId));
        const by = consultation === undefined ? undefined : cancellerOf(principal, consultation);
        if (consultation === undefined || by === undefined) throw consultationNotFound(consultationId);
        if (!isCancellable(consultation.status)) throw invalidTransition(consultation.status, 'cancelled');
        const payment = await db.run((kysely) => findPaymentByConsultation(kysely, consultationId));
        const now = clock.now();
        // A payment that succeeds meanwhile moves the consultation (version + 1): this attempt then loses.
        const paidMinor = payment?.status === 'SUCCEEDED' ? payment.amountMinor - payment.refundedMinor : 0;
        const refund = decideRefund(
          { cancelledBy: by, paidMinor, startsAt: consultation.startsAt, cancelledAt: now },
          settings,
        );

        const outcome = await db.transaction(async (trx) => {
          const cancelled = await updateConsultationCancelled(trx, {
            id: consultationId,
            from: CANCELLABLE_STATUSES,
            version: consultation.version,
            by,
            reason: input.reason,
            at: now,
          });
          if (cancelled === undefined) return undefined;
          await updateSlotReleased(trx, cancelled.slotId);
          await refreshNextAvailableAt(trx, cancelled.doctorId, now);
          let refundMinor = 0;
          if (payment !== undefined && 'reason' in refund) {
            const refundId = await queueRefund(trx, deps, {
              paymentId: payment.id,
              amountMinor: refund.amountMinor,
              reason: refund.reason,
            });
            if (refundId !== undefined) refundMinor = refund.amountMinor;
          } else if (payment !== undefined && UNPAID_PAYMENT_STATUSES.includes(payment.status)) {
            const voided = await updatePaymentStatus(trx, {
              id: payment.id,
              from: UNPAID_PAYMENT_STATUSES,
              to: 'CANCELLED',
              at: now,
            });
            if (voided?.providerIntentId != null) {
              await sendCancelIntent(trx, deps, { paymentId: voided.id, intentId: voided.providerIntentId });
            }
          }
          await emitConsultationCancelled(trx, cancelled, { by, refundMinor, at: now });
          return { consultation: cancelled, refundMinor };
        });
        if (outcome !== undefined) return outcome;
      }
      throw new Error(
        `cancelConsultation: ${consultationId} kept changing under ${MAX_CANCEL_ATTEMPTS} attempts`,
      );
    },

    /**
     * Moves a SCHEDULED consultation to another OPEN future slot of the same
     * doctor, in one transaction: the consultation, then both slots in id
     * order, are locked; the new slot is taken before the old one is freed,
     * so a lost race leaves the booking where it was.
     */
    async rescheduleConsultation(
      principal: Principal,
      consultationId: string,
      input: { slotId: string },
    ): Promise<ConsultationRecord> {
      const consultation = await db.run((kysely) => findConsultationById(kysely, consultationId));
      // Only the patient moves their booking; to anyone else it does not exist.
      if (consultation === undefined || relationTo(principal, consultation) !== 'patient') {
        throw consultationNotFound(consultationId);
      }
      if (consultation.status !== 'SCHEDULED') throw invalidTransition(consultation.status, 'rescheduled');
      const target = await db.run((kysely) => findBookableSlot(kysely, input.slotId));
      if (target === undefined) throw slotNotFound(input.slotId);
      if (target.doctorId !== consultation.doctorId) throw rescheduleOtherDoctor(input.slotId);
      const now = clock.now();
      if (target.status !== 'OPEN' || target.startsAt <= now) throw slotUnavailable(input.slotId);

      try {
        return await db.transaction(async (trx) => {
          const locked = await lockConsultation(trx, consultationId);
          if (locked === undefined || locked.status !== 'SCHEDULED') {
            throw invalidTransition(locked?.status ?? consultation.status, 'rescheduled');
          }
          const slots = await lockSlots(trx, [locked.slotId, target.id]);
          const to = slots.find((slot) => slot.id === target.id);
          if (to === undefined || to.id === locked.slotId || to.status !== 'OPEN') {
            throw slotUnavailable(target.id);
          }
          if (!(await updateSlotBooked(trx, { id: to.id, from: ['OPEN'] }))) throw slotUnavailable(to.id);
          const moved = await updateConsultationRescheduled(trx, {
            id: locked.id,
            version: locked.version,
            fromSlotId: locked.slotId,
            toSlot: { id: to.id, startsAt: to.startsAt, endsAt: to.endsAt },
            at: now,
          });
          if (moved === undefined)
            throw new Error(`rescheduleConsultation: ${locked.id} changed under its lock`);
          await updateSlotReleased(trx, locked.slotId);
          await refreshNextAvailableAt(trx, locked.doctorId, now);
          await emitEvent(
            trx,
            {
              type: ConsultationRescheduledV1.type,
              aggregateType: 'consultation',
              aggregateId: moved.id,
              occurredAt: now,
              payload: {
                ...consultationFacts(moved),
                previousSlotId: locked.slotId,
                previousStartsAt: locked.startsAt.toISOString(),
              },
            },
            { definition: ConsultationRescheduledV1 },
          );
          return moved;
        });
      } catch (error) {
        if (isUniqueViolation(error, SLOT_CONSTRAINT)) throw slotUnavailable(input.slotId);
        throw error;
      }
    },
  };
}

/**
 * Who the caller cancels as: the patient, the doctor, or an operator allowed
 * to cancel anyone's; undefined when the consultation is none of their business.
 */
function cancellerOf(principal: Principal, consultation: ConsultationRecord): CancelledBy | undefined {
  const relation = relationTo(principal, consultation);
  if (relation === 'patient' || relation === 'doctor') return relation;
  if (principal.permissions.has(TELEMEDICINE_PERMISSIONS.cancelAnyConsultation)) return 'admin';
  return undefined;
}

/** A failure for the log: an AppError by its kind and code, anything else by its message. */
function describeFailure(error: unknown): { kind: string; code: string } | { message: string } {
  return isAppError(error) ? { kind: error.kind, code: error.code } : { message: String(error) };
}
