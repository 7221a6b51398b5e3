import type { Kysely, Transaction } from '@keel/platform/db';
import { parseIfMatchVersion } from '@keel/platform/http';
import type { IdempotencyClaim, StoredResponse } from '@keel/platform/idempotency';
import type { Clock, IdGenerator, JobSender } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import { doctorNotFound } from '../access/access.errors.ts';
import type { TelemedicineDatabase, TelemedicineSchema } from '../database.ts';
import {
  doctorProfileRequired,
  invalidDate,
  invalidIfMatch,
  invalidOverride,
  invalidRange,
  invalidTimeOff,
  invalidTimeZone,
  invalidWindows,
  overlappingWindows,
  scheduleNotFound,
  scheduleRequired,
  timeOffNotFound,
  versionMismatch,
} from './availability.errors.ts';
import {
  MATERIALISE_SLOTS_QUEUE,
  type MaterialiseSlotsJob,
  materialiseJobOptions,
} from './materialise-slots.job.ts';
import {
  deleteOverride,
  deleteTimeOff,
  findDoctorStatus,
  findOverrides,
  findSchedule,
  findTimeOffEndingAfter,
  insertScheduleIfAbsent,
  insertTimeOff,
  lockSchedule,
  replaceOverride,
  replaceScheduleRules,
  type ScheduleHeader,
  updateSchedule,
} from './schedule.repository.ts';
import {
  type DateOverride,
  findRuleProblems,
  findWindowProblems,
  type Schedule,
  type ScheduleInput,
  type ScheduleWindow,
  type Slot,
  type TimeOff,
  toFieldErrors,
  type WindowProblem,
} from './schedule.ts';
import { findOpenSlots } from './slot.repository.ts';
import type { SlotMaterialiser } from './slot-materialiser.ts';
import { addDays, canonicalTimeZone, isLocalDate, localDateAt, startOfLocalDate } from './time-zone.ts';

const DAY_MS = 86_400_000;
const DEFAULT_SLOT_RANGE_DAYS = 7;
const MAX_SLOT_RANGE_DAYS = 31;
const DEFAULT_OVERRIDE_RANGE_DAYS = 90;
const MAX_OVERRIDE_RANGE_DAYS = 366;
const MAX_TIME_OFF_DAYS = 366;
const INSTANT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Whose availability a call is about. `isSelf`: the caller is the doctor
 * (a missing profile is theirs to create, 422); otherwise an admin names the
 * doctor (a missing one is 404).
 */
export type AvailabilityOwner = { doctorId: string; isSelf: boolean };

export type AvailabilityServiceDependencies = {
  db: TelemedicineDatabase;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  jobs: JobSender;
  materialiser: SlotMaterialiser;
};

export type SlotQuery = { from?: string; to?: string; timeZone?: string };

export type SlotListing = { doctorId: string; timeZone: string; from: Date; to: Date; slots: Slot[] };

export type TimeOffInput = { startsAt: Date; endsAt: Date; reason: string };

export type AddTimeOffIdempotency = {
  claim: IdempotencyClaim;
  respond: (timeOff: TimeOff) => StoredResponse;
};

export type AvailabilityService = ReturnType<typeof createAvailabilityService>;

export function createAvailabilityService(deps: AvailabilityServiceDependencies) {
  const { db, clock, ids, logger, jobs, materialiser } = deps;

  async function assertHasProfile(database: Kysely<TelemedicineSchema>, owner: AvailabilityOwner) {
    const status = await findDoctorStatus(database, owner.doctorId);
    if (status === undefined) throw owner.isSelf ? doctorProfileRequired() : doctorNotFound(owner.doctorId);
  }

  /**
   * Runs an availability write under the schedule row lock (writes of one
   * doctor, and materialisations, apply one at a time) and, in its
   * transaction, enqueues the doctor's materialisation; then materialises at
   * once so that the caller's next read sees the new slots. The inline run is
   * best effort: when it fails (the database is busy), the job does it.
   */
  async function writeAvailability<T>(
    owner: AvailabilityOwner,
    work: (trx: Transaction<TelemedicineSchema>, schedule: ScheduleHeader | undefined) => Promise<T>,
  ): Promise<T> {
    const result = await db.transaction(async (trx) => {
      await assertHasProfile(trx, owner);
      const value = await work(trx, await lockSchedule(trx, owner.doctorId));
      await jobs.sendWith<MaterialiseSlotsJob>(
        trx,
        MATERIALISE_SLOTS_QUEUE,
        { doctorId: owner.doctorId },
        materialiseJobOptions(owner.doctorId),
      );
      return value;
    });
    try {
      await materialiser.materialiseNow(owner.doctorId);
    } catch (error) {
      logger.warn(
        { doctorId: owner.doctorId, err: { message: (error as Error).message } },
        'inline slot materialisation failed; the queued job will retry it',
      );
    }
    return result;
  }

  return {
    async getSchedule(owner: AvailabilityOwner): Promise<Schedule> {
      return db.run(async (database) => {
        await assertHasProfile(database, owner);
        const schedule = await findSchedule(database, owner.doctorId);
        if (schedule === undefined) throw scheduleNotFound(owner.doctorId);
        return schedule;
      });
    },

    /**
     * Replaces the weekly schedule (creating it the first time). `If-Match`
     * is optional; a stale one is 412. Slots follow at once: new windows are
     * offered, dropped ones withdrawn, booked ones kept.
     */
    async replaceSchedule(
      owner: AvailabilityOwner,
      input: ScheduleInput,
      ifMatch: string | undefined,
    ): Promise<{ schedule: Schedule; isCreated: boolean }> {
      const expected = parseIfMatchVersion(ifMatch, invalidIfMatch);
      const timeZone = canonicalTimeZone(input.timeZone);
      if (timeZone === undefined) throw invalidTimeZone('/body/time_zone', input.timeZone);
      throwWindowProblems(findRuleProblems(input.rules, input.slotMinutes), '/body/rules');
      return writeAvailability(owner, async (trx, locked) => {
        const settings = {
          doctorId: owner.doctorId,
          timeZone,
          slotMinutes: input.slotMinutes,
          bufferMinutes: input.bufferMinutes,
          updatedAt: clock.now(),
        };
        const rules = [...input.rules].sort(
          (left, right) => left.weekday - right.weekday || left.start.localeCompare(right.start),
        );
        let header: ScheduleHeader | undefined;
        if (locked === undefined) {
          if (expected !== undefined) throw versionMismatch(expected, null);
          header = await insertScheduleIfAbsent(trx, settings);
          // Undefined: a concurrent first PUT committed while this one waited; without
          // If-Match the last writer wins, so this one replaces it.
          if (header === undefined) await lockSchedule(trx, owner.doctorId);
        } else if (expected !== undefined && expected !== '*' && expected !== locked.version) {
          throw versionMismatch(expected, locked.version);
        }
        const isCreated = header !== undefined;
        header ??= await updateSchedule(trx, settings);
        await replaceScheduleRules(
          trx,
          owner.doctorId,
          rules.map((rule) => ({ ...rule, id: ids.uuid() })),
        );
        return { schedule: { ...header, rules }, isCreated };
      });
    },

    /** Replaces one local date's windows (or makes it a day off). */
    async putOverride(
      owner: AvailabilityOwner,
      localDate: string,
      input: { isAvailable: boolean; windows: ScheduleWindow[] | undefined },
    ): Promise<DateOverride> {
      assertLocalDate(localDate, '/params/date');
      const windows = input.windows ?? [];
      if (input.isAvailable && windows.length === 0) {
        throw invalidOverride('/body/windows', 'must list at least one window when is_available is true');
      }
      if (!input.isAvailable && windows.length > 0) {
        throw invalidOverride('/body/windows', 'must be empty for a day off (is_available false)');
      }
      return writeAvailability(owner, async (trx, schedule) => {
        if (schedule === undefined) throw scheduleRequired();
        throwWindowProblems(
          findWindowProblems(
            windows.map((window, index) => ({ ...window, index })),
            schedule.slotMinutes,
          ),
          '/body/windows',
        );
        const sorted = [...windows].sort((left, right) => left.start.localeCompare(right.start));
        await replaceOverride(
          trx,
          owner.doctorId,
          localDate,
          input.isAvailable
            ? sorted.map((window) => ({ id: ids.uuid(), isAvailable: true, window }))
            : [{ id: ids.uuid(), isAvailable: false, window: null }],
        );
        return { localDate, isAvailable: input.isAvailable, windows: sorted };
      });
    },

    /** Removes a date's override (back to the weekly windows); removing none is not an error. */
    async removeOverride(owner: AvailabilityOwner, localDate: string): Promise<void> {
      assertLocalDate(localDate, '/params/date');
      await writeAvailability(owner, async (trx) => {
        await deleteOverride(trx, owner.doctorId, localDate);
      });
    },

    async listOverrides(
      owner: AvailabilityOwner,
      range: { from?: string; to?: string },
    ): Promise<DateOverride[]> {
      if (range.from !== undefined) assertLocalDate(range.from, '/querystring/from');
      if (range.to !== undefined) assertLocalDate(range.to, '/querystring/to');
      return db.run(async (database) => {
        await assertHasProfile(database, owner);
        const schedule = await findSchedule(database, owner.doctorId);
        if (schedule === undefined) return [];
        const from = range.from ?? localDateAt(clock.now().getTime(), schedule.timeZone);
        const to = range.to ?? addDays(from, DEFAULT_OVERRIDE_RANGE_DAYS);
        if (to < from) throw invalidRange('/querystring/to', 'must not be before from');
        if (to > addDays(from, MAX_OVERRIDE_RANGE_DAYS)) {
          throw invalidRange('/querystring/to', `must be at most ${MAX_OVERRIDE_RANGE_DAYS} days after from`);
        }
        return findOverrides(database, owner.doctorId, from, to);
      });
    },

    /** Adds time off; open slots inside it are withdrawn at once (booked ones stay). */
    async addTimeOff(
      owner: AvailabilityOwner,
      input: TimeOffInput,
      options: { idempotency?: AddTimeOffIdempotency } = {},
    ): Promise<TimeOff> {
      const now = clock.now();
      if (input.endsAt <= input.startsAt) throw invalidTimeOff('/body/ends_at', 'must be after starts_at');
      if (input.endsAt <= now) throw invalidTimeOff('/body/ends_at', 'must be in the future');
      if (input.endsAt.getTime() - input.startsAt.getTime() > MAX_TIME_OFF_DAYS * DAY_MS) {
        throw invalidTimeOff('/body/ends_at', `must be at most ${MAX_TIME_OFF_DAYS} days after starts_at`);
      }
      const { idempotency } = options;
      return writeAvailability(owner, async (trx) => {
        const timeOff = await insertTimeOff(trx, {
          id: ids.uuid(),
          doctorId: owner.doctorId,
          startsAt: input.startsAt,
          endsAt: input.endsAt,
          reason: input.reason,
          createdAt: now,
        });
        await idempotency?.claim.complete(trx, idempotency.respond(timeOff));
        return timeOff;
      });
    },

    /** Time off that has not ended yet, earliest first. */
    async listTimeOff(owner: AvailabilityOwner): Promise<TimeOff[]> {
      return db.run(async (database) => {
        await assertHasProfile(database, owner);
        return findTimeOffEndingAfter(database, owner.doctorId, clock.now());
      });
    },

    /** Removes time off; its hours are offered again (as the schedule says). */
    async removeTimeOff(owner: AvailabilityOwner, timeOffId: string): Promise<void> {
      await writeAvailability(owner, async (trx) => {
        const removed = await deleteTimeOff(trx, owner.doctorId, timeOffId);
        if (removed === undefined) throw timeOffNotFound(timeOffId);
      });
    },

    /**
     * A verified doctor's OPEN future slots starting in [from, to). Dates are
     * read in the caller's zone: `from` is the start of that day, `to` the
     * end of that day.
     */
    async listSlots(doctorId: string, query: SlotQuery): Promise<SlotListing> {
      const requestedZone = query.timeZone ?? 'UTC';
      const timeZone = canonicalTimeZone(requestedZone);
      if (timeZone === undefined) throw invalidTimeZone('/querystring/time_zone', requestedZone);
      const now = clock.now();
      const from =
        query.from === undefined ? now : parseBound(query.from, timeZone, 'start', '/querystring/from');
      const to =
        query.to === undefined
          ? new Date(from.getTime() + DEFAULT_SLOT_RANGE_DAYS * DAY_MS)
          : parseBound(query.to, timeZone, 'end', '/querystring/to');
      if (to <= from) throw invalidRange('/querystring/to', 'must be after from');
      if (to.getTime() - from.getTime() > MAX_SLOT_RANGE_DAYS * DAY_MS) {
        throw invalidRange('/querystring/to', `must be at most ${MAX_SLOT_RANGE_DAYS} days after from`);
      }
      return db.run(async (database) => {
        if ((await findDoctorStatus(database, doctorId)) !== 'VERIFIED') throw doctorNotFound(doctorId);
        const slots = await findOpenSlots(database, doctorId, { from, to, now });
        return { doctorId, timeZone, from, to, slots };
      });
    },
  };
}

function throwWindowProblems(problems: WindowProblem[], pointerBase: string): void {
  if (problems.length === 0) return;
  const invalid = problems.filter((problem) => !problem.isOverlap);
  if (invalid.length > 0) throw invalidWindows(toFieldErrors(invalid, pointerBase));
  throw overlappingWindows(toFieldErrors(problems, pointerBase));
}

// Far enough either way for any schedule, and clear of the years a Date or Postgres cannot hold.
const EARLIEST_DATE = '1900-01-01';
const LATEST_DATE = '9998-12-31';

function assertLocalDate(value: string, pointer: string): void {
  if (!isLocalDate(value) || value < EARLIEST_DATE || value > LATEST_DATE) throw invalidDate(pointer);
}

/**
 * An instant (ISO 8601 with an offset) or a date in `timeZone`: a range
 * starting on a date starts at its first instant; one ending on a date
 * includes that whole day.
 */
function parseBound(value: string, timeZone: string, side: 'start' | 'end', pointer: string): Date {
  if (DATE_PATTERN.test(value)) {
    assertLocalDate(value, pointer);
    return new Date(startOfLocalDate(side === 'start' ? value : addDays(value, 1), timeZone));
  }
  const instant = INSTANT_PATTERN.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(instant) || value < EARLIEST_DATE || value > LATEST_DATE) {
    throw invalidRange(pointer, 'must be an ISO 8601 instant with an offset, or a date (YYYY-MM-DD)');
  }
  return new Date(instant);
}
