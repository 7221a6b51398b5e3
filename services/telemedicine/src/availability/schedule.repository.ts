import { type Kysely, sql } from '@keel/platform/db';
import type { DoctorStatus, TelemedicineSchema } from '../database.ts';
import {
  type DateOverride,
  type Schedule,
  type ScheduleRule,
  type ScheduleWindow,
  type TimeOff,
  toTimeOfDay,
} from './schedule.ts';
import type { IsoWeekday } from './time-zone.ts';

type Db = Kysely<TelemedicineSchema>;

/** The schedule row without its rules (what a writer locks). */
export type ScheduleHeader = Omit<Schedule, 'rules'>;

type ScheduleRow = {
  doctor_id: string;
  time_zone: string;
  slot_minutes: number;
  buffer_minutes: number;
  version: number;
  updated_at: Date;
};

function toScheduleHeader(row: ScheduleRow): ScheduleHeader {
  return {
    doctorId: row.doctor_id,
    timeZone: row.time_zone,
    slotMinutes: row.slot_minutes,
    bufferMinutes: row.buffer_minutes,
    version: row.version,
    updatedAt: row.updated_at,
  };
}

const SCHEDULE_COLUMNS = [
  'doctor_id',
  'time_zone',
  'slot_minutes',
  'buffer_minutes',
  'version',
  'updated_at',
] as const;

export async function findDoctorStatus(db: Db, doctorId: string): Promise<DoctorStatus | undefined> {
  const row = await db
    .selectFrom('telemedicine.doctors')
    .select('status')
    .where('id', '=', doctorId)
    .executeTakeFirst();
  return row?.status;
}

export async function findSchedule(db: Db, doctorId: string): Promise<Schedule | undefined> {
  const row = await db
    .selectFrom('telemedicine.schedules')
    .select(SCHEDULE_COLUMNS)
    .where('doctor_id', '=', doctorId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return { ...toScheduleHeader(row), rules: await findScheduleRules(db, doctorId) };
}

/** Locks the schedule row: every writer of a doctor's availability, and the materialiser, queue here. */
export async function lockSchedule(trx: Db, doctorId: string): Promise<ScheduleHeader | undefined> {
  const row = await trx
    .selectFrom('telemedicine.schedules')
    .select(SCHEDULE_COLUMNS)
    .where('doctor_id', '=', doctorId)
    .forUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : toScheduleHeader(row);
}

export async function findScheduleRules(db: Db, doctorId: string): Promise<ScheduleRule[]> {
  const rows = await db
    .selectFrom('telemedicine.schedule_rules')
    .select([
      'weekday',
      sql<string>`start_local::text`.as('start_local'),
      sql<string>`end_local::text`.as('end_local'),
    ])
    .where('doctor_id', '=', doctorId)
    .orderBy('weekday')
    .orderBy('start_local')
    .execute();
  return rows.map((row) => ({
    weekday: row.weekday as IsoWeekday,
    start: toTimeOfDay(row.start_local),
    end: toTimeOfDay(row.end_local),
  }));
}

/**
 * Inserts the first version of a schedule; undefined when one already exists
 * (a concurrent first PUT won: the caller locks and updates it instead).
 */
export async function insertScheduleIfAbsent(
  trx: Db,
  schedule: Omit<ScheduleHeader, 'version'>,
): Promise<ScheduleHeader | undefined> {
  const row = await trx
    .insertInto('telemedicine.schedules')
    .values({
      doctor_id: schedule.doctorId,
      time_zone: schedule.timeZone,
      slot_minutes: schedule.slotMinutes,
      buffer_minutes: schedule.bufferMinutes,
      updated_at: schedule.updatedAt,
    })
    .onConflict((conflict) => conflict.column('doctor_id').doNothing())
    .returning(SCHEDULE_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toScheduleHeader(row);
}

/** Writes the new settings as the next version of a locked schedule. */
export async function updateSchedule(
  trx: Db,
  schedule: Omit<ScheduleHeader, 'version'>,
): Promise<ScheduleHeader> {
  const row = await trx
    .updateTable('telemedicine.schedules')
    .set((eb) => ({
      time_zone: schedule.timeZone,
      slot_minutes: schedule.slotMinutes,
      buffer_minutes: schedule.bufferMinutes,
      updated_at: schedule.updatedAt,
      version: eb('version', '+', 1),
    }))
    .where('doctor_id', '=', schedule.doctorId)
    .returning(SCHEDULE_COLUMNS)
    .executeTakeFirstOrThrow();
  return toScheduleHeader(row);
}

export async function replaceScheduleRules(
  trx: Db,
  doctorId: string,
  rules: (ScheduleRule & { id: string })[],
): Promise<void> {
  await trx.deleteFrom('telemedicine.schedule_rules').where('doctor_id', '=', doctorId).execute();
  if (rules.length === 0) return;
  await trx
    .insertInto('telemedicine.schedule_rules')
    .values(
      rules.map((rule) => ({
        id: rule.id,
        doctor_id: doctorId,
        weekday: rule.weekday,
        start_local: rule.start,
        end_local: rule.end,
      })),
    )
    .execute();
}

/** Overrides of local dates in [fromDate, toDate] (inclusive), by date. */
export async function findOverrides(
  db: Db,
  doctorId: string,
  fromDate: string,
  toDate: string,
): Promise<DateOverride[]> {
  const rows = await db
    .selectFrom('telemedicine.schedule_overrides')
    .select([
      sql<string>`local_date::text`.as('local_date'),
      'is_available',
      sql<string | null>`start_local::text`.as('start_local'),
      sql<string | null>`end_local::text`.as('end_local'),
    ])
    .where('doctor_id', '=', doctorId)
    .where('local_date', '>=', fromDate)
    .where('local_date', '<=', toDate)
    .orderBy('local_date')
    .orderBy('start_local')
    .execute();
  const byDate = new Map<string, DateOverride>();
  for (const row of rows) {
    let override = byDate.get(row.local_date);
    if (override === undefined) {
      override = { localDate: row.local_date, isAvailable: row.is_available, windows: [] };
      byDate.set(row.local_date, override);
    }
    // A date is either a day off (one row) or available with windows; a mix reads as a day off.
    override.isAvailable &&= row.is_available;
    if (row.start_local !== null && row.end_local !== null) {
      override.windows.push({ start: toTimeOfDay(row.start_local), end: toTimeOfDay(row.end_local) });
    }
  }
  return [...byDate.values()];
}

/** One stored override row: a window of an available date, or the single row of a day off. */
export type OverrideRow = { id: string; isAvailable: boolean; window: ScheduleWindow | null };

/** Replaces every override row of one local date. */
export async function replaceOverride(
  trx: Db,
  doctorId: string,
  localDate: string,
  rows: OverrideRow[],
): Promise<void> {
  await deleteOverride(trx, doctorId, localDate);
  if (rows.length === 0) return;
  await trx
    .insertInto('telemedicine.schedule_overrides')
    .values(
      rows.map((row) => ({
        id: row.id,
        doctor_id: doctorId,
        local_date: localDate,
        is_available: row.isAvailable,
        start_local: row.window?.start ?? null,
        end_local: row.window?.end ?? null,
      })),
    )
    .execute();
}

/** The number of rows removed (0: there was no override on that date). */
export async function deleteOverride(trx: Db, doctorId: string, localDate: string): Promise<number> {
  const result = await trx
    .deleteFrom('telemedicine.schedule_overrides')
    .where('doctor_id', '=', doctorId)
    .where('local_date', '=', localDate)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

type TimeOffRow = {
  id: string;
  doctor_id: string;
  starts_at: Date;
  ends_at: Date;
  reason: string;
  created_at: Date;
};

const TIME_OFF_COLUMNS = ['id', 'doctor_id', 'starts_at', 'ends_at', 'reason', 'created_at'] as const;

function toTimeOff(row: TimeOffRow): TimeOff {
  return {
    id: row.id,
    doctorId: row.doctor_id,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    reason: row.reason,
    createdAt: row.created_at,
  };
}

export async function insertTimeOff(trx: Db, timeOff: TimeOff): Promise<TimeOff> {
  const row = await trx
    .insertInto('telemedicine.time_off')
    .values({
      id: timeOff.id,
      doctor_id: timeOff.doctorId,
      starts_at: timeOff.startsAt,
      ends_at: timeOff.endsAt,
      reason: timeOff.reason,
      created_at: timeOff.createdAt,
    })
    .returning(TIME_OFF_COLUMNS)
    .executeTakeFirstOrThrow();
  return toTimeOff(row);
}

/** Time off that intersects [from, to), earliest first. */
export async function findTimeOffBetween(db: Db, doctorId: string, from: Date, to: Date): Promise<TimeOff[]> {
  const rows = await db
    .selectFrom('telemedicine.time_off')
    .select(TIME_OFF_COLUMNS)
    .where('doctor_id', '=', doctorId)
    .where('starts_at', '<', to)
    .where('ends_at', '>', from)
    .orderBy('starts_at')
    .orderBy('id')
    .execute();
  return rows.map(toTimeOff);
}

/** Time off that has not ended by `now`, earliest first. */
export async function findTimeOffEndingAfter(db: Db, doctorId: string, now: Date): Promise<TimeOff[]> {
  const rows = await db
    .selectFrom('telemedicine.time_off')
    .select(TIME_OFF_COLUMNS)
    .where('doctor_id', '=', doctorId)
    .where('ends_at', '>', now)
    .orderBy('starts_at')
    .orderBy('id')
    .limit(MAX_LISTED_TIME_OFF)
    .execute();
  return rows.map(toTimeOff);
}

const MAX_LISTED_TIME_OFF = 500;

/** The time off row if it is this doctor's; undefined when missing or another doctor's. */
export async function deleteTimeOff(trx: Db, doctorId: string, id: string): Promise<TimeOff | undefined> {
  const row = await trx
    .deleteFrom('telemedicine.time_off')
    .where('id', '=', id)
    .where('doctor_id', '=', doctorId)
    .returning(TIME_OFF_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toTimeOff(row);
}

/**
 * A page of verified doctors that have a schedule, by id (keyset): whose
 * slot windows the hourly job rolls forward.
 */
export async function findScheduledVerifiedDoctorIds(
  db: Db,
  afterId: string | undefined,
  limit: number,
): Promise<string[]> {
  let query = db
    .selectFrom('telemedicine.schedules as s')
    .innerJoin('telemedicine.doctors as d', 'd.id', 's.doctor_id')
    .select('s.doctor_id')
    .where('d.status', '=', 'VERIFIED');
  if (afterId !== undefined) query = query.where('s.doctor_id', '>', afterId);
  const rows = await query.orderBy('s.doctor_id').limit(limit).execute();
  return rows.map((row) => row.doctor_id);
}
