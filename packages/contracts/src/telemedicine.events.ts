import { type Static, Type } from 'typebox';
import { defineEvent } from './envelope.ts';

// The telemedicine service's public events. No event carries clinical content
// (reasons, notes, prescription items) or patient personal data: events leave
// the database (NATS, webhooks, analytics), clinical data does not. Every
// consultation event names its patient, doctor, specialty and start, so the
// consumers (analytics rollups, reminders, search cache) never read the
// consultation tables to route or scope an event.

const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const MinorUnits = Type.Integer({ minimum: 0 });

export const CONSULTATION_STATUSES = [
  'PENDING_PAYMENT',
  'SCHEDULED',
  'IN_PROGRESS',
  'COMPLETED',
  'CANCELLED',
  'NO_SHOW',
  'EXPIRED',
] as const;
export type ConsultationStatus = (typeof CONSULTATION_STATUSES)[number];
export const ConsultationStatusSchema = Type.Union([
  Type.Literal('PENDING_PAYMENT'),
  Type.Literal('SCHEDULED'),
  Type.Literal('IN_PROGRESS'),
  Type.Literal('COMPLETED'),
  Type.Literal('CANCELLED'),
  Type.Literal('NO_SHOW'),
  Type.Literal('EXPIRED'),
]);

/** What every consultation event says about the consultation it is about. */
const ConsultationFacts = {
  consultationId: Uuid,
  patientId: Uuid,
  doctorId: Uuid,
  slotId: Uuid,
  specialty: Type.String(),
  startsAt: Timestamp,
  endsAt: Timestamp,
  feeMinor: MinorUnits,
  currency: Currency,
};

export const DoctorProfileChangedV1 = defineEvent(
  'telemedicine.doctor_profile_changed.v1',
  Type.Object({
    doctorId: Uuid,
    status: Type.Union([Type.Literal('PENDING'), Type.Literal('VERIFIED'), Type.Literal('SUSPENDED')]),
    /** What changed: `profile`, `verification`, `rating`. */
    change: Type.Union([Type.Literal('profile'), Type.Literal('verification'), Type.Literal('rating')]),
  }),
);
export type DoctorProfileChangedPayload = Static<typeof DoctorProfileChangedV1.payloadSchema>;

/** Slots were added, withdrawn or changed state in bulk (materialisation, schedule edits). */
export const SlotsChangedV1 = defineEvent(
  'telemedicine.slots_changed.v1',
  Type.Object({
    doctorId: Uuid,
    /** Slots newly offered per UTC day (for utilisation); withdrawn ones count negative. */
    offeredByDay: Type.Array(Type.Object({ day: Type.String({ format: 'date' }), count: Type.Integer() })),
  }),
);
export type SlotsChangedPayload = Static<typeof SlotsChangedV1.payloadSchema>;

export const ConsultationBookedV1 = defineEvent(
  'telemedicine.consultation_booked.v1',
  Type.Object({ ...ConsultationFacts, paymentId: Uuid, holdExpiresAt: Timestamp }),
);
export type ConsultationBookedPayload = Static<typeof ConsultationBookedV1.payloadSchema>;

export const ConsultationConfirmedV1 = defineEvent(
  'telemedicine.consultation_confirmed.v1',
  Type.Object({ ...ConsultationFacts, paymentId: Uuid }),
);
export type ConsultationConfirmedPayload = Static<typeof ConsultationConfirmedV1.payloadSchema>;

export const ConsultationExpiredV1 = defineEvent(
  'telemedicine.consultation_expired.v1',
  Type.Object({
    ...ConsultationFacts,
    reason: Type.Union([Type.Literal('payment_failed'), Type.Literal('hold_expired')]),
  }),
);
export type ConsultationExpiredPayload = Static<typeof ConsultationExpiredV1.payloadSchema>;

export const ConsultationCancelledV1 = defineEvent(
  'telemedicine.consultation_cancelled.v1',
  Type.Object({
    ...ConsultationFacts,
    cancelledBy: Type.Union([
      Type.Literal('patient'),
      Type.Literal('doctor'),
      Type.Literal('admin'),
      Type.Literal('system'),
    ]),
    refundMinor: MinorUnits,
  }),
);
export type ConsultationCancelledPayload = Static<typeof ConsultationCancelledV1.payloadSchema>;

export const ConsultationRescheduledV1 = defineEvent(
  'telemedicine.consultation_rescheduled.v1',
  Type.Object({
    ...ConsultationFacts,
    previousSlotId: Uuid,
    previousStartsAt: Timestamp,
  }),
);
export type ConsultationRescheduledPayload = Static<typeof ConsultationRescheduledV1.payloadSchema>;

/** IN_PROGRESS, COMPLETED and NO_SHOW moves (booking, expiry and cancellation have their own events). */
export const ConsultationStatusChangedV1 = defineEvent(
  'telemedicine.consultation_status_changed.v1',
  Type.Object({
    ...ConsultationFacts,
    from: ConsultationStatusSchema,
    to: ConsultationStatusSchema,
  }),
);
export type ConsultationStatusChangedPayload = Static<typeof ConsultationStatusChangedV1.payloadSchema>;

export const PaymentSucceededV1 = defineEvent(
  'telemedicine.payment_succeeded.v1',
  Type.Object({
    paymentId: Uuid,
    consultationId: Uuid,
    doctorId: Uuid,
    specialty: Type.String(),
    amountMinor: MinorUnits,
    currency: Currency,
    succeededAt: Timestamp,
  }),
);
export type PaymentSucceededPayload = Static<typeof PaymentSucceededV1.payloadSchema>;

export const RefundIssuedV1 = defineEvent(
  'telemedicine.refund_issued.v1',
  Type.Object({
    refundId: Uuid,
    paymentId: Uuid,
    consultationId: Uuid,
    doctorId: Uuid,
    specialty: Type.String(),
    amountMinor: MinorUnits,
    currency: Currency,
    reason: Type.Union([
      Type.Literal('patient_cancelled'),
      Type.Literal('doctor_cancelled'),
      Type.Literal('admin'),
      Type.Literal('no_show_policy'),
      Type.Literal('late_payment'),
    ]),
    issuedAt: Timestamp,
  }),
);
export type RefundIssuedPayload = Static<typeof RefundIssuedV1.payloadSchema>;

export const PrescriptionIssuedV1 = defineEvent(
  'telemedicine.prescription_issued.v1',
  Type.Object({
    prescriptionId: Uuid,
    consultationId: Uuid,
    patientId: Uuid,
    doctorId: Uuid,
    version: Type.Integer({ minimum: 1 }),
    supersedesId: Type.Union([Uuid, Type.Null()]),
    issuedAt: Timestamp,
  }),
);
export type PrescriptionIssuedPayload = Static<typeof PrescriptionIssuedV1.payloadSchema>;

export const ReviewSubmittedV1 = defineEvent(
  'telemedicine.review_submitted.v1',
  Type.Object({
    consultationId: Uuid,
    doctorId: Uuid,
    rating: Type.Integer({ minimum: 1, maximum: 5 }),
    submittedAt: Timestamp,
  }),
);
export type ReviewSubmittedPayload = Static<typeof ReviewSubmittedV1.payloadSchema>;

/** Every consultation lifecycle event type, for subscribers that follow a consultation. */
export const CONSULTATION_EVENT_TYPES = [
  ConsultationBookedV1.type,
  ConsultationConfirmedV1.type,
  ConsultationExpiredV1.type,
  ConsultationCancelledV1.type,
  ConsultationRescheduledV1.type,
  ConsultationStatusChangedV1.type,
] as const;
