import { CONSULTATION_STATUSES, ConsultationStatusSchema } from '@keel/contracts';
import { Type } from 'typebox';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);

export const ConsultationIdParams = Type.Object({ consultationId: Uuid }, { additionalProperties: false });

export const ConsultationResponse = Type.Object(
  {
    id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    slot_id: Uuid,
    status: ConsultationStatusSchema,
    starts_at: Timestamp,
    ends_at: Timestamp,
    hold_expires_at: Type.Union([Timestamp, Type.Null()], {
      description: 'While PENDING_PAYMENT: when the slot is released if the payment has not succeeded',
    }),
    fee_minor: Type.Integer({ minimum: 0, description: 'In minor units (cents) of currency' }),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    specialty: Type.String(),
    reason: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description:
          'Clinical: the patient’s reason for the visit. Only in GET /consultations/{id}, only to the two ' +
          'participants, and every such read is recorded in the patient’s access log',
      }),
    ),
    consent_version: Type.String(),
    consented_at: Timestamp,
    rescheduled_from_slot_id: Type.Union([Uuid, Type.Null()]),
    started_at: NullableTimestamp,
    completed_at: NullableTimestamp,
    cancelled_at: NullableTimestamp,
    cancelled_by: Type.Union([
      Type.Literal('patient'),
      Type.Literal('doctor'),
      Type.Literal('admin'),
      Type.Literal('system'),
      Type.Null(),
    ]),
    cancel_reason: NullableString,
    expired_reason: Type.Union([Type.Literal('payment_failed'), Type.Literal('hold_expired'), Type.Null()]),
    version: Type.Integer({ minimum: 1 }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);

export const ListConsultationsQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Array(ConsultationStatusSchema, {
        minItems: 1,
        maxItems: CONSULTATION_STATUSES.length,
        description: 'Repeat to match any of several: ?status=SCHEDULED&status=PENDING_PAYMENT',
      }),
    ),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Starts at or after (inclusive)' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Starts before (exclusive)' })),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

export const ConsultationPageResponse = Type.Object(
  {
    items: Type.Array(ConsultationResponse, {
      description: 'Latest start first; never the clinical `reason`',
    }),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
