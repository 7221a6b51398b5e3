import { Type } from 'typebox';
import { ConsultationResponse } from '../consultations/consultation.schemas.ts';

// No control characters in one-line text; the reason may span lines.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';
const PRINTABLE_MULTILINE = '^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f]*$';

const Uuid = Type.String({ format: 'uuid' });

export const BookConsultationBody = Type.Object(
  {
    slot_id: Uuid,
    reason: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2000,
        pattern: PRINTABLE_MULTILINE,
        description: 'Clinical: why the patient books; stored encrypted, seen by the two participants only',
      }),
    ),
    specialty: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: PRINTABLE,
        description: 'One of the doctor’s specialties; their first by default',
      }),
    ),
    // Optional in the schema so that a missing consent is 422 `telemedicine.consent_required`, not a 400.
    consent: Type.Optional(
      Type.Object(
        {
          treatment: Type.Optional(Type.Boolean({ description: 'Must be true' })),
          telehealth: Type.Optional(Type.Boolean({ description: 'Must be true' })),
          version: Type.String({
            minLength: 1,
            maxLength: 32,
            pattern: PRINTABLE,
            description: 'The version of the consent text the patient agreed to',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const BookingPaymentResponse = Type.Object(
  {
    id: Uuid,
    status: Type.Union([
      Type.Literal('CREATING'),
      Type.Literal('REQUIRES_PAYMENT'),
      Type.Literal('SUCCEEDED'),
      Type.Literal('FAILED'),
      Type.Literal('CANCELLED'),
      Type.Literal('REFUNDED'),
      Type.Literal('PARTIALLY_REFUNDED'),
    ]),
    client_secret: Type.Union([Type.String(), Type.Null()], {
      description:
        'Confirm the payment with the gateway with it. Null while the intent is being created ' +
        '(status CREATING): poll GET /telemedicine/consultations/{id}/payment',
    }),
    amount_minor: Type.Integer({ minimum: 0 }),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
  },
  { additionalProperties: false },
);

export const BookingResponse = Type.Object(
  {
    consultation: ConsultationResponse,
    payment: BookingPaymentResponse,
    hold_expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'The slot is released if the payment has not succeeded by then',
    }),
  },
  { additionalProperties: false },
);

export const CancelConsultationBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, pattern: PRINTABLE })) },
  { additionalProperties: false },
);

export const CancelConsultationResponse = Type.Object(
  {
    consultation: ConsultationResponse,
    refund_minor: Type.Integer({
      minimum: 0,
      description: 'What the cancellation refunds (issued in the background); 0 when nothing was paid',
    }),
  },
  { additionalProperties: false },
);

export const RescheduleConsultationBody = Type.Object({ slot_id: Uuid }, { additionalProperties: false });
