import { sql } from '@keel/platform/db';
import type { AnalyticsDailyTable, TelemedicineDb } from '../database.ts';
import type { AnalyticsRange, RollupGroupRow } from './analytics.ts';
import type { DailyDelta, RollupKey } from './rollup-change.ts';

// All SQL of the analytics feature: the rollup's upserts (one statement per
// event) and the report's one grouped read. Nothing here reads the
// consultation or payment tables.

const COUNTER_COLUMNS = {
  booked: 'booked',
  confirmed: 'confirmed',
  completed: 'completed',
  cancelled: 'cancelled',
  noShows: 'no_shows',
  expired: 'expired',
  revenueMinor: 'revenue_minor',
  refundsMinor: 'refunds_minor',
  slotsOffered: 'slots_offered',
  slotsBooked: 'slots_booked',
} as const satisfies Record<keyof Required<DailyDelta>, keyof AnalyticsDailyTable>;

type CounterColumn = (typeof COUNTER_COLUMNS)[keyof typeof COUNTER_COLUMNS];

const COUNTERS = Object.entries(COUNTER_COLUMNS) as [keyof DailyDelta, CounterColumn][];

function keyText(key: RollupKey): string {
  return `${key.day}|${key.doctorId}|${key.specialty}|${key.currency}`;
}

/**
 * Adds each delta to its (day, doctor, specialty, currency) row in one
 * upsert. Rows are merged by key first (one statement may not touch a row
 * twice) and written in key order, so two writers lock shared rows in the
 * same order. Concurrent writers of one row serialise on it and both land.
 */
export async function addToDailyRollup(
  db: TelemedicineDb,
  changes: readonly { key: RollupKey; delta: DailyDelta }[],
): Promise<void> {
  const merged = new Map<string, { key: RollupKey; counters: Record<CounterColumn, number> }>();
  for (const { key, delta } of changes) {
    const text = keyText(key);
    let row = merged.get(text);
    if (row === undefined) {
      row = {
        key,
        counters: Object.fromEntries(COUNTERS.map(([, column]) => [column, 0])) as Record<
          CounterColumn,
          number
        >,
      };
      merged.set(text, row);
    }
    for (const [field, column] of COUNTERS) row.counters[column] += delta[field] ?? 0;
  }
  if (merged.size === 0) return;
  const values = [...merged.entries()]
    .sort(([left], [right]) => left.localeCompare(right))
    .map(([, row]) => ({
      day: row.key.day,
      doctor_id: row.key.doctorId,
      specialty: row.key.specialty,
      currency: row.key.currency,
      ...row.counters,
    }));
  await db
    .insertInto('telemedicine.analytics_daily')
    .values(values)
    .onConflict((conflict) =>
      conflict.columns(['day', 'doctor_id', 'specialty', 'currency']).doUpdateSet(() => {
        const sums = {} as Record<CounterColumn, ReturnType<typeof sql<number>>>;
        for (const [, column] of COUNTERS) {
          sums[column] =
            sql<number>`${sql.ref(`analytics_daily.${column}`)} + ${sql.ref(`excluded.${column}`)}`;
        }
        return sums;
      }),
    )
    .execute();
}

/**
 * Adds slots offered per day to the doctor's rows under their first
 * specialty and currency, read from the doctor's profile in the same
 * statement. An unknown doctor adds nothing. `offeredByDay` has one entry
 * per day (see `rollupChangeOf`).
 */
export async function addSlotsOffered(
  db: TelemedicineDb,
  doctorId: string,
  offeredByDay: readonly { day: string; count: number }[],
): Promise<void> {
  if (offeredByDay.length === 0) return;
  const days = offeredByDay.map((entry) => entry.day);
  const counts = offeredByDay.map((entry) => entry.count);
  await sql`
    insert into telemedicine.analytics_daily (day, doctor_id, specialty, currency, slots_offered)
    select offered.day, doctor.id, doctor.specialties[1], doctor.currency, offered.count
    from telemedicine.doctors doctor
    cross join unnest(${days}::date[], ${counts}::integer[]) as offered(day, count)
    where doctor.id = ${doctorId}
    order by offered.day
    on conflict (day, doctor_id, specialty, currency) do update
    set slots_offered = analytics_daily.slots_offered + excluded.slots_offered
  `.execute(db);
}

type GroupRow = {
  dimension: RollupGroupRow['dimension'];
  day: string | null;
  specialty: string | null;
  doctor_id: string | null;
  full_name: string | null;
  currency: string;
  booked: string;
  confirmed: string;
  completed: string;
  cancelled: string;
  no_shows: string;
  expired: string;
  revenue_minor: string;
  refunds_minor: string;
  slots_offered: string;
  slots_booked: string;
};

function keyOf(row: GroupRow): string {
  const key =
    row.dimension === 'day' ? row.day : row.dimension === 'specialty' ? row.specialty : row.doctor_id;
  // Grouping columns are never null in their own grouping set (all are NOT NULL columns).
  return key ?? '';
}

/**
 * The rollup over the range's days summed three ways in one scan (grouping
 * sets): per day, per specialty and per doctor (with the doctor's name),
 * each per currency.
 */
export async function findRollupGroups(db: TelemedicineDb, range: AnalyticsRange): Promise<RollupGroupRow[]> {
  const sum = (column: CounterColumn) => sql.raw(`sum(rollup.${column})::bigint as ${column}`);
  const result = await sql<GroupRow>`
    select
      case
        when grouping(rollup.day) = 0 then 'day'
        when grouping(rollup.specialty) = 0 then 'specialty'
        else 'doctor'
      end as dimension,
      rollup.day::text as day,
      rollup.specialty,
      rollup.doctor_id,
      min(doctor.full_name) as full_name,
      rollup.currency,
      ${sql.join(COUNTERS.map(([, column]) => sum(column)))}
    from telemedicine.analytics_daily rollup
    left join telemedicine.doctors doctor on doctor.id = rollup.doctor_id
    where rollup.day >= ${range.from}::date and rollup.day <= ${range.to}::date
    group by grouping sets (
      (rollup.day, rollup.currency),
      (rollup.specialty, rollup.currency),
      (rollup.doctor_id, rollup.currency)
    )
  `.execute(db);
  return result.rows.map((row) => ({
    dimension: row.dimension,
    key: keyOf(row),
    fullName: row.dimension === 'doctor' ? row.full_name : null,
    currency: row.currency.trim(),
    booked: Number(row.booked),
    confirmed: Number(row.confirmed),
    completed: Number(row.completed),
    cancelled: Number(row.cancelled),
    noShows: Number(row.no_shows),
    expired: Number(row.expired),
    revenueMinor: Number(row.revenue_minor),
    refundsMinor: Number(row.refunds_minor),
    slotsOffered: Number(row.slots_offered),
    slotsBooked: Number(row.slots_booked),
  }));
}
