import { Type } from 'typebox';

// No control characters: the text reaches Postgres (which refuses NUL) and the logs.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217, upper case' });
const feeBound = (description: string) => Type.Integer({ minimum: 0, maximum: 10_000_000, description });

export const SearchDoctorsQuery = Type.Object(
  {
    q: Type.Optional(
      Type.String({
        maxLength: 200,
        pattern: PRINTABLE,
        description:
          'Free text over name and specialties (web search syntax: "quoted phrase", -excluded, or); ' +
          'names also match with typos. Empty means no text filter.',
      }),
    ),
    specialty: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: PRINTABLE,
        description: 'One of the doctor’s specialties, exactly (case-insensitive)',
      }),
    ),
    language: Type.Optional(
      Type.String({ pattern: '^[A-Za-z]{2}$', description: 'ISO 639-1 code the doctor speaks, e.g. de' }),
    ),
    fee_min: Type.Optional(feeBound('Lowest fee, inclusive, in minor units')),
    fee_max: Type.Optional(feeBound('Highest fee, inclusive, in minor units')),
    currency: Type.Optional(Currency),
    min_rating: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 5,
        description: 'Average review rating at least this; doctors without reviews are left out',
      }),
    ),
    available_on: Type.Optional(
      Type.String({
        format: 'date',
        description: 'Has an open slot starting on this local date (in time_zone), from now on',
      }),
    ),
    time_zone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'IANA zone of available_on (default UTC)',
      }),
    ),
    available_within_days: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 60,
        description: 'Has an open slot starting between now and now + this many days',
      }),
    ),
    sort: Type.Optional(
      Type.Union(
        [
          Type.Literal('relevance'),
          Type.Literal('fee'),
          Type.Literal('rating'),
          Type.Literal('next_available'),
        ],
        {
          description:
            'relevance (best match first; default with q, needs q), fee (lowest first), rating (highest ' +
            'first, unrated last), next_available (soonest open slot first, none last; default without q)',
        },
      ),
    ),
    limit: Type.Integer({ minimum: 1, maximum: 50, default: 20 }),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 300,
        description: 'next_cursor of the previous page; valid only with the same filters and sort',
      }),
    ),
  },
  { additionalProperties: false },
);

export const DoctorSearchItemResponse = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    full_name: Type.String(),
    specialties: Type.Array(Type.String()),
    languages: Type.Array(Type.String()),
    years_of_experience: Type.Integer({ minimum: 0 }),
    fee_minor: Type.Integer({ minimum: 0, description: 'Consultation fee in minor units of currency' }),
    currency: Currency,
    rating: Type.Union([Type.Number({ minimum: 0, maximum: 5 }), Type.Null()], {
      description: 'Average review rating; null before the first review',
    }),
    rating_count: Type.Integer({ minimum: 0 }),
    next_available_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'Start of the earliest open slot; null when none is offered',
    }),
    bio_excerpt: Type.String({ maxLength: 200, description: 'The start of the bio, at most 200 characters' }),
  },
  { additionalProperties: false },
);

export const DoctorSearchPageResponse = Type.Object(
  {
    items: Type.Array(DoctorSearchItemResponse),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as cursor (with the same filters and sort) for the next page; null on the last page',
    }),
  },
  { additionalProperties: false },
);
