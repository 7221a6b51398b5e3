import { randomUUID } from 'node:crypto';
import type { Database } from '@keel/platform/db';
import type { TestApp } from '@keel/platform/testing';
import type { InjectOptions } from 'fastify';
import type { Response } from 'light-my-request';
import { expect } from 'vitest';
import type { PaymentsTable, RefundsTable, SlotStatus, TelemedicineSchema } from '../src/database.ts';
import type { TelemedicineCaller } from './fixtures.ts';

// Helpers for the booking saga's tests: the booking request, the rows it
// leaves behind, and waiting for background work (jobs run on the test app's
// real pg-boss workers, so their effects show up a moment later).

export type BookingBody = {
  consultation: {
    id: string;
    status: string;
    slot_id: string;
    version: number;
    reason?: string | null;
    hold_expires_at: string | null;
  };
  payment: {
    id: string;
    status: string;
    client_secret: string | null;
    amount_minor: number;
    currency: string;
  };
  hold_expires_at: string | null;
};

export function bookingRequest(
  slotId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    slot_id: slotId,
    reason: 'Persistent cough for two weeks',
    consent: { treatment: true, telehealth: true, version: '2024-01' },
    ...overrides,
  };
}

export function injectAs(testApp: TestApp, caller: TelemedicineCaller | undefined, options: InjectOptions) {
  return testApp.app.inject({
    ...options,
    headers: {
      ...(caller === undefined ? {} : { authorization: caller.authorization }),
      ...(options.headers ?? {}),
    },
  });
}

export function postBooking(
  testApp: TestApp,
  caller: TelemedicineCaller | undefined,
  payload: object,
  idempotencyKey: string | null = randomUUID(),
) {
  return injectAs(testApp, caller, {
    method: 'POST',
    url: '/telemedicine/consultations',
    payload,
    headers: idempotencyKey === null ? {} : { 'idempotency-key': idempotencyKey },
  });
}

/** Books `slotId` and expects a 201. */
export async function bookOk(
  testApp: TestApp,
  caller: TelemedicineCaller,
  slotId: string,
  overrides: Record<string, unknown> = {},
): Promise<BookingBody> {
  const response = await postBooking(testApp, caller, bookingRequest(slotId, overrides));
  expect(response.statusCode, response.body).toBe(201);
  return response.json<BookingBody>();
}

export function cancelAs(
  testApp: TestApp,
  caller: TelemedicineCaller | undefined,
  consultationId: string,
  payload: object = {},
) {
  return injectAs(testApp, caller, {
    method: 'POST',
    url: `/telemedicine/consultations/${consultationId}/cancel`,
    payload,
  });
}

export function rescheduleAs(
  testApp: TestApp,
  caller: TelemedicineCaller | undefined,
  consultationId: string,
  slotId: string,
) {
  return injectAs(testApp, caller, {
    method: 'POST',
    url: `/telemedicine/consultations/${consultationId}/reschedule`,
    payload: { slot_id: slotId },
  });
}

/** Status and `code` of a problem response; the status alone for a success. */
export function outcomeOf(response: Response): string {
  return response.statusCode < 300
    ? String(response.statusCode)
    : `${response.statusCode} ${response.json().code}`;
}

export function tally(responses: Response[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const response of responses) counts[outcomeOf(response)] = (counts[outcomeOf(response)] ?? 0) + 1;
  return counts;
}

export async function consultationRow(database: Database, id: string) {
  return database
    .typed<TelemedicineSchema>()
    .run((db) =>
      db
        .selectFrom('telemedicine.consultations')
        .select([
          'status',
          'slot_id',
          'hold_expires_at',
          'expired_reason',
          'cancelled_by',
          'rescheduled_from_slot_id',
          'reason',
          'version',
        ])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    );
}

export async function slotRow(
  database: Database,
  id: string,
): Promise<{ status: SlotStatus; hold_expires_at: Date | null }> {
  return database
    .typed<TelemedicineSchema>()
    .run((db) =>
      db
        .selectFrom('telemedicine.slots')
        .select(['status', 'hold_expires_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    );
}

export type PaymentRow = {
  id: string;
  status: PaymentsTable['status'];
  provider_intent_id: string | null;
  amount_minor: number;
  refunded_minor: number;
  failure_code: string | null;
};

export async function paymentOf(database: Database, consultationId: string): Promise<PaymentRow> {
  const row = await database
    .typed<TelemedicineSchema>()
    .run((db) =>
      db
        .selectFrom('telemedicine.payments')
        .select(['id', 'status', 'provider_intent_id', 'amount_minor', 'refunded_minor', 'failure_code'])
        .where('consultation_id', '=', consultationId)
        .executeTakeFirstOrThrow(),
    );
  return { ...row, amount_minor: Number(row.amount_minor), refunded_minor: Number(row.refunded_minor) };
}

export type RefundRow = {
  id: string;
  amount_minor: number;
  reason: RefundsTable['reason'];
  status: RefundsTable['status'];
  provider_refund_id: string | null;
};

export async function refundsOf(database: Database, paymentId: string): Promise<RefundRow[]> {
  const rows = await database
    .typed<TelemedicineSchema>()
    .run((db) =>
      db
        .selectFrom('telemedicine.refunds')
        .select(['id', 'amount_minor', 'reason', 'status', 'provider_refund_id'])
        .where('payment_id', '=', paymentId)
        .execute(),
    );
  return rows.map((row) => ({ ...row, amount_minor: Number(row.amount_minor) }));
}

export async function countRows(database: Database, text: string, values: unknown[]): Promise<number> {
  const result = await database.pool.query<{ value: string | number | null }>(text, values);
  return Number(result.rows[0]?.value ?? 0);
}

/** Outbox events of one type about one consultation. */
export function countEvents(database: Database, consultationId: string, type: string): Promise<number> {
  return countRows(
    database,
    'select count(*) as value from platform.outbox_events where aggregate_id = $1 and type = $2',
    [consultationId, type],
  );
}

/**
 * Polls until `read` returns a value `isDone` accepts, for background work
 * (job workers) whose completion the test cannot await directly. Fails with
 * the last value seen when it never comes.
 */
export async function eventually<T>(
  read: () => Promise<T>,
  isDone: (value: T) => boolean,
  attempts = 100,
): Promise<T> {
  let value = await read();
  for (let attempt = 1; attempt < attempts && !isDone(value); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  expect(isDone(value), `still waiting for background work; last seen ${JSON.stringify(value)}`).toBe(true);
  return value;
}
