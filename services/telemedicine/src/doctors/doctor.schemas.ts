import { Type } from 'typebox';

// No control characters: profiles are listed publicly and printed.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';
// Bios may span lines; still no other control characters.
const PRINTABLE_MULTILINE = '^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f]*$';

// No upper case, no control characters, no leading or trailing white space.
const LOWER_CASE_TRIMMED = '^(?!\\s)(?!.*\\s$)[^\\p{Lu}\\p{Lt}\\p{Cc}]+$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217, e.g. EUR' });

export const DoctorStatusSchema = Type.Union([
  Type.Literal('PENDING'),
  Type.Literal('VERIFIED'),
  Type.Literal('SUSPENDED'),
]);

export const PutDoctorProfileBody = Type.Object(
  {
    full_name: Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE }),
    specialties: Type.Array(
      // Lower case and trimmed, so that search by specialty matches exactly.
      Type.String({ minLength: 1, maxLength: 100, pattern: LOWER_CASE_TRIMMED }),
      { minItems: 1, maxItems: 10, uniqueItems: true, description: 'Lower case, e.g. cardiology' },
    ),
    languages: Type.Array(Type.String({ pattern: '^[a-z]{2}$' }), {
      minItems: 1,
      maxItems: 20,
      uniqueItems: true,
      description: 'ISO 639-1 codes, e.g. en, de',
    }),
    qualifications: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE }), { maxItems: 20 }),
    ),
    registration_number: Type.String({
      minLength: 3,
      maxLength: 64,
      pattern: '^[A-Za-z0-9][A-Za-z0-9./ -]*$',
      description: 'The licence number with the medical council; unique',
    }),
    years_of_experience: Type.Integer({ minimum: 0, maximum: 80 }),
    fee_minor: Type.Integer({
      minimum: 1,
      maximum: 10_000_000,
      description: 'Consultation fee in minor units of currency',
    }),
    currency: Currency,
    bio: Type.Optional(Type.String({ maxLength: 4000, pattern: PRINTABLE_MULTILINE })),
    time_zone: Type.String({
      minLength: 1,
      maxLength: 64,
      // IANA names only: offsets such as +01:00 are not zones (no daylight saving rules).
      pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$',
      description: 'IANA time zone, e.g. Europe/Berlin',
    }),
  },
  { additionalProperties: false },
);

export const DoctorIdParams = Type.Object({ doctorId: Uuid }, { additionalProperties: false });

export const DoctorIfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ description: 'The ETag of the profile version being changed, e.g. "3"' }),
  ),
});

export const SuspendDoctorBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500, pattern: PRINTABLE }) },
  { additionalProperties: false },
);

export const ListDoctorsQuery = Type.Object(
  {
    status: Type.Optional(DoctorStatusSchema),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const Rating = Type.Union([Type.Number({ minimum: 1, maximum: 5 }), Type.Null()], {
  description: 'Average review rating (two decimals); null before the first review',
});

const PublicFields = {
  id: Uuid,
  full_name: Type.String(),
  specialties: Type.Array(Type.String()),
  languages: Type.Array(Type.String()),
  qualifications: Type.Array(Type.String()),
  years_of_experience: Type.Integer(),
  fee_minor: Type.Integer({ minimum: 1 }),
  currency: Currency,
  bio: Type.String(),
  time_zone: Type.String(),
  rating: Rating,
  rating_count: Type.Integer({ minimum: 0 }),
  next_available_at: NullableTimestamp,
};

/** What anyone may see of a verified doctor. */
export const PublicDoctorResponse = Type.Object(PublicFields, {
  additionalProperties: false,
  description: 'A verified doctor’s public profile',
});

/** The doctor's own view and the admins' one. */
export const DoctorResponse = Type.Object(
  {
    ...PublicFields,
    registration_number: Type.String(),
    status: DoctorStatusSchema,
    verified_at: NullableTimestamp,
    verified_by: Type.Union([Uuid, Type.Null()]),
    version: Type.Integer({ minimum: 1 }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false, description: 'A doctor profile; its version is also its ETag' },
);

export const DoctorPageResponse = Type.Object(
  {
    items: Type.Array(DoctorResponse),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as cursor for the next page; null on the last page',
    }),
  },
  { additionalProperties: false },
);
