import { Type } from 'typebox';
import { DATA_EXPORT_TTL_DAYS } from './compliance.ts';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const Cursor = Type.Optional(
  Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }),
);
const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Pass as cursor for the next page; null on the last page',
});

export const AccessLogQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive' })),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    cursor: Cursor,
  },
  { additionalProperties: false },
);

export const AccessLogEntryResponse = Type.Object(
  {
    occurred_at: Timestamp,
    actor_id: NullableString,
    actor_type: Type.Union([
      Type.Literal('user'),
      Type.Literal('api_key'),
      Type.Literal('system'),
      Type.Literal('anonymous'),
    ]),
    actor_roles: Type.Array(Type.String(), { description: 'The actor’s roles at the time' }),
    action: Type.String({ description: 'e.g. telemedicine.consultation_viewed' }),
    // Open strings: an unknown value from a newer writer must not fail the whole page.
    resource: Type.Union([Type.String(), Type.Null()], {
      description:
        'What was touched: patient_profile, consultation, clinical_notes, prescription, data_export',
    }),
    resource_id: NullableString,
    purpose: Type.Union([Type.String(), Type.Null()], {
      description: 'Why: treatment, patient_access, support, administration, billing, data_export',
    }),
    operation: Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Null()]),
  },
  { additionalProperties: false, description: 'One read or write of your record' },
);

export const AccessLogPageResponse = Type.Object(
  { items: Type.Array(AccessLogEntryResponse), next_cursor: NextCursor },
  { additionalProperties: false },
);

export const DataExportIdParams = Type.Object({ exportId: Uuid }, { additionalProperties: false });

export const DataExportResponse = Type.Object(
  {
    id: Uuid,
    status: Type.Union(
      [Type.Literal('PENDING'), Type.Literal('READY'), Type.Literal('FAILED'), Type.Literal('EXPIRED')],
      { description: `READY archives may be downloaded for ${DATA_EXPORT_TTL_DAYS} days, then EXPIRED` },
    ),
    requested_at: Timestamp,
    completed_at: NullableTimestamp,
    expires_at: NullableTimestamp,
    archive_url: Type.Union([Type.String(), Type.Null()], {
      description: 'Where to download the archive while READY; null otherwise',
    }),
  },
  { additionalProperties: false, description: 'A data export and where it stands' },
);

/** The archive is documented, not serialised: the route sends the stored JSON as is. */
export const DataExportArchiveResponse = Type.Object(
  {
    format: Type.Literal('keel.telemedicine.data_export.v1'),
    export_id: Uuid,
    patient_id: Uuid,
    generated_at: Timestamp,
    profile: Type.Object({}, { additionalProperties: true }),
    consultations: Type.Array(Type.Object({}, { additionalProperties: true })),
    prescriptions: Type.Array(Type.Object({}, { additionalProperties: true })),
    payments: Type.Array(Type.Object({}, { additionalProperties: true })),
    reviews: Type.Array(Type.Object({}, { additionalProperties: true })),
    consents: Type.Array(Type.Object({}, { additionalProperties: true })),
    access_log: Type.Array(AccessLogEntryResponse),
  },
  {
    additionalProperties: true,
    description:
      'Everything held about you: profile, consultations with their reasons and notes, prescriptions ' +
      '(content and signature), payments and refunds, reviews, consents and the access log',
  },
);

export const ConsentsQuery = Type.Object(
  { limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }), cursor: Cursor },
  { additionalProperties: false },
);

export const ConsentResponse = Type.Object(
  {
    id: Uuid,
    consultation_id: Uuid,
    kind: Type.Union([Type.Literal('treatment'), Type.Literal('telehealth')]),
    version: Type.String({ description: 'The version of the consent text agreed to' }),
    given_at: Timestamp,
  },
  { additionalProperties: false },
);

export const ConsentPageResponse = Type.Object(
  { items: Type.Array(ConsentResponse), next_cursor: NextCursor },
  { additionalProperties: false },
);
