import { randomUUID } from 'node:crypto';
import type { FieldEncryption } from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import type { ConsultationStatusColumn, TelemedicineSchema } from '../src/database.ts';
import { fieldAad } from '../src/encrypted-columns.ts';
import { insertSlots } from './fixtures.ts';

// Objects for the access matrix, written straight to the tables: each cell
// that changes state gets its own, in exactly the state its route acts on.

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Every slot handed out is 15 minutes long, 20 minutes after the previous one of its direction. */
const SLOT_MINUTES = 15;
const SLOT_SPACING = 20 * MINUTE;

export type SlotTimes = {
  /** The next free start in the future: booking and rescheduling only take slots after now. */
  future(): Date;
  /** The next free start at least two hours ago: start and no-show windows are open by then. */
  past(): Date;
};

/**
 * Start times that never repeat, so no two slots of one doctor overlap
 * (slots_no_overlap) however many cells create them.
 */
export function createSlotTimes(nowMs: number): SlotTimes {
  let futureCount = 0;
  let pastCount = 0;
  return {
    future: () => {
      futureCount += 1;
      return new Date(nowMs + 3 * DAY + futureCount * SLOT_SPACING);
    },
    past: () => {
      pastCount += 1;
      return new Date(nowMs - 2 * 60 * MINUTE - pastCount * SLOT_SPACING);
    },
  };
}

/** One OPEN slot of the doctor at `startsAt`. Returns its id. */
export async function insertOpenSlot(database: Database, doctorId: string, startsAt: Date): Promise<string> {
  const [slotId] = await insertSlots(database, doctorId, { startsAt, count: 1, minutes: SLOT_MINUTES });
  if (slotId === undefined) throw new Error('insertSlots returned no slot');
  return slotId;
}

/** A consultation between the two on a fresh BOOKED slot at `startsAt`, in `status`. Returns its id. */
export async function insertConsultationAt(
  database: Database,
  parties: { patientId: string; doctorId: string },
  status: Extract<ConsultationStatusColumn, 'SCHEDULED' | 'IN_PROGRESS' | 'COMPLETED'>,
  startsAt: Date,
): Promise<string> {
  const slotId = await insertOpenSlot(database, parties.doctorId, startsAt);
  const id = randomUUID();
  await database.typed<TelemedicineSchema>().transaction(async (trx) => {
    await trx.updateTable('telemedicine.slots').set({ status: 'BOOKED' }).where('id', '=', slotId).execute();
    await trx
      .insertInto('telemedicine.consultations')
      .values({
        id,
        patient_id: parties.patientId,
        doctor_id: parties.doctorId,
        slot_id: slotId,
        status,
        starts_at: startsAt,
        ends_at: new Date(startsAt.getTime() + SLOT_MINUTES * MINUTE),
        hold_expires_at: null,
        fee_minor: 5000,
        currency: 'EUR',
        specialty: 'general practice',
        consent_version: '2026-01',
        consented_at: new Date(startsAt.getTime() - DAY),
        ...(status === 'SCHEDULED' ? {} : { started_at: startsAt }),
        ...(status === 'COMPLETED'
          ? { completed_at: new Date(startsAt.getTime() + SLOT_MINUTES * MINUTE) }
          : {}),
      })
      .execute();
  });
  return id;
}

/** Time off of the doctor far ahead of every slot the matrix uses. Returns its id. */
export async function insertTimeOff(database: Database, doctorId: string, nowMs: number): Promise<string> {
  const id = randomUUID();
  await database.typed<TelemedicineSchema>().run((db) =>
    db
      .insertInto('telemedicine.time_off')
      .values({
        id,
        doctor_id: doctorId,
        starts_at: new Date(nowMs + 300 * DAY),
        ends_at: new Date(nowMs + 301 * DAY),
        reason: 'matrix',
      })
      .execute(),
  );
  return id;
}

/** A READY data export of the patient with a small archive, downloadable for a month. Returns its id. */
export async function insertReadyExport(
  database: Database,
  encryption: FieldEncryption,
  patientId: string,
  nowMs: number,
): Promise<string> {
  const id = randomUUID();
  await database.typed<TelemedicineSchema>().run((db) =>
    db
      .insertInto('telemedicine.data_exports')
      .values({
        id,
        patient_id: patientId,
        status: 'READY',
        archive: encryption.encrypt(
          JSON.stringify({ patient_id: patientId }),
          fieldAad('telemedicine.data_exports', 'archive', id),
        ),
        requested_at: new Date(nowMs - MINUTE),
        completed_at: new Date(nowMs),
        expires_at: new Date(nowMs + 30 * DAY),
      })
      .execute(),
  );
  return id;
}
