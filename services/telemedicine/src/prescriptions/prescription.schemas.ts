import { Type } from 'typebox';

// Clinician-written text: line breaks and tabs are kept, other control
// characters are refused (they end up in the PDF and in exports).
const CLINICAL_TEXT = '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$';
// Item fields are single-line cells of the printed table.
const SINGLE_LINE = '^[^\\u0000-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const Base64Url = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' });

function line(minLength: number, maxLength: number, description: string) {
  return Type.String({ minLength, maxLength, pattern: SINGLE_LINE, description });
}

const Item = Type.Object(
  {
    medicine: line(1, 200, 'Name of the medicine, e.g. Amoxicillin'),
    strength: line(0, 100, 'e.g. 500 mg'),
    dosage: line(1, 200, 'e.g. 1 capsule'),
    frequency: line(1, 200, 'e.g. three times a day'),
    duration: line(1, 100, 'e.g. 7 days'),
    instructions: line(0, 500, 'e.g. after meals'),
  },
  { additionalProperties: false },
);

export const PrescriptionBody = Type.Object(
  {
    diagnosis: Type.String({ minLength: 1, maxLength: 2000, pattern: CLINICAL_TEXT }),
    advice: Type.String({ maxLength: 4000, pattern: CLINICAL_TEXT }),
    items: Type.Array(Item, { minItems: 1, maxItems: 30 }),
  },
  { additionalProperties: false },
);

export const ConsultationIdParams = Type.Object({ consultationId: Uuid }, { additionalProperties: false });
export const PrescriptionIdParams = Type.Object({ prescriptionId: Uuid }, { additionalProperties: false });

export const PrescriptionResponse = Type.Object(
  {
    id: Uuid,
    consultation_id: Uuid,
    patient_id: Uuid,
    version: Type.Integer({ minimum: 1 }),
    status: Type.Union([Type.Literal('ISSUED'), Type.Literal('SUPERSEDED')]),
    supersedes_id: Type.Union([Uuid, Type.Null()], { description: 'The version this one corrects' }),
    superseded_by: Type.Union([Uuid, Type.Null()], { description: 'The correction that replaced this one' }),
    issued_at: Timestamp,
    superseded_at: Type.Union([Timestamp, Type.Null()]),
    doctor: Type.Object(
      { id: Uuid, full_name: Type.String(), registration_number: Type.String() },
      { additionalProperties: false },
    ),
    diagnosis: Type.String(),
    advice: Type.String(),
    items: Type.Array(Item),
    document_digest: Type.String({ description: 'SHA-256 (hex) of the canonical document' }),
    signature: Type.String({ description: 'Ed25519 over the canonical document, base64url' }),
    kid: Type.String({ description: 'The signing key (see GET /telemedicine/prescriptions/signing-keys)' }),
  },
  {
    additionalProperties: false,
    description:
      'A signed prescription. The signed document is the canonical JSON (keys sorted, no whitespace) ' +
      'of {id, version, supersedes_id, consultation_id, patient_id, issued_at, doctor, diagnosis, advice, items}',
  },
);

export const PrescriptionListResponse = Type.Object(
  { items: Type.Array(PrescriptionResponse, { description: 'Every version, oldest first' }) },
  { additionalProperties: false },
);

export const VerifyPrescriptionBody = Type.Object(
  { prescription_id: Uuid, signature: Base64Url },
  { additionalProperties: false },
);

export const VerifyPrescriptionResponse = Type.Object(
  {
    valid: Type.Boolean(),
    issuer: Type.Optional(
      Type.Object(
        { full_name: Type.String(), registration_number: Type.String() },
        { additionalProperties: false },
      ),
    ),
    issued_at: Type.Optional(Timestamp),
    status: Type.Optional(
      Type.Union([Type.Literal('current'), Type.Literal('superseded')], {
        description: 'superseded: a corrected version replaced it; ask the patient for the current one',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Issuer, date and status only when valid; never anything about the patient or the content',
  },
);

export const SigningKeysResponse = Type.Object(
  {
    keys: Type.Array(
      Type.Object(
        {
          kid: Type.String(),
          kty: Type.Literal('OKP'),
          crv: Type.Literal('Ed25519'),
          x: Type.String({ description: 'The public key, base64url' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: 'A JWK set (RFC 7517, RFC 8037)' },
);
