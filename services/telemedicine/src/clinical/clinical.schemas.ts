import { ConsultationStatusSchema } from '@keel/contracts';
import { Type } from 'typebox';

// Free text written by a clinician: line breaks and tabs are kept, other
// control characters are refused (they end up in PDFs, exports and logs).
export const CLINICAL_TEXT_PATTERN = '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const ConsultationIdParams = Type.Object({ consultationId: Uuid }, { additionalProperties: false });

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ description: 'The ETag of the consultation version being changed, e.g. "3"' }),
  ),
});

export const ConsultationLogisticsResponse = Type.Object(
  {
    id: Uuid,
    status: ConsultationStatusSchema,
    version: Type.Integer({ minimum: 1 }),
    started_at: NullableTimestamp,
    completed_at: NullableTimestamp,
  },
  { additionalProperties: false, description: 'The consultation after the change; its version is its ETag' },
);

export const WriteNotesBody = Type.Object(
  {
    notes: Type.String({
      maxLength: 20_000,
      pattern: CLINICAL_TEXT_PATTERN,
      description: 'The whole write-up; replaces what was there',
    }),
  },
  { additionalProperties: false },
);

export const ClinicalNotesResponse = Type.Object(
  {
    consultation_id: Uuid,
    notes: Type.Union([Type.String(), Type.Null()], { description: 'Null until the doctor writes them' }),
    version: Type.Integer({ minimum: 1, description: 'The consultation version; also the ETag' }),
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
