import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { insertDoctor } from '../../test/fixtures.ts';
import type { TelemedicineDatabase, TelemedicineSchema } from '../database.ts';
import {
  deleteUnreferencedSlots,
  insertOpenSlots,
  lockOpenSlots,
  refreshNextAvailableAt,
  withdrawSlots,
} from './slot.repository.ts';

let testDb: TestDatabase;
let db: TelemedicineDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  db = testDb.database.typed<TelemedicineSchema>();
});
afterAll(async () => {
  await testDb?.drop();
});

const NOW = new Date('2026-03-25T00:00:00Z');

function slotAt(startIso: string, minutes = 15) {
  const startsAt = new Date(startIso);
  return { id: randomUUID(), startsAt, endsAt: new Date(startsAt.getTime() + minutes * 60_000) };
}

async function statusOf(id: string): Promise<string | undefined> {
  const result = await testDb.database.pool.query<{ status: string }>(
    'select status from telemedicine.slots where id = $1',
    [id],
  );
  return result.rows[0]?.status;
}

async function nextAvailableAt(doctorId: string): Promise<Date | null | undefined> {
  const result = await testDb.database.pool.query<{ next_available_at: Date | null }>(
    'select next_available_at from telemedicine.doctors where id = $1',
    [doctorId],
  );
  return result.rows[0]?.next_available_at;
}

describe('slot repository', () => {
  it('skips a slot the exclusion constraint refuses and inserts the rest', async () => {
    const doctorId = await insertDoctor(testDb.database);
    const existing = slotAt('2026-03-26T08:00:00Z', 30);
    await db.transaction((trx) => insertOpenSlots(trx, doctorId, [existing]));
    const overlapping = slotAt('2026-03-26T08:15:00Z');
    const clear = slotAt('2026-03-26T08:30:00Z');
    const inserted = await db.transaction((trx) => insertOpenSlots(trx, doctorId, [overlapping, clear]));
    expect(inserted.map((slot) => slot.id)).toEqual([clear.id]);
    expect(await statusOf(overlapping.id)).toBeUndefined();
  });

  it('lets a WITHDRAWN slot be overlapped and only withdraws or deletes slots still OPEN', async () => {
    const doctorId = await insertDoctor(testDb.database);
    const open = slotAt('2026-03-26T09:00:00Z');
    const booked = slotAt('2026-03-26T09:15:00Z');
    await db.transaction((trx) => insertOpenSlots(trx, doctorId, [open, booked]));
    await testDb.database.pool.query("update telemedicine.slots set status = 'BOOKED' where id = $1", [
      booked.id,
    ]);

    const locked = await db.transaction((trx) => lockOpenSlots(trx, [open.id, booked.id]));
    expect(locked).toEqual([open.id]);
    expect(await db.transaction((trx) => withdrawSlots(trx, [open.id, booked.id]))).toEqual([
      { id: open.id, startsAt: open.startsAt },
    ]);
    expect(await statusOf(booked.id)).toBe('BOOKED');
    // The withdrawn slot no longer blocks its time.
    const replacement = slotAt('2026-03-26T09:00:00Z');
    expect(await db.transaction((trx) => insertOpenSlots(trx, doctorId, [replacement]))).toHaveLength(1);
    expect(await db.transaction((trx) => deleteUnreferencedSlots(trx, doctorId, [booked.id]))).toEqual([]);
    expect(await statusOf(booked.id)).toBe('BOOKED');
  });

  it('keeps next_available_at on the earliest OPEN slot after now', async () => {
    const doctorId = await insertDoctor(testDb.database);
    await db.transaction((trx) => refreshNextAvailableAt(trx, doctorId, NOW));
    expect(await nextAvailableAt(doctorId)).toBeNull();

    const past = slotAt('2026-03-24T09:00:00Z');
    const held = slotAt('2026-03-26T08:00:00Z');
    const later = slotAt('2026-03-27T08:00:00Z');
    await db.transaction((trx) => insertOpenSlots(trx, doctorId, [past, held, later]));
    await testDb.database.pool.query(
      "update telemedicine.slots set status = 'HELD', hold_expires_at = starts_at where id = $1",
      [held.id],
    );
    await db.transaction((trx) => refreshNextAvailableAt(trx, doctorId, NOW));
    expect(await nextAvailableAt(doctorId)).toEqual(later.startsAt);

    await testDb.database.pool.query(
      "update telemedicine.slots set status = 'OPEN', hold_expires_at = null where id = $1",
      [held.id],
    );
    await db.transaction((trx) => refreshNextAvailableAt(trx, doctorId, NOW));
    expect(await nextAvailableAt(doctorId)).toEqual(held.startsAt);
  });
});
