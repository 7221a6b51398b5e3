import { Type } from 'typebox';

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const MinorUnits = Type.Integer({ minimum: 0, description: 'Integer minor units of `currency`' });

export const PaymentIdParams = Type.Object({ paymentId: Uuid }, { additionalProperties: false });
export const ConsultationIdParams = Type.Object({ consultationId: Uuid }, { additionalProperties: false });

export const PaymentRefundResponse = Type.Object(
  {
    id: Uuid,
    amount_minor: MinorUnits,
    reason: Type.Union([
      Type.Literal('patient_cancelled'),
      Type.Literal('doctor_cancelled'),
      Type.Literal('admin'),
      Type.Literal('no_show_policy'),
      Type.Literal('late_payment'),
    ]),
    status: Type.Union([Type.Literal('PENDING'), Type.Literal('SUCCEEDED'), Type.Literal('FAILED')]),
  },
  { additionalProperties: false },
);

export const PaymentResponse = Type.Object(
  {
    id: Uuid,
    consultation_id: Uuid,
    status: Type.Union([
      Type.Literal('CREATING'),
      Type.Literal('REQUIRES_PAYMENT'),
      Type.Literal('SUCCEEDED'),
      Type.Literal('FAILED'),
      Type.Literal('CANCELLED'),
      Type.Literal('REFUNDED'),
      Type.Literal('PARTIALLY_REFUNDED'),
    ]),
    amount_minor: MinorUnits,
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217' }),
    refunded_minor: MinorUnits,
    client_secret: Type.Union([Type.String(), Type.Null()], {
      description:
        "Confirms the payment with the gateway from the patient's client. Only the paying patient " +
        'sees it, and only while the status is REQUIRES_PAYMENT; null otherwise',
    }),
    created_at: Timestamp,
    updated_at: Timestamp,
    refunds: Type.Array(PaymentRefundResponse, { description: 'Oldest first' }),
  },
  { additionalProperties: false },
);

export const WebhookReceiptResponse = Type.Object(
  {
    received: Type.Literal(true),
    duplicate: Type.Boolean({ description: 'The event was applied before; nothing changed' }),
  },
  { additionalProperties: false },
);
