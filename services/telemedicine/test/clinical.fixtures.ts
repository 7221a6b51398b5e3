import { randomUUID } from 'node:crypto';
import type { Database } from '@keel/platform/db';
import type { TestApp } from '@keel/platform/testing';
import type { ConsultationStatusColumn, TelemedicineSchema } from '../src/database.ts';
import { insertSlots, signInDoctor, signInPatient, type TelemedicineCaller } from './fixtures.ts';

// Consultations written straight to the table, as booking leaves them: the
// clinical and prescription tests start where the booking saga ends.

export type TestConsultation = {
  id: string;
  slotId: string;
  doctor: TelemedicineCaller;
  patient: TelemedicineCaller;
  startsAt: Date;
  endsAt: Date;
};

/** A booked consultation row (SCHEDULED unless `status` says otherwise) on a fresh slot of the doctor. */
export async function insertConsultation(
  database: Database,
  parties: { doctorId: string; patientId: string },
  options: { startsAt: Date; minutes?: number; status?: ConsultationStatusColumn },
): Promise<{ id: string; slotId: string; startsAt: Date; endsAt: Date }> {
  const minutes = options.minutes ?? 15;
  const [slotId] = await insertSlots(database, parties.doctorId, { startsAt: options.startsAt, minutes });
  if (slotId === undefined) throw new Error('no slot inserted');
  const id = randomUUID();
  const endsAt = new Date(options.startsAt.getTime() + minutes * 60_000);
  const status = options.status ?? 'SCHEDULED';
  await database.typed<TelemedicineSchema>().run(async (db) => {
    await db.updateTable('telemedicine.slots').set({ status: 'BOOKED' }).where('id', '=', slotId).execute();
    await db
      .insertInto('telemedicine.consultations')
      .values({
        id,
        patient_id: parties.patientId,
        doctor_id: parties.doctorId,
        slot_id: slotId,
        status,
        starts_at: options.startsAt,
        ends_at: endsAt,
        hold_expires_at:
          status === 'PENDING_PAYMENT' ? new Date(options.startsAt.getTime() - 3_600_000) : null,
        fee_minor: 5000,
        currency: 'EUR',
        specialty: 'general practice',
        consent_version: '2026-01',
        consented_at: new Date(options.startsAt.getTime() - 86_400_000),
      })
      .execute();
  });
  return { id, slotId, startsAt: options.startsAt, endsAt };
}

/** A signed-in doctor and patient (with profiles) and a consultation between them. */
export async function setUpConsultation(
  testApp: TestApp,
  database: Database,
  options: { startsAt: Date; status?: ConsultationStatusColumn; patientName?: string },
): Promise<TestConsultation> {
  const doctor = await signInDoctor(testApp, database, { fullName: 'Dr Ada Lovelace' });
  const patient = await signInPatient(
    testApp,
    database,
    testApp.security.fieldCrypto.encryption,
    options.patientName === undefined ? {} : { fullName: options.patientName },
  );
  const consultation = await insertConsultation(
    database,
    { doctorId: doctor.account.id, patientId: patient.account.id },
    { startsAt: options.startsAt, ...(options.status === undefined ? {} : { status: options.status }) },
  );
  return { ...consultation, doctor, patient };
}

/** The clinical access rows filed under a patient (their access log), oldest first. */
export async function clinicalAuditRows(
  database: Database,
  patientId: string,
): Promise<{ action: string; actor_id: string; changes: Record<string, unknown> }[]> {
  const result = await database.pool.query<{
    action: string;
    actor_id: string;
    changes: Record<string, unknown>;
  }>(
    `select action, actor_id, changes from platform.audit_events
      where resource_type = 'telemedicine.patient_record' and resource_id = $1
      order by id`,
    [patientId],
  );
  return result.rows;
}
