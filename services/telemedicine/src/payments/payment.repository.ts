import { sql } from '@keel/platform/db';
import type { PaymentStatus, RefundReason, TelemedicineDb } from '../database.ts';
import type { Payment, PaymentRefund } from './payment.ts';

const PAYMENT_COLUMNS = [
  'id',
  'consultation_id',
  'patient_id',
  'status',
  'amount_minor',
  'currency',
  'client_secret',
  'created_at',
  'updated_at',
] as const;

type PaymentRow = {
  id: string;
  consultation_id: string;
  patient_id: string;
  status: PaymentStatus;
  amount_minor: string;
  currency: string;
  refunded_minor: string;
  client_secret: string | null;
  created_at: Date;
  updated_at: Date;
};

type RefundRow = {
  id: string;
  amount_minor: string;
  reason: RefundReason;
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
};

function toRefund(row: RefundRow): PaymentRefund {
  return { id: row.id, amountMinor: Number(row.amount_minor), reason: row.reason, status: row.status };
}

function toPayment(row: PaymentRow, refunds: RefundRow[]): Payment {
  return {
    id: row.id,
    consultationId: row.consultation_id,
    patientId: row.patient_id,
    status: row.status,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
    refundedMinor: Number(row.refunded_minor),
    clientSecret: row.client_secret,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    refunds: refunds.map(toRefund),
  };
}

async function withRefunds(db: TelemedicineDb, row: PaymentRow | undefined): Promise<Payment | undefined> {
  if (row === undefined) return undefined;
  const refunds = await db
    .selectFrom('telemedicine.refunds')
    .select(['id', 'amount_minor', 'reason', 'status'])
    .where('payment_id', '=', row.id)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return toPayment(row, refunds);
}

export async function findPaymentById(db: TelemedicineDb, id: string): Promise<Payment | undefined> {
  const row = await db
    .selectFrom('telemedicine.payments')
    .select(PAYMENT_COLUMNS)
    // A defaulted bigint: typed as text here, as pg returns it.
    .select(sql<string>`refunded_minor::text`.as('refunded_minor'))
    .where('id', '=', id)
    .executeTakeFirst();
  return withRefunds(db, row);
}

export async function findPaymentByConsultationId(
  db: TelemedicineDb,
  consultationId: string,
): Promise<Payment | undefined> {
  const row = await db
    .selectFrom('telemedicine.payments')
    .select(PAYMENT_COLUMNS)
    // A defaulted bigint: typed as text here, as pg returns it.
    .select(sql<string>`refunded_minor::text`.as('refunded_minor'))
    .where('consultation_id', '=', consultationId)
    .executeTakeFirst();
  return withRefunds(db, row);
}

/**
 * Records a webhook event's id; false when it was already recorded (a
 * redelivery). In the transaction that applies the event, so the record and
 * the effect commit, or roll back, together; a concurrent delivery of the
 * same event waits on the primary key and then finds it recorded.
 */
export async function insertWebhookEvent(
  trx: TelemedicineDb,
  event: { provider: string; eventId: string; eventType: string; receivedAt: Date },
): Promise<boolean> {
  const row = await trx
    .insertInto('telemedicine.payment_webhook_events')
    .values({
      provider: event.provider,
      event_id: event.eventId,
      event_type: event.eventType,
      received_at: event.receivedAt,
    })
    .onConflict((conflict) => conflict.columns(['provider', 'event_id']).doNothing())
    .returning('event_id')
    .executeTakeFirst();
  return row !== undefined;
}
