import { Type } from 'typebox';

// No control characters: reasons show up in consoles and logs.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const TimeOfDay = Type.String({
  pattern: '^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$',
  description: "Local wall time 'HH:MM'; '24:00' ends a window at midnight",
});
const LocalDate = Type.String({
  pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$',
  description: 'A calendar date in the doctor’s zone, YYYY-MM-DD',
});
const TimeZone = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'An IANA time zone, e.g. Europe/Berlin',
});

const Window = Type.Object(
  { start: TimeOfDay, end: TimeOfDay },
  { additionalProperties: false, description: 'start < end; at least one slot long' },
);

const Rule = Type.Object(
  {
    weekday: Type.Integer({ minimum: 1, maximum: 7, description: 'ISO weekday: 1 = Monday … 7 = Sunday' }),
    start: TimeOfDay,
    end: TimeOfDay,
  },
  { additionalProperties: false },
);

export const DoctorIdParams = Type.Object({ doctorId: Uuid }, { additionalProperties: false });

export const OverrideDateParams = Type.Object({ date: LocalDate }, { additionalProperties: false });

export const TimeOffIdParams = Type.Object({ timeOffId: Uuid }, { additionalProperties: false });

export const ScheduleIfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ description: 'The ETag of the schedule version being replaced, e.g. "3"' }),
  ),
});

export const ScheduleBody = Type.Object(
  {
    time_zone: TimeZone,
    slot_minutes: Type.Integer({ minimum: 5, maximum: 240 }),
    buffer_minutes: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 120, description: 'Gap between consecutive slots; default 0' }),
    ),
    rules: Type.Array(Rule, {
      maxItems: 100,
      description: 'Weekly windows; windows of one weekday must not overlap',
    }),
  },
  { additionalProperties: false },
);

export const ScheduleResponse = Type.Object(
  {
    doctor_id: Uuid,
    time_zone: Type.String(),
    slot_minutes: Type.Integer(),
    buffer_minutes: Type.Integer(),
    rules: Type.Array(Rule),
    version: Type.Integer({ minimum: 1 }),
    updated_at: Timestamp,
  },
  { additionalProperties: false, description: 'A weekly schedule; its version is also its ETag' },
);

export const OverrideBody = Type.Object(
  {
    is_available: Type.Boolean({ description: 'false: a day off' }),
    windows: Type.Optional(
      Type.Array(Window, {
        maxItems: 24,
        description: 'Required (at least one) when available; must be absent or empty for a day off',
      }),
    ),
  },
  { additionalProperties: false },
);

export const OverrideResponse = Type.Object(
  { date: Type.String({ format: 'date' }), is_available: Type.Boolean(), windows: Type.Array(Window) },
  { additionalProperties: false },
);

export const OverridesQuery = Type.Object(
  {
    from: Type.Optional({ ...LocalDate, description: 'Inclusive; default today in the schedule’s zone' }),
    to: Type.Optional({
      ...LocalDate,
      description: 'Inclusive; default from + 90 days; at most 366 days after from',
    }),
  },
  { additionalProperties: false },
);

export const OverrideListResponse = Type.Object(
  { items: Type.Array(OverrideResponse) },
  { additionalProperties: false },
);

export const TimeOffBody = Type.Object(
  {
    starts_at: Timestamp,
    ends_at: Timestamp,
    reason: Type.Optional(Type.String({ maxLength: 500, pattern: PRINTABLE })),
  },
  { additionalProperties: false },
);

export const TimeOffResponse = Type.Object(
  { id: Uuid, starts_at: Timestamp, ends_at: Timestamp, reason: Type.String(), created_at: Timestamp },
  { additionalProperties: false },
);

export const TimeOffListResponse = Type.Object(
  { items: Type.Array(TimeOffResponse) },
  { additionalProperties: false },
);

export const SlotsQuery = Type.Object(
  {
    from: Type.Optional(
      Type.String({
        maxLength: 40,
        description:
          'Inclusive: an instant (ISO 8601 with offset) or a date (its start in time_zone); default now',
      }),
    ),
    to: Type.Optional(
      Type.String({
        maxLength: 40,
        description:
          'Exclusive instant, or a date (up to the end of that day in time_zone); default from + 7 days; at most 31 days after from',
      }),
    ),
    time_zone: Type.Optional({
      ...TimeZone,
      description: 'Zone of local_start/local_end and of dates; default UTC',
    }),
  },
  { additionalProperties: false },
);

export const SlotResponse = Type.Object(
  {
    id: Uuid,
    starts_at: Timestamp,
    ends_at: Timestamp,
    local_start: Type.String({ description: 'starts_at in time_zone, e.g. 2026-03-30T09:00:00+02:00' }),
    local_end: Type.String(),
  },
  { additionalProperties: false },
);

export const SlotListResponse = Type.Object(
  {
    doctor_id: Uuid,
    time_zone: Type.String(),
    from: Timestamp,
    to: Timestamp,
    items: Type.Array(SlotResponse),
  },
  { additionalProperties: false },
);
