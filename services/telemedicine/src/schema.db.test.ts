import { randomUUID } from 'node:crypto';
import { sqlState } from '@keel/platform/db';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TelemedicineSchema } from './database.ts';

// The database-level guarantees behind booking, tested without the service:
// whatever the application does, these constraints refuse the bad row.

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
});
afterAll(async () => {
  await testDb.drop();
});

function db() {
  return testDb.database.typed<TelemedicineSchema>();
}

async function insertDoctorAndPatient(): Promise<{ doctorId: string; patientId: string }> {
  const doctorId = randomUUID();
  const patientId = randomUUID();
  await db().run(async (kysely) => {
    await kysely
      .insertInto('telemedicine.doctors')
      .values({
        id: doctorId,
        full_name: 'Dr Schema',
        specialties: ['cardiology'],
        languages: ['en'],
        registration_number: `REG-${doctorId}`,
        years_of_experience: 3,
        fee_minor: 1000,
        currency: 'EUR',
        time_zone: 'UTC',
      })
      .execute();
    await kysely
      .insertInto('telemedicine.patients')
      .values({ id: patientId, full_name: 'x', date_of_birth: 'x', sex: 'unspecified' })
      .execute();
  });
  return { doctorId, patientId };
}

async function insertSlot(
  doctorId: string,
  startsAt: string,
  endsAt: string,
  status: 'OPEN' | 'WITHDRAWN' = 'OPEN',
) {
  const id = randomUUID();
  await db().run((kysely) =>
    kysely
      .insertInto('telemedicine.slots')
      .values({
        id,
        doctor_id: doctorId,
        starts_at: new Date(startsAt),
        ends_at: new Date(endsAt),
        status,
        hold_expires_at: null,
      })
      .execute(),
  );
  return id;
}

async function stateOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return sqlState(error);
  }
}

describe('telemedicine schema', () => {
  it('refuses a slot that overlaps another live slot of the same doctor (23P01)', async () => {
    const { doctorId } = await insertDoctorAndPatient();
    await insertSlot(doctorId, '2030-03-01T09:00:00Z', '2030-03-01T09:15:00Z');
    expect(await stateOf(insertSlot(doctorId, '2030-03-01T09:10:00Z', '2030-03-01T09:25:00Z'))).toBe('23P01');
    // Touching ends do not overlap (ranges are half-open), and a withdrawn slot does not count.
    expect(
      await stateOf(insertSlot(doctorId, '2030-03-01T09:15:00Z', '2030-03-01T09:30:00Z')),
    ).toBeUndefined();
    expect(
      await stateOf(insertSlot(doctorId, '2030-03-01T09:05:00Z', '2030-03-01T09:20:00Z', 'WITHDRAWN')),
    ).toBeUndefined();
  });

  it('allows the same times for two different doctors', async () => {
    const first = await insertDoctorAndPatient();
    const second = await insertDoctorAndPatient();
    await insertSlot(first.doctorId, '2030-03-02T09:00:00Z', '2030-03-02T09:15:00Z');
    expect(
      await stateOf(insertSlot(second.doctorId, '2030-03-02T09:00:00Z', '2030-03-02T09:15:00Z')),
    ).toBeUndefined();
  });

  it('refuses a second live consultation for one slot (23505), but not after the first expired', async () => {
    const { doctorId, patientId } = await insertDoctorAndPatient();
    const slotId = await insertSlot(doctorId, '2030-03-03T09:00:00Z', '2030-03-03T09:15:00Z');
    const consultation = (status: 'SCHEDULED' | 'PENDING_PAYMENT') => ({
      id: randomUUID(),
      patient_id: patientId,
      doctor_id: doctorId,
      slot_id: slotId,
      status,
      starts_at: new Date('2030-03-03T09:00:00Z'),
      ends_at: new Date('2030-03-03T09:15:00Z'),
      hold_expires_at: status === 'PENDING_PAYMENT' ? new Date('2030-03-01T00:00:00Z') : null,
      fee_minor: 1000,
      currency: 'EUR',
      specialty: 'cardiology',
      consent_version: '2026-11',
      consented_at: new Date(),
    });
    const first = consultation('PENDING_PAYMENT');
    await db().run((kysely) => kysely.insertInto('telemedicine.consultations').values(first).execute());
    expect(
      await stateOf(
        db().run((kysely) =>
          kysely.insertInto('telemedicine.consultations').values(consultation('SCHEDULED')).execute(),
        ),
      ),
    ).toBe('23505');
    await db().run((kysely) =>
      kysely
        .updateTable('telemedicine.consultations')
        .set({ status: 'EXPIRED', hold_expires_at: null, expired_reason: 'hold_expired' })
        .where('id', '=', first.id)
        .execute(),
    );
    expect(
      await stateOf(
        db().run((kysely) =>
          kysely.insertInto('telemedicine.consultations').values(consultation('SCHEDULED')).execute(),
        ),
      ),
    ).toBeUndefined();
  });
});
