import { insertRowsWhen, type Selectable, sql } from '@keel/platform/db';
import type { ClaimCompletionSql } from '@keel/platform/idempotency';
import type { PreparedEvent } from '@keel/platform/outbox';
import { nextAvailableRefreshWhen } from '../availability/slot.repository.ts';
import { type ClinicalAccess, clinicalAccessInsertWhen } from '../compliance/clinical-access.ts';
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
 * Holds the slot (OPEN → HELD until `holdExpiresAt`) and, only if that took,
 * writes the booking: consultation, payment, consents, its event, the
 * clinical-access audit row when the booking carries a reason, and the
 * doctor's `next_available_at`. One statement, so it can run as its own
 * transaction (`Db.autocommit`): no BEGIN and COMMIT round trips, and the
 * slot's and the doctor's row locks are released as it ends. Returns false,
 * having written nothing, when the slot was not OPEN.
 *
 * The conditional update is the lock and the check: a racer blocks on the
 * winner's row lock, then finds the slot no longer OPEN. The partial unique
 * index on live consultations per slot still guards the invariant should a
 * writer ever leave slot status and consultations out of step. Foreign keys
 * from payment and consents to the consultation are checked at the end of
 * the statement, when all rows exist.
 */
export async function insertBookingHoldingSlot(
  writer: TelemedicineDb,
  hold: {
    consultation: ConsultationRecord;
    payment: PaymentRecord;
    consents: readonly NewConsent[];
    holdExpiresAt: Date;
    at: Date;
    /** `consultation_booked`, written only with the booking. */
    event: PreparedEvent;
    /** The clinical-access audit entry, when the booking writes clinical data (a reason). */
    access: ClinicalAccess | undefined;
  },
): Promise<boolean> {
  const { consultation, payment, at } = hold;
  const isHeld = sql`select 1 from held`;
  const result = await sql<{ is_held: boolean }>`
    with held as (
      update telemedicine.slots
      set status = 'HELD', hold_expires_at = ${hold.holdExpiresAt}::timestamptz, version = version + 1
      where id = ${consultation.slotId}::uuid and status = 'OPEN'
      returning id
    ),
    consultation as (${insertRowsWhen('telemedicine.consultations', [toConsultationInsert(consultation)], isHeld)}),
    payment as (${insertRowsWhen(
      'telemedicine.payments',
      [
        {
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
        },
      ],
      isHeld,
    )}),
    consents as (${insertRowsWhen(
      'telemedicine.consents',
      hold.consents.map((consent) => ({
        id: consent.id,
        patient_id: consent.patientId,
        consultation_id: consent.consultationId,
        kind: consent.kind,
        version: consent.version,
        given_at: consent.givenAt,
      })),
      isHeld,
    )}),
    next_available as (${nextAvailableRefreshWhen(consultation.doctorId, at, consultation.slotId, isHeld)}),
    ${hold.access === undefined ? sql`` : sql`access as (${clinicalAccessInsertWhen(hold.access, isHeld)}),`}
    ${hold.event.insertWhen(isHeld)}
    select exists (select 1 from held) as is_held`.execute(writer);
  return result.rows[0]?.is_held === true;
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

/**
 * Step 2's common case in one statement: records the intent on a payment
 * still CREATING with none yet and, only if the consultation is still at
 * `consultation.version` (nothing moved the booking since step 1), stores the
 * response under the request's idempotency claim, if any. True when all of
 * that happened: the booking is then exactly what step 1 wrote plus the
 * intent. False otherwise, having recorded at most the intent; the caller
 * then reads what is true now.
 */
export async function updateFreshPaymentIntentRecorded(
  writer: TelemedicineDb,
  change: {
    id: string;
    intentId: string;
    clientSecret: string;
    at: Date;
    consultation: { id: string; version: number };
    claim: ClaimCompletionSql | undefined;
  },
): Promise<boolean> {
  const { claim } = change;
  const result = await sql<{ is_settled: boolean }>`
    with recorded as (
      update telemedicine.payments
      set provider_intent_id = ${change.intentId}::text, client_secret = ${change.clientSecret}::text,
          status = 'REQUIRES_PAYMENT', version = version + 1, updated_at = ${change.at}::timestamptz
      where id = ${change.id}::uuid and status = 'CREATING' and provider_intent_id is null
      returning consultation_id
    ),
    unchanged as (
      select 1 from recorded r join telemedicine.consultations c on c.id = r.consultation_id
      where c.id = ${change.consultation.id}::uuid and c.version = ${change.consultation.version}::int
    )${
      claim === undefined
        ? sql`
    select exists (select 1 from unchanged) as is_settled`
        : sql`,
    held_claim as (${claim.heldClaim}),
    completed as (${claim.completeWhen(sql`select 1 from unchanged, held_claim`)})
    select exists (select 1 from unchanged) and exists (select 1 from held_claim) as is_settled`
    }`.execute(writer);
  return result.rows[0]?.is_settled === true;
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
