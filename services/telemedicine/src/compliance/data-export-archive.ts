import type {
  CancelledBy,
  ConsultationStatusColumn,
  PatientsTable,
  PaymentStatus,
  RefundReason,
  RefundsTable,
} from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import type { AccessLogEntry, Consent } from './compliance.ts';

// The data export archive: everything Keel holds about one patient, as one
// JSON document the patient can read (snake_case, ISO times, decrypted). Built
// from what the repository reads, with decryption injected so the assembly
// is testable without keys.

export const DATA_EXPORT_FORMAT = 'keel.telemedicine.data_export.v1';

/** Decrypts a field value stored under `aad`; throws on a wrong AAD or tampering. */
export type Decrypt = (ciphertext: string, aad: string) => string;

// What the repository reads. Encrypted columns stay ciphertext until the
// archive is assembled, so plaintext exists only inside the export job.

export type PatientRecord = {
  id: string;
  fullNameEncrypted: string;
  dateOfBirthEncrypted: string;
  sex: PatientsTable['sex'];
  phoneEncrypted: string | null;
  emergencyContactEncrypted: string | null;
  allergiesEncrypted: string | null;
  createdAt: Date;
  updatedAt: Date;
};

export type ConsultationRecord = {
  id: string;
  doctorId: string;
  doctorName: string | null;
  status: ConsultationStatusColumn;
  startsAt: Date;
  endsAt: Date;
  specialty: string;
  feeMinor: number;
  currency: string;
  reasonEncrypted: string | null;
  clinicalNotesEncrypted: string | null;
  consentVersion: string;
  consentedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  cancelledAt: Date | null;
  cancelledBy: CancelledBy | null;
  cancelReason: string | null;
  expiredReason: 'payment_failed' | 'hold_expired' | null;
  createdAt: Date;
};

export type PrescriptionRecord = {
  id: string;
  consultationId: string;
  doctorId: string;
  version: number;
  supersedesId: string | null;
  status: 'ISSUED' | 'SUPERSEDED';
  contentEncrypted: string;
  documentDigest: string;
  signature: string;
  signingKeyId: string;
  issuedAt: Date;
  supersededAt: Date | null;
};

export type PaymentRecord = {
  id: string;
  consultationId: string;
  provider: string;
  amountMinor: number;
  currency: string;
  status: PaymentStatus;
  refundedMinor: number;
  failureCode: string | null;
  createdAt: Date;
  updatedAt: Date;
};

export type RefundRecord = {
  id: string;
  paymentId: string;
  amountMinor: number;
  reason: RefundReason;
  status: RefundsTable['status'];
  createdAt: Date;
};

export type ReviewRecord = {
  consultationId: string;
  doctorId: string;
  rating: number;
  comment: string;
  createdAt: Date;
};

export type ArchiveSources = {
  exportId: string;
  generatedAt: Date;
  patient: PatientRecord;
  consultations: readonly ConsultationRecord[];
  prescriptions: readonly PrescriptionRecord[];
  payments: readonly PaymentRecord[];
  refunds: readonly RefundRecord[];
  reviews: readonly ReviewRecord[];
  consents: readonly Consent[];
  accessLog: readonly AccessLogEntry[];
};

const iso = (value: Date) => value.toISOString();
const isoOrNull = (value: Date | null) => (value === null ? null : value.toISOString());

/** A prescription's content is a JSON document; an unparsable one is kept as its text rather than lost. */
function parseDocument(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The archive document (before encryption). Key order is the reading order. */
export function buildExportArchive(sources: ArchiveSources, decrypt: Decrypt) {
  const { patient } = sources;
  const patientField = (name: string, value: string | null) =>
    value === null ? null : decrypt(value, fieldAad('telemedicine.patients', name, patient.id));
  const consultationField = (id: string, name: string, value: string | null) =>
    value === null ? null : decrypt(value, fieldAad('telemedicine.consultations', name, id));
  const refundsByPayment = Map.groupBy(sources.refunds, (refund) => refund.paymentId);
  return {
    format: DATA_EXPORT_FORMAT,
    export_id: sources.exportId,
    patient_id: patient.id,
    generated_at: iso(sources.generatedAt),
    profile: {
      id: patient.id,
      full_name: patientField('full_name', patient.fullNameEncrypted),
      date_of_birth: patientField('date_of_birth', patient.dateOfBirthEncrypted),
      sex: patient.sex,
      phone: patientField('phone', patient.phoneEncrypted),
      emergency_contact: patientField('emergency_contact', patient.emergencyContactEncrypted),
      allergies: patientField('allergies', patient.allergiesEncrypted),
      created_at: iso(patient.createdAt),
      updated_at: iso(patient.updatedAt),
    },
    consultations: sources.consultations.map((consultation) => ({
      id: consultation.id,
      doctor_id: consultation.doctorId,
      doctor_name: consultation.doctorName,
      status: consultation.status,
      starts_at: iso(consultation.startsAt),
      ends_at: iso(consultation.endsAt),
      specialty: consultation.specialty,
      fee_minor: consultation.feeMinor,
      currency: consultation.currency,
      reason: consultationField(consultation.id, 'reason', consultation.reasonEncrypted),
      clinical_notes: consultationField(
        consultation.id,
        'clinical_notes',
        consultation.clinicalNotesEncrypted,
      ),
      consent_version: consultation.consentVersion,
      consented_at: iso(consultation.consentedAt),
      started_at: isoOrNull(consultation.startedAt),
      completed_at: isoOrNull(consultation.completedAt),
      cancelled_at: isoOrNull(consultation.cancelledAt),
      cancelled_by: consultation.cancelledBy,
      cancel_reason: consultation.cancelReason,
      expired_reason: consultation.expiredReason,
      created_at: iso(consultation.createdAt),
    })),
    prescriptions: sources.prescriptions.map((prescription) => ({
      id: prescription.id,
      consultation_id: prescription.consultationId,
      doctor_id: prescription.doctorId,
      version: prescription.version,
      supersedes_id: prescription.supersedesId,
      status: prescription.status,
      content: parseDocument(
        decrypt(
          prescription.contentEncrypted,
          fieldAad('telemedicine.prescriptions', 'content', prescription.id),
        ),
      ),
      document_digest: prescription.documentDigest,
      signature: prescription.signature,
      signing_key_id: prescription.signingKeyId,
      issued_at: iso(prescription.issuedAt),
      superseded_at: isoOrNull(prescription.supersededAt),
    })),
    // The provider's client secret is a credential, not the patient's data: never exported.
    payments: sources.payments.map((payment) => ({
      id: payment.id,
      consultation_id: payment.consultationId,
      provider: payment.provider,
      amount_minor: payment.amountMinor,
      currency: payment.currency,
      status: payment.status,
      refunded_minor: payment.refundedMinor,
      failure_code: payment.failureCode,
      created_at: iso(payment.createdAt),
      updated_at: iso(payment.updatedAt),
      refunds: (refundsByPayment.get(payment.id) ?? []).map((refund) => ({
        id: refund.id,
        amount_minor: refund.amountMinor,
        reason: refund.reason,
        status: refund.status,
        created_at: iso(refund.createdAt),
      })),
    })),
    reviews: sources.reviews.map((review) => ({
      consultation_id: review.consultationId,
      doctor_id: review.doctorId,
      rating: review.rating,
      comment: review.comment,
      created_at: iso(review.createdAt),
    })),
    consents: sources.consents.map((consent) => ({
      id: consent.id,
      consultation_id: consent.consultationId,
      kind: consent.kind,
      version: consent.version,
      given_at: iso(consent.givenAt),
    })),
    access_log: sources.accessLog.map(toAccessLogJson),
  };
}

export type ExportArchive = ReturnType<typeof buildExportArchive>;

/** An access log entry in the API's (and the archive's) JSON shape. */
export function toAccessLogJson(entry: AccessLogEntry) {
  return {
    occurred_at: iso(entry.occurredAt),
    actor_id: entry.actorId,
    actor_type: entry.actorType,
    actor_roles: entry.actorRoles,
    action: entry.action,
    resource: entry.resource,
    resource_id: entry.resourceId,
    purpose: entry.purpose,
    operation: entry.operation,
  };
}
