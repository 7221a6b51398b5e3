import type { ColumnType, Db, Generated, Kysely } from '@keel/platform/db';

// Row types of the tables in migrations/0001_telemedicine.sql, all in one map:
// features share tables (a booking writes slots, consultations and payments
// in one transaction), so there is one schema type for the service.

/**
 * A `bigint` money column: pg returns it as a string; repositories convert it
 * with `Number()` (amounts are capped far below 2^53 by CHECK constraints).
 */
export type MinorUnitsColumn = ColumnType<string, number | bigint | string, number | bigint | string>;
/** A money column with a database default: optional on insert. (`Generated<MinorUnitsColumn>` does not unwrap.) */
export type DefaultedMinorUnitsColumn = ColumnType<
  string,
  number | bigint | string | undefined,
  number | bigint | string
>;
/** A generated column: readable, never written. */
type ReadOnly<T> = ColumnType<T, never, never>;
/**
 * `date` columns. node-postgres parses `date` into a Date at *local* midnight,
 * which shifts the day in any zone west of UTC: select them as text
 * (sql<string>`local_date::text`) and write 'YYYY-MM-DD' strings.
 */
type DateColumn = ColumnType<string, string, string>;
/** `time` columns: 'HH:MM:SS'. */
type TimeColumn = string;

export type PatientsTable = {
  id: string;
  full_name: string;
  date_of_birth: string;
  sex: 'female' | 'male' | 'intersex' | 'unspecified';
  phone: string | null;
  emergency_contact: string | null;
  allergies: string | null;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
};

export type DoctorStatus = 'PENDING' | 'VERIFIED' | 'SUSPENDED';

export type DoctorsTable = {
  id: string;
  full_name: string;
  specialties: string[];
  languages: string[];
  qualifications: Generated<string[]>;
  registration_number: string;
  years_of_experience: number;
  fee_minor: MinorUnitsColumn;
  currency: string;
  bio: Generated<string>;
  time_zone: string;
  status: Generated<DoctorStatus>;
  verified_at: Date | null;
  verified_by: string | null;
  rating_count: Generated<number>;
  rating_sum: Generated<number>;
  /** numeric(3,2): pg returns a string ('4.50') or null. */
  rating: ReadOnly<string | null>;
  next_available_at: Date | null;
  search_document: ReadOnly<string>;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
};

export type SchedulesTable = {
  doctor_id: string;
  time_zone: string;
  slot_minutes: number;
  buffer_minutes: Generated<number>;
  version: Generated<number>;
  updated_at: Generated<Date>;
};

export type ScheduleRulesTable = {
  id: string;
  doctor_id: string;
  weekday: number;
  start_local: TimeColumn;
  end_local: TimeColumn;
};

export type ScheduleOverridesTable = {
  id: string;
  doctor_id: string;
  local_date: DateColumn;
  is_available: boolean;
  start_local: TimeColumn | null;
  end_local: TimeColumn | null;
};

export type TimeOffTable = {
  id: string;
  doctor_id: string;
  starts_at: Date;
  ends_at: Date;
  reason: Generated<string>;
  created_at: Generated<Date>;
};

export type SlotStatus = 'OPEN' | 'HELD' | 'BOOKED' | 'WITHDRAWN';

export type SlotsTable = {
  id: string;
  doctor_id: string;
  starts_at: Date;
  ends_at: Date;
  status: Generated<SlotStatus>;
  hold_expires_at: Date | null;
  version: Generated<number>;
  created_at: Generated<Date>;
};

export type ConsultationStatusColumn =
  | 'PENDING_PAYMENT'
  | 'SCHEDULED'
  | 'IN_PROGRESS'
  | 'COMPLETED'
  | 'CANCELLED'
  | 'NO_SHOW'
  | 'EXPIRED';
export type CancelledBy = 'patient' | 'doctor' | 'admin' | 'system';

export type ConsultationsTable = {
  id: string;
  patient_id: string;
  doctor_id: string;
  slot_id: string;
  status: ConsultationStatusColumn;
  starts_at: Date;
  ends_at: Date;
  hold_expires_at: Date | null;
  fee_minor: MinorUnitsColumn;
  currency: string;
  specialty: string;
  /** Encrypted (kv1), AAD `telemedicine.consultations:reason:<id>`. */
  reason: string | null;
  /** Encrypted (kv1), AAD `telemedicine.consultations:clinical_notes:<id>`. */
  clinical_notes: string | null;
  consent_version: string;
  consented_at: Date;
  rescheduled_from_slot_id: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
  cancelled_by: CancelledBy | null;
  cancel_reason: string | null;
  expired_reason: 'payment_failed' | 'hold_expired' | null;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
};

export type ConsentsTable = {
  id: string;
  patient_id: string;
  consultation_id: string;
  kind: 'treatment' | 'telehealth';
  version: string;
  given_at: Date;
};

export type PaymentStatus =
  | 'CREATING'
  | 'REQUIRES_PAYMENT'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELLED'
  | 'REFUNDED'
  | 'PARTIALLY_REFUNDED';

export type PaymentsTable = {
  id: string;
  consultation_id: string;
  patient_id: string;
  provider: string;
  provider_intent_id: string | null;
  client_secret: string | null;
  amount_minor: MinorUnitsColumn;
  currency: string;
  status: PaymentStatus;
  refunded_minor: DefaultedMinorUnitsColumn;
  failure_code: string | null;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
};

/** `late_payment`: money that arrived after its booking had expired or been cancelled unpaid. */
export type RefundReason =
  | 'patient_cancelled'
  | 'doctor_cancelled'
  | 'admin'
  | 'no_show_policy'
  | 'late_payment';

export type RefundsTable = {
  id: string;
  payment_id: string;
  amount_minor: MinorUnitsColumn;
  reason: RefundReason;
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  provider_refund_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
};

export type PaymentWebhookEventsTable = {
  provider: string;
  event_id: string;
  event_type: string;
  received_at: Generated<Date>;
};

export type PrescriptionsTable = {
  id: string;
  consultation_id: string;
  patient_id: string;
  doctor_id: string;
  version: number;
  supersedes_id: string | null;
  status: 'ISSUED' | 'SUPERSEDED';
  /** Encrypted (kv1) JSON of the document, AAD `telemedicine.prescriptions:content:<id>`. */
  content: string;
  document_digest: string;
  signature: string;
  signing_key_id: string;
  issued_at: Date;
  superseded_at: Date | null;
};

export type ReviewsTable = {
  consultation_id: string;
  patient_id: string;
  doctor_id: string;
  rating: number;
  comment: Generated<string>;
  created_at: Generated<Date>;
};

export type DataExportsTable = {
  id: string;
  patient_id: string;
  status: 'PENDING' | 'READY' | 'FAILED';
  /** Encrypted (kv1) JSON archive, AAD `telemedicine.data_exports:archive:<id>`. */
  archive: string | null;
  requested_at: Date;
  completed_at: Date | null;
  expires_at: Date | null;
};

export type AnalyticsDailyTable = {
  day: DateColumn;
  doctor_id: string;
  specialty: string;
  currency: string;
  booked: Generated<number>;
  confirmed: Generated<number>;
  completed: Generated<number>;
  cancelled: Generated<number>;
  no_shows: Generated<number>;
  expired: Generated<number>;
  revenue_minor: DefaultedMinorUnitsColumn;
  refunds_minor: DefaultedMinorUnitsColumn;
  slots_offered: Generated<number>;
  slots_booked: Generated<number>;
};

export type TelemedicineSchema = {
  'telemedicine.patients': PatientsTable;
  'telemedicine.doctors': DoctorsTable;
  'telemedicine.schedules': SchedulesTable;
  'telemedicine.schedule_rules': ScheduleRulesTable;
  'telemedicine.schedule_overrides': ScheduleOverridesTable;
  'telemedicine.time_off': TimeOffTable;
  'telemedicine.slots': SlotsTable;
  'telemedicine.consultations': ConsultationsTable;
  'telemedicine.consents': ConsentsTable;
  'telemedicine.payments': PaymentsTable;
  'telemedicine.refunds': RefundsTable;
  'telemedicine.payment_webhook_events': PaymentWebhookEventsTable;
  'telemedicine.prescriptions': PrescriptionsTable;
  'telemedicine.reviews': ReviewsTable;
  'telemedicine.data_exports': DataExportsTable;
  'telemedicine.analytics_daily': AnalyticsDailyTable;
};

export type TelemedicineDb = Kysely<TelemedicineSchema>;
export type TelemedicineDatabase = Db<TelemedicineSchema>;
