import { randomUUID } from 'node:crypto';
import type { Database } from '@keel/platform/db';
import type { ConsultationStatusColumn, TelemedicineSchema } from '../src/database.ts';
import { insertSlots, nextDayAtUtc } from './fixtures.ts';

// A consultation row written straight to the table, in any status, for the
// features that only need one to exist (reviews, a treating doctor's access).

let slotOffset = 0;

/**
 * A consultation between `patientId` and `doctorId` on a fresh slot of the
 * doctor (each call takes the next 15 minutes, so slots never overlap).
 * Returns its id.
 */
export async function insertConsultation(
  database: Database,
  parties: { patientId: string; doctorId: string },
  status: ConsultationStatusColumn = 'COMPLETED',
): Promise<string> {
  slotOffset += 1;
  const startsAt = new Date(nextDayAtUtc(6, 2).getTime() + slotOffset * 15 * 60_000);
  const [slotId] = await insertSlots(database, parties.doctorId, { startsAt, count: 1, minutes: 15 });
  if (slotId === undefined) throw new Error('insertSlots returned no slot');
  const id = randomUUID();
  await database.typed<TelemedicineSchema>().run((db) =>
    db
      .insertInto('telemedicine.consultations')
      .values({
        id,
        patient_id: parties.patientId,
        doctor_id: parties.doctorId,
        slot_id: slotId,
        status,
        starts_at: startsAt,
        ends_at: new Date(startsAt.getTime() + 15 * 60_000),
        hold_expires_at: status === 'PENDING_PAYMENT' ? new Date(startsAt.getTime() - 60_000) : null,
        fee_minor: 5000,
        currency: 'EUR',
        specialty: 'general practice',
        consent_version: '2026-01',
        consented_at: new Date(),
        ...(status === 'COMPLETED' ? { started_at: startsAt, completed_at: startsAt } : {}),
        ...(status === 'CANCELLED' ? { cancelled_at: new Date(), cancelled_by: 'patient' as const } : {}),
        ...(status === 'EXPIRED' ? { expired_reason: 'hold_expired' as const } : {}),
      })
      .execute(),
  );
  return id;
}
