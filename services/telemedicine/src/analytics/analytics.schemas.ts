import { Type } from 'typebox';
import { ANALYTICS_DEFAULT_RANGE_DAYS, ANALYTICS_MAX_RANGE_DAYS, TOP_DOCTORS_LIMIT } from './analytics.ts';

const Day = Type.String({ format: 'date' });
const Rate = Type.Union([Type.Number({ minimum: 0 }), Type.Null()]);
const Money = Type.Record(Type.String({ pattern: '^[A-Z]{3}$' }), Type.Integer(), {
  description: 'Minor units per ISO 4217 currency: amounts of different currencies are never added',
});

export const AnalyticsQuery = Type.Object(
  {
    from: Type.Optional(
      Type.String({
        format: 'date',
        description: `First UTC day, included; default ${ANALYTICS_DEFAULT_RANGE_DAYS - 1} days before to`,
      }),
    ),
    to: Type.Optional(
      Type.String({
        format: 'date',
        description: `Last UTC day, included; default today; at most ${ANALYTICS_MAX_RANGE_DAYS} days in all`,
      }),
    ),
  },
  { additionalProperties: false },
);

const figures = {
  booked: Type.Integer({ description: 'Consultations booked (by the day they take place)' }),
  confirmed: Type.Integer({ description: 'Bookings paid' }),
  completed: Type.Integer(),
  cancelled: Type.Integer(),
  no_shows: Type.Integer(),
  expired: Type.Integer({ description: 'Bookings whose payment failed or hold ran out' }),
  slots_offered: Type.Integer(),
  slots_booked: Type.Integer({ description: 'Slots taken by a live booking' }),
  revenue_minor: Money,
  refunds_minor: Money,
  cancellation_rate: { ...Rate, description: 'cancelled / booked; null when nothing was booked' },
  no_show_rate: {
    ...Rate,
    description: 'no_shows / (completed + no_shows); null when neither happened',
  },
  slot_utilisation: { ...Rate, description: 'slots_booked / slots_offered; null when none was offered' },
};

const Figures = Type.Object(figures, { additionalProperties: false });
const DoctorFigures = Type.Object(
  {
    doctor_id: Type.String({ format: 'uuid' }),
    full_name: Type.Union([Type.String(), Type.Null()]),
    ...figures,
  },
  { additionalProperties: false },
);

export const AnalyticsResponse = Type.Object(
  {
    from: Day,
    to: Day,
    totals: Figures,
    per_day: Type.Array(Type.Object({ day: Day, ...figures }, { additionalProperties: false }), {
      description: 'Days with activity, oldest first',
    }),
    by_specialty: Type.Array(
      Type.Object({ specialty: Type.String(), ...figures }, { additionalProperties: false }),
      {
        description: 'By the specialty booked under; slots offered count under the doctor’s first specialty',
      },
    ),
    by_doctor: Type.Array(DoctorFigures, { description: 'Doctors with activity, by name' }),
    top_doctors: Type.Array(DoctorFigures, {
      description: `The ${TOP_DOCTORS_LIMIT} doctors with the most completed consultations, then revenue`,
    }),
  },
  { additionalProperties: false },
);
