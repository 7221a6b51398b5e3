import { Type } from 'typebox';

// No control characters: names and allergies are shown to doctors and printed.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const E164 = Type.String({
  pattern: '^\\+[1-9][0-9]{1,14}$',
  description: 'E.164, e.g. +4930123456',
});
const Sex = Type.Union([
  Type.Literal('female'),
  Type.Literal('male'),
  Type.Literal('intersex'),
  Type.Literal('unspecified'),
]);
const EmergencyContact = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE }),
    phone: E164,
    relationship: Type.String({ minLength: 1, maxLength: 100, pattern: PRINTABLE }),
  },
  { additionalProperties: false },
);

export const PutPatientProfileBody = Type.Object(
  {
    full_name: Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE }),
    date_of_birth: Type.String({
      format: 'date',
      description: 'YYYY-MM-DD; not in the future, not before 1900',
    }),
    sex: Sex,
    phone: Type.Optional(E164),
    emergency_contact: Type.Optional(EmergencyContact),
    allergies: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE }), { maxItems: 50 }),
    ),
  },
  { additionalProperties: false },
);

export const PatientIdParams = Type.Object({ patientId: Uuid }, { additionalProperties: false });

export const PatientIfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ description: 'The ETag of the profile version being replaced, e.g. "3"' }),
  ),
});

export const PatientProfileResponse = Type.Object(
  {
    id: Uuid,
    full_name: Type.String(),
    date_of_birth: Type.String({ format: 'date' }),
    sex: Sex,
    phone: Type.Union([Type.String(), Type.Null()]),
    emergency_contact: Type.Union([EmergencyContact, Type.Null()]),
    allergies: Type.Array(Type.String()),
    version: Type.Integer({ minimum: 1 }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false, description: 'A patient profile; its version is also its ETag' },
);
