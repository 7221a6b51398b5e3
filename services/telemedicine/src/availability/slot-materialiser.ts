import { SlotsChangedV1 } from '@keel/contracts';
import type { Transaction } from '@keel/platform/db';
import type { Clock, IdGenerator } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import { emitEvent } from '@keel/platform/outbox';
import type { TelemedicineDatabase, TelemedicineSchema } from '../database.ts';
import {
  findDoctorStatus,
  findOverrides,
  findScheduleRules,
  findTimeOffBetween,
  lockSchedule,
} from './schedule.repository.ts';
import type { Slot } from './schedule.ts';
import {
  type ChangedSlot,
  deleteUnreferencedSlots,
  findLiveSlotsEndingAfter,
  insertOpenSlots,
  lockOpenSlots,
  refreshNextAvailableAt,
  withdrawSlots,
} from './slot.repository.ts';
import { type Interval, planSlots, utcDayOf } from './slot-plan.ts';
import { addDays, localDateAt } from './time-zone.ts';

const DAY_MS = 86_400_000;

export type MaterialisationResult = {
  added: number;
  removed: number;
  /** Net slots offered per UTC day (added minus removed), days without a net change left out. */
  offeredByDay: { day: string; count: number }[];
};

export type SlotMaterialiser = {
  /** Reconciles the doctor's future slots with their schedule inside `trx`. */
  materialise(trx: Transaction<TelemedicineSchema>, doctorId: string): Promise<MaterialisationResult>;
  /** `materialise` in its own transaction. */
  materialiseNow(doctorId: string): Promise<MaterialisationResult>;
};

export type SlotMaterialiserDependencies = {
  db: TelemedicineDatabase;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  settings: { slotHorizonDays: number };
};

const NOTHING_CHANGED: MaterialisationResult = { added: 0, removed: 0, offeredByDay: [] };

/**
 * Makes a doctor's future slots match their schedule over the horizon
 * [now, now + slotHorizonDays):
 * - planned slots that are missing and overlap no kept slot are inserted;
 * - OPEN future slots that are no longer planned are deleted, or WITHDRAWN
 *   when a consultation refers to them;
 * - HELD and BOOKED slots are never touched, and nothing is planned over them.
 * Runs for one doctor queue on the schedule row lock, so concurrent runs
 * (inline after a write, the job, the hourly roll) apply one after the other
 * and the later ones find nothing to do. Only VERIFIED doctors are offered
 * slots: for anyone else the plan is empty, which withdraws their open ones.
 * A doctor without a schedule is left alone.
 */
export function createSlotMaterialiser(deps: SlotMaterialiserDependencies): SlotMaterialiser {
  async function materialise(
    trx: Transaction<TelemedicineSchema>,
    doctorId: string,
  ): Promise<MaterialisationResult> {
    const schedule = await lockSchedule(trx, doctorId);
    if (schedule === undefined) return NOTHING_CHANGED;
    const now = deps.clock.now();
    const horizonEnd = new Date(now.getTime() + deps.settings.slotHorizonDays * DAY_MS);
    const status = await findDoctorStatus(trx, doctorId);
    let plan: Interval[] = [];
    if (status === 'VERIFIED') {
      const rules = await findScheduleRules(trx, doctorId);
      // The local dates the horizon touches, a day either side.
      const overrides = await findOverrides(
        trx,
        doctorId,
        addDays(localDateAt(now.getTime(), schedule.timeZone), -1),
        addDays(localDateAt(horizonEnd.getTime(), schedule.timeZone), 1),
      );
      const timeOff = await findTimeOffBetween(trx, doctorId, now, horizonEnd);
      plan = planSlots({ ...schedule, rules, overrides, timeOff, from: now, to: horizonEnd });
    }

    const existing = await findLiveSlotsEndingAfter(trx, doctorId, now);
    const plannedKeys = new Set(plan.map(keyOf));
    const unplanned = existing.filter(
      (slot) => slot.status === 'OPEN' && slot.startsAt >= now && !plannedKeys.has(keyOf(slot)),
    );
    // A booking may have taken some of them since they were read: only those still OPEN once locked go.
    const removable = await lockOpenSlots(
      trx,
      unplanned.map((slot) => slot.id),
    );
    const deleted = await deleteUnreferencedSlots(trx, doctorId, removable);
    const deletedIds = new Set(deleted.map((slot) => slot.id));
    const withdrawn = await withdrawSlots(
      trx,
      removable.filter((id) => !deletedIds.has(id)),
    );
    const removedIds = new Set([...deletedIds, ...withdrawn.map((slot) => slot.id)]);
    const kept = existing.filter((slot) => !removedIds.has(slot.id));

    const missing = plannedNotKept(plan, kept).map((slot) => ({ id: deps.ids.uuid(), ...slot }));
    const added = await insertOpenSlots(trx, doctorId, missing);
    await refreshNextAvailableAt(trx, doctorId, now);

    const removed = [...deleted, ...withdrawn];
    if (added.length === 0 && removed.length === 0) return NOTHING_CHANGED;
    const offeredByDay = countByDay(added, removed);
    await emitEvent(
      trx,
      {
        type: SlotsChangedV1.type,
        aggregateType: 'doctor',
        aggregateId: doctorId,
        payload: { doctorId, offeredByDay },
        occurredAt: now,
      },
      { definition: SlotsChangedV1 },
    );
    deps.logger.debug({ doctorId, added: added.length, removed: removed.length }, 'materialised slots');
    return { added: added.length, removed: removed.length, offeredByDay };
  }

  return {
    materialise,
    materialiseNow: (doctorId) => deps.db.transaction((trx) => materialise(trx, doctorId)),
  };
}

function keyOf(slot: Interval | Slot): string {
  return `${slot.startsAt.getTime()}/${slot.endsAt.getTime()}`;
}

/**
 * Planned slots that no kept slot already is, and that overlap no kept slot
 * (a booked slot from an older schedule wins over the new grid). Both lists
 * are sorted by start, so one sweep finds the overlaps.
 */
function plannedNotKept(plan: Interval[], kept: Slot[]): Interval[] {
  const keptKeys = new Set(kept.map(keyOf));
  const missing: Interval[] = [];
  let first = 0;
  for (const slot of plan) {
    if (keptKeys.has(keyOf(slot))) continue;
    // Kept slots ending by this slot's start cannot overlap it or any later one.
    while (first < kept.length && (kept[first]?.endsAt.getTime() ?? 0) <= slot.startsAt.getTime()) first += 1;
    let isClear = true;
    for (let index = first; index < kept.length; index += 1) {
      const other = kept[index];
      if (other === undefined || other.startsAt >= slot.endsAt) break;
      if (other.endsAt > slot.startsAt) {
        isClear = false;
        break;
      }
    }
    if (isClear) missing.push(slot);
  }
  return missing;
}

function countByDay(added: ChangedSlot[], removed: ChangedSlot[]): { day: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const slot of added)
    counts.set(utcDayOf(slot.startsAt), (counts.get(utcDayOf(slot.startsAt)) ?? 0) + 1);
  for (const slot of removed)
    counts.set(utcDayOf(slot.startsAt), (counts.get(utcDayOf(slot.startsAt)) ?? 0) - 1);
  return [...counts]
    .filter(([, count]) => count !== 0)
    .sort(([left], [right]) => left.localeCompare(right))
    .map(([day, count]) => ({ day, count }));
}
