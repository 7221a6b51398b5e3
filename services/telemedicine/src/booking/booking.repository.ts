import { type Selectable, sql } from '@keel/platform/db';
import { toConsultationInsert } from '../consultations/consultation.repository.ts';
import type { ConsultationRecord } from '../consultations/consultation.ts';
import type {
  PaymentStatus,
  PaymentsTable,
  RefundReason,
  RefundsTable,
  SlotStatus,
  TelemedicineDb,
} from '../database.ts';
import type { BookableSlot, LockedSlot, PaymentRecord, RefundRecord, RefundStatus } from './booking.ts';

// The saga's writes to slots, consents, payments and refunds. Consultation
// rows are in consultations/consultation.repository.ts. Lock order, for
// every writer: consultation, then slots (in id order), then payment rows.

export async function hasPatientProfile(db: TelemedicineDb, patientId: string): Promise<boolean> {
  const row = await db
    .selectFrom('telemedicine.patients')
    .select('id')
    .where('id', '=', patientId)
    .executeTakeFirst();
  return row !== undefined;
}

/** The slot with its doctor's booking terms; undefined when there is no such slot. */
export async function findBookableSlot(
  db: TelemedicineDb,
  slotId: string,
): Promise<BookableSlot | undefined> {
  const row = await db
    .selectFrom('telemedicine.slots as s')
    .innerJoin('telemedicine.doctors as d', 'd.id', 's.doctor_id')
    .select([
      's.id',
      's.doctor_id',
      's.starts_at',
      's.ends_at',
      's.status',
      'd.status as doctor_status',
      'd.specialties',
      'd.fee_minor',
      'd.currency',
    ])
    .where('s.id', '=', slotId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    id: row.id,
    doctorId: row.doctor_id,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    status: row.status,
    doctorStatus: row.doctor_status,
    specialties: row.specialties,
    feeMinor: Number(row.fee_minor),
    currency: row.currency,
  };
}

/** Row-locks the slots in id order (so two writers locking overlapping sets never deadlock). */
export async function lockSlots(trx: TelemedicineDb, ids: readonly string[]): Promise<LockedSlot[]> {
  const rows = await trx
    .selectFrom('telemedicine.slots')
    .select(['id', 'doctor_id', 'starts_at', 'ends_at', 'status'])
    .where('id', 'in', [...ids])
    .orderBy('id')
    .forUpdate()
    .execute();
  return rows.map((row) => ({
    id: row.id,
    doctorId: row.doctor_id,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    status: row.status,
  }));
}

/** OPEN → HELD until `holdExpiresAt`. False if the slot was not OPEN. */
export async function updateSlotHeld(
  trx: TelemedicineDb,
  change: { id: string; holdExpiresAt: Date },
): Promise<boolean> {
  const result = await trx
    .updateTable('telemedicine.slots')
    .set((eb) => ({ status: 'HELD', hold_expires_at: change.holdExpiresAt, version: eb('version', '+', 1) }))
    .where('id', '=', change.id)
    .where('status', '=', 'OPEN')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** `from` → BOOKED (a paid hold, or an open slot taken by a reschedule). False if it was in neither. */
export async function updateSlotBooked(
  trx: TelemedicineDb,
  change: { id: string; from: readonly SlotStatus[] },
): Promise<boolean> {
  const result = await trx
    .updateTable('telemedicine.slots')
    .set((eb) => ({ status: 'BOOKED', hold_expires_at: null, version: eb('version', '+', 1) }))
    .where('id', '=', change.id)
    .where('status', 'in', [...change.from])
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * HELD or BOOKED → OPEN: its consultation let it go. Callers only release
 * the slot of a consultation they just moved out of a slot-holding state,
 * so the slot is not someone else's (the partial unique index allows one
 * live consultation per slot).
 */
export async function updateSlotReleased(trx: TelemedicineDb, slotId: string): Promise<boolean> {
  const result = await trx
    .updateTable('telemedicine.slots')
    .set((eb) => ({ status: 'OPEN', hold_expires_at: null, version: eb('version', '+', 1) }))
    .where('id', '=', slotId)
    .where('status', 'in', ['HELD', 'BOOKED'])
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

const PAYMENT_COLUMNS = [
  'id',
  'consultation_id',
  'patient_id',
  'provider',
  'provider_intent_id',
  'client_secret',
  'amount_minor',
  'currency',
  'status',
  'refunded_minor',
  'failure_code',
] as const;

type PaymentRow = Pick<Selectable<PaymentsTable>, (typeof PAYMENT_COLUMNS)[number]>;

function toPayment(row: PaymentRow): PaymentRecord {
  return {
    id: row.id,
    consultationId: row.consultation_id,
    patientId: row.patient_id,
    provider: row.provider,
    providerIntentId: row.provider_intent_id,
    clientSecret: row.client_secret,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
    status: row.status,
    refundedMinor: Number(row.refunded_minor),
    failureCode: row.failure_code,
  };
}

export type NewConsent = {
  id: string;
  patientId: string;
  consultationId: string;
  kind: 'treatment' | 'telehealth';
  version: string;
  givenAt: Date;
};

/**
 * A new booking's rows, consultation, payment and consents, in one statement
 * (data-modifying CTEs): a booking is the hot write path, and each statement
 * is a round trip with the slot's row lock held. The foreign keys from
 * payment and consents to the consultation are checked at the end of the
 * statement, when all three rows exist.
 */
export async function insertBooking(
  trx: TelemedicineDb,
  booking: { consultation: ConsultationRecord; payment: PaymentRecord; consents: NewConsent[]; at: Date },
): Promise<void> {
  const { payment, at } = booking;
  await trx
    .with('consultation', (db) =>
      db.insertInto('telemedicine.consultations').values(toConsultationInsert(booking.consultation)),
    )
    .with('payment', (db) =>
      db.insertInto('telemedicine.payments').values({
        id: payment.id,
        consultation_id: payment.consultationId,
        patient_id: payment.patientId,
        provider: payment.provider,
        provider_intent_id: payment.providerIntentId,
        client_secret: payment.clientSecret,
        amount_minor: payment.amountMinor,
        currency: payment.currency,
        status: payment.status,
        created_at: at,
        updated_at: at,
      }),
    )
    .insertInto('telemedicine.consents')
    .values(
      booking.consents.map((consent) => ({
        id: consent.id,
        patient_id: consent.patientId,
        consultation_id: consent.consultationId,
        kind: consent.kind,
        version: consent.version,
        given_at: consent.givenAt,
      })),
    )
    .execute();
}

/**
 * Payments still CREATING that were created before `before` and whose
 * booking still waits for them: their intent was never made.
 */
export async function findPaymentsAwaitingIntent(
  db: TelemedicineDb,
  before: Date,
  limit: number,
): Promise<string[]> {
  const rows = await db
    .selectFrom('telemedicine.payments as p')
    .innerJoin('telemedicine.consultations as c', 'c.id', 'p.consultation_id')
    .select('p.id')
    .where('p.status', '=', 'CREATING')
    .where('p.created_at', '<', before)
    .where('c.status', '=', 'PENDING_PAYMENT')
    .orderBy('p.created_at')
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

export async function findPaymentById(db: TelemedicineDb, id: string): Promise<PaymentRecord | undefined> {
  const row = await db
    .selectFrom('telemedicine.payments')
    .select(PAYMENT_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

export async function findPaymentByConsultation(
  db: TelemedicineDb,
  consultationId: string,
): Promise<PaymentRecord | undefined> {
  const row = await db
    .selectFrom('telemedicine.payments')
    .select(PAYMENT_COLUMNS)
    .where('consultation_id', '=', consultationId)
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

export async function findPaymentByIntent(
  db: TelemedicineDb,
  provider: string,
  intentId: string,
): Promise<PaymentRecord | undefined> {
  const row = await db
    .selectFrom('telemedicine.payments')
    .select(PAYMENT_COLUMNS)
    .where('provider', '=', provider)
    .where('provider_intent_id', '=', intentId)
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

/**
 * Records the gateway's intent on the payment. The intent id is written once
 * (the gateway returns the same intent for the same idempotency key, so a
 * second writer brings the same id); the status moves to REQUIRES_PAYMENT
 * only from CREATING, never backwards from a later state.
 */
export async function updatePaymentIntentRecorded(
  trx: TelemedicineDb,
  change: { id: string; intentId: string; clientSecret: string; at: Date },
): Promise<PaymentRecord | undefined> {
  const row = await trx
    .updateTable('telemedicine.payments')
    .set((eb) => ({
      provider_intent_id: change.intentId,
      client_secret: change.clientSecret,
      status: sql<PaymentStatus>`case when status = 'CREATING' then 'REQUIRES_PAYMENT' else status end`,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where((eb) =>
      eb.or([eb('provider_intent_id', 'is', null), eb('provider_intent_id', '=', change.intentId)]),
    )
    .returning(PAYMENT_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

/** `from` → `to`; undefined when the payment was in none of `from` (the move already happened, or a later one). */
export async function updatePaymentStatus(
  trx: TelemedicineDb,
  change: {
    id: string;
    from: readonly PaymentStatus[];
    to: PaymentStatus;
    failureCode?: string | null;
    intentId?: string;
    at: Date;
  },
): Promise<PaymentRecord | undefined> {
  const row = await trx
    .updateTable('telemedicine.payments')
    .set((eb) => ({
      status: change.to,
      ...(change.failureCode === undefined ? {} : { failure_code: change.failureCode }),
      ...(change.intentId === undefined
        ? {}
        : { provider_intent_id: sql<string>`coalesce(provider_intent_id, ${change.intentId}::text)` }),
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .where('status', 'in', [...change.from])
    .returning(PAYMENT_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

/** Adds a settled refund to the payment: REFUNDED once all of it is back, else PARTIALLY_REFUNDED. */
export async function updatePaymentRefunded(
  trx: TelemedicineDb,
  change: { id: string; amountMinor: number; at: Date },
): Promise<PaymentRecord | undefined> {
  const row = await trx
    .updateTable('telemedicine.payments')
    .set((eb) => ({
      refunded_minor: sql<string>`least(refunded_minor + ${change.amountMinor}::bigint, amount_minor)`,
      status: sql<PaymentStatus>`case when refunded_minor + ${change.amountMinor}::bigint >= amount_minor
        then 'REFUNDED' else 'PARTIALLY_REFUNDED' end`,
      version: eb('version', '+', 1),
      updated_at: change.at,
    }))
    .where('id', '=', change.id)
    .returning(PAYMENT_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toPayment(row);
}

const REFUND_COLUMNS = [
  'id',
  'payment_id',
  'amount_minor',
  'reason',
  'status',
  'provider_refund_id',
] as const;

type RefundRow = Pick<Selectable<RefundsTable>, (typeof REFUND_COLUMNS)[number]>;

function toRefund(row: RefundRow): RefundRecord {
  return {
    id: row.id,
    paymentId: row.payment_id,
    amountMinor: Number(row.amount_minor),
    reason: row.reason,
    status: row.status,
    providerRefundId: row.provider_refund_id,
  };
}

/**
 * A PENDING refund, unless the payment already has one for this reason
 * (unique (payment_id, reason)): false then, and nothing is written.
 */
export async function insertRefund(
  trx: TelemedicineDb,
  refund: { id: string; paymentId: string; amountMinor: number; reason: RefundReason; at: Date },
): Promise<boolean> {
  const result = await trx
    .insertInto('telemedicine.refunds')
    .values({
      id: refund.id,
      payment_id: refund.paymentId,
      amount_minor: refund.amountMinor,
      reason: refund.reason,
      status: 'PENDING',
      created_at: refund.at,
      updated_at: refund.at,
    })
    .onConflict((conflict) => conflict.columns(['payment_id', 'reason']).doNothing())
    .executeTakeFirst();
  return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

export async function findRefundById(db: TelemedicineDb, id: string): Promise<RefundRecord | undefined> {
  const row = await db
    .selectFrom('telemedicine.refunds')
    .select(REFUND_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toRefund(row);
}

/**
 * The refund a gateway refund event is about: the one carrying its id, or,
 * when the event overtook the job that records the id, the payment's only
 * pending refund of that amount without one.
 */
export async function findRefundOfPayment(
  db: TelemedicineDb,
  paymentId: string,
  gatewayRefund: { id: string; amountMinor: number },
): Promise<RefundRecord | undefined> {
  const rows = await db
    .selectFrom('telemedicine.refunds')
    .select(REFUND_COLUMNS)
    .where('payment_id', '=', paymentId)
    .where((eb) =>
      eb.or([
        eb('provider_refund_id', '=', gatewayRefund.id),
        eb.and([
          eb('provider_refund_id', 'is', null),
          eb('status', '=', 'PENDING'),
          eb('amount_minor', '=', String(gatewayRefund.amountMinor)),
        ]),
      ]),
    )
    .orderBy(sql`provider_refund_id is null`)
    .execute();
  const exact = rows.find((row) => row.provider_refund_id === gatewayRefund.id);
  if (exact !== undefined) return toRefund(exact);
  return rows.length === 1 && rows[0] !== undefined ? toRefund(rows[0]) : undefined;
}

/**
 * Settles the refund as `to` if it is still PENDING (or, for a success, also
 * after a failure the gateway later reversed). Undefined when it was already
 * settled: the refund's effects were applied by whoever settled it.
 */
export async function updateRefundSettled(
  trx: TelemedicineDb,
  change: { id: string; to: Exclude<RefundStatus, 'PENDING'>; providerRefundId: string | null; at: Date },
): Promise<RefundRecord | undefined> {
  const from: RefundStatus[] = change.to === 'SUCCEEDED' ? ['PENDING', 'FAILED'] : ['PENDING'];
  const row = await trx
    .updateTable('telemedicine.refunds')
    .set({
      status: change.to,
      provider_refund_id: sql<string | null>`coalesce(provider_refund_id, ${change.providerRefundId}::text)`,
      updated_at: change.at,
    })
    .where('id', '=', change.id)
    .where('status', 'in', from)
    .returning(REFUND_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toRefund(row);
}

/** Notes the gateway's id on a refund still waiting for its outcome. */
export async function updateRefundProviderId(
  trx: TelemedicineDb,
  change: { id: string; providerRefundId: string; at: Date },
): Promise<void> {
  await trx
    .updateTable('telemedicine.refunds')
    .set({ provider_refund_id: change.providerRefundId, updated_at: change.at })
    .where('id', '=', change.id)
    .where('provider_refund_id', 'is', null)
    .execute();
}
