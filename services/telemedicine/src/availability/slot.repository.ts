import { type Kysely, type RawBuilder, sql } from '@keel/platform/db';
import type { SlotStatus, TelemedicineSchema } from '../database.ts';
import type { Slot } from './schedule.ts';

type Db = Kysely<TelemedicineSchema>;

/**
 * Sets the doctor's `next_available_at` to the earliest OPEN slot starting
 * after `now` (null when none). Every writer that moves a slot in or out of
 * OPEN calls it in the same transaction, so search never sorts on stale data.
 */
export async function refreshNextAvailableAt(
  trx: Kysely<TelemedicineSchema>,
  doctorId: string,
  now: Date,
): Promise<void> {
  const earliestOpen = earliestOpenSlot(doctorId, now, undefined);
  // Only a real change writes the row: a materialiser run that changed
  // nothing must not churn the doctor row (or wait on its lock).
  await trx
    .updateTable('telemedicine.doctors')
    .set({ next_available_at: earliestOpen })
    .where('id', '=', doctorId)
    .where(sql<boolean>`next_available_at is distinct from ${earliestOpen}`)
    .execute();
}

/**
 * `refreshNextAvailableAt` as a CTE of the statement that takes slot
 * `takenSlotId` out of OPEN, run only if `condition` selects anything. Every
 * part of a statement sees the rows as they were before it, so the slot it
 * takes still looks OPEN here: it is left out by id.
 */
export function nextAvailableRefreshWhen(
  doctorId: string,
  now: Date,
  takenSlotId: string,
  condition: RawBuilder<unknown>,
): RawBuilder<unknown> {
  const earliestOpen = earliestOpenSlot(doctorId, now, takenSlotId);
  return sql`update telemedicine.doctors set next_available_at = ${earliestOpen}
    where id = ${doctorId}::uuid and next_available_at is distinct from ${earliestOpen} and exists (${condition})`;
}

function earliestOpenSlot(
  doctorId: string,
  now: Date,
  excluding: string | undefined,
): RawBuilder<Date | null> {
  return sql<Date | null>`(
    select min(s.starts_at) from telemedicine.slots s
    where s.doctor_id = ${doctorId}::uuid and s.status = 'OPEN' and s.starts_at > ${now}::timestamptz
      ${excluding === undefined ? sql`` : sql`and s.id <> ${excluding}::uuid`}
  )`;
}

type SlotRow = { id: string; doctor_id: string; starts_at: Date; ends_at: Date; status: SlotStatus };

const SLOT_COLUMNS = ['id', 'doctor_id', 'starts_at', 'ends_at', 'status'] as const;

function toSlot(row: SlotRow): Slot {
  return {
    id: row.id,
    doctorId: row.doctor_id,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    status: row.status,
  };
}

/** A slot's start, for counting what a change offered per day. */
export type ChangedSlot = { id: string; startsAt: Date };

/**
 * Every live (not WITHDRAWN) slot of the doctor that has not ended by `now`,
 * earliest first: what a materialisation must keep clear of or reconcile.
 */
export async function findLiveSlotsEndingAfter(trx: Db, doctorId: string, now: Date): Promise<Slot[]> {
  const rows = await trx
    .selectFrom('telemedicine.slots')
    .select(SLOT_COLUMNS)
    .where('doctor_id', '=', doctorId)
    .where('status', '<>', 'WITHDRAWN')
    .where('ends_at', '>', now)
    .orderBy('starts_at')
    .execute();
  return rows.map(toSlot);
}

/**
 * Locks those of `ids` that are still OPEN, in id order (the order every
 * multi-slot writer locks in). A slot a booking holds or took meanwhile is
 * left out: the row is re-checked after its lock is granted.
 */
export async function lockOpenSlots(trx: Db, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await trx
    .selectFrom('telemedicine.slots')
    .select('id')
    .where('id', '=', sql<string>`any(${ids}::uuid[])`)
    .where('status', '=', 'OPEN')
    .orderBy('id')
    .forUpdate()
    .execute();
  return rows.map((row) => row.id);
}

/**
 * Deletes those of the doctor's locked OPEN slots that no consultation refers
 * to. A consultation's slots (booked, or rescheduled from) always belong to
 * its doctor, so the doctor's index finds every reference.
 */
export async function deleteUnreferencedSlots(
  trx: Db,
  doctorId: string,
  ids: readonly string[],
): Promise<ChangedSlot[]> {
  if (ids.length === 0) return [];
  const result = await sql<{ id: string; starts_at: Date }>`
    delete from telemedicine.slots s
    where s.id = any(${ids}::uuid[]) and s.status = 'OPEN'
      and not exists (
        select 1 from telemedicine.consultations c
        where c.doctor_id = ${doctorId}::uuid and (c.slot_id = s.id or c.rescheduled_from_slot_id = s.id)
      )
    returning s.id, s.starts_at
  `.execute(trx);
  return result.rows.map((row) => ({ id: row.id, startsAt: row.starts_at }));
}

/** Withdraws locked OPEN slots that have history (they stay as the record of past bookings). */
export async function withdrawSlots(trx: Db, ids: readonly string[]): Promise<ChangedSlot[]> {
  if (ids.length === 0) return [];
  const rows = await trx
    .updateTable('telemedicine.slots')
    .set((eb) => ({ status: 'WITHDRAWN', version: eb('version', '+', 1) }))
    .where('id', '=', sql<string>`any(${ids}::uuid[])`)
    .where('status', '=', 'OPEN')
    .returning(['id', 'starts_at'])
    .execute();
  return rows.map((row) => ({ id: row.id, startsAt: row.starts_at }));
}

/**
 * Inserts OPEN slots; one that would overlap a live slot is skipped by the
 * exclusion constraint `slots_no_overlap` instead of failing the run.
 */
export async function insertOpenSlots(
  trx: Db,
  doctorId: string,
  slots: readonly { id: string; startsAt: Date; endsAt: Date }[],
): Promise<ChangedSlot[]> {
  if (slots.length === 0) return [];
  const inserted: ChangedSlot[] = [];
  // Bounded statements: a long horizon of short slots is thousands of rows.
  for (let offset = 0; offset < slots.length; offset += INSERT_BATCH_SIZE) {
    const rows = await trx
      .insertInto('telemedicine.slots')
      .values(
        slots.slice(offset, offset + INSERT_BATCH_SIZE).map((slot) => ({
          id: slot.id,
          doctor_id: doctorId,
          starts_at: slot.startsAt,
          ends_at: slot.endsAt,
          status: 'OPEN' as const,
        })),
      )
      .onConflict((conflict) => conflict.doNothing())
      .returning(['id', 'starts_at'])
      .execute();
    inserted.push(...rows.map((row) => ({ id: row.id, startsAt: row.starts_at })));
  }
  return inserted;
}

const INSERT_BATCH_SIZE = 1_000;

/** OPEN slots starting in [from, to) and after `now`, earliest first. */
export async function findOpenSlots(
  db: Db,
  doctorId: string,
  range: { from: Date; to: Date; now: Date },
): Promise<Slot[]> {
  // A listing is hundreds of rows: the times come as epoch milliseconds (a
  // float8 the driver reads with parseFloat) rather than timestamptz text
  // parsed twice per row, and doctor and status are the ones asked for.
  const rows = await db
    .selectFrom('telemedicine.slots')
    .select([
      'id',
      sql<number>`(extract(epoch from starts_at) * 1000)::float8`.as('starts_ms'),
      sql<number>`(extract(epoch from ends_at) * 1000)::float8`.as('ends_ms'),
    ])
    .where('doctor_id', '=', doctorId)
    .where('status', '=', 'OPEN')
    .where('starts_at', '>=', range.from)
    .where('starts_at', '<', range.to)
    .where('starts_at', '>', range.now)
    .orderBy('starts_at')
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    doctorId,
    startsAt: new Date(row.starts_ms),
    endsAt: new Date(row.ends_ms),
    status: 'OPEN',
  }));
}
