import type { ServiceRoles } from '@keel/platform/rbac';

/**
 * Every permission the telemedicine service checks. Routes declare one of
 * these as their access rule; object-level rules (a patient's own
 * consultation, the doctor of this consultation) are checked in the services
 * with `ConsultationAccess`, and a refused object answers 404, never 403, so
 * its existence does not leak.
 */
export const TELEMEDICINE_PERMISSIONS = {
  // Patients.
  managePatientProfile: 'telemedicine:manage_patient_profile',
  book: 'telemedicine:book',
  review: 'telemedicine:review',
  readOwnAccessLog: 'telemedicine:read_own_access_log',
  exportOwnData: 'telemedicine:export_own_data',
  // Participants (patients and doctors), scoped to their own consultations.
  readConsultations: 'telemedicine:read_consultations',
  cancelConsultations: 'telemedicine:cancel_consultations',
  rescheduleConsultations: 'telemedicine:reschedule_consultations',
  readPrescriptions: 'telemedicine:read_prescriptions',
  // Doctors.
  manageDoctorProfile: 'telemedicine:manage_doctor_profile',
  manageAvailability: 'telemedicine:manage_availability',
  conductConsultations: 'telemedicine:conduct_consultations',
  writeClinicalNotes: 'telemedicine:write_clinical_notes',
  prescribe: 'telemedicine:prescribe',
  // Operations.
  /** Lifts the participant scope for non-clinical fields: support and admins see every consultation's logistics. */
  readAllConsultations: 'telemedicine:read_all_consultations',
  readPayments: 'telemedicine:read_payments',
  verifyDoctors: 'telemedicine:verify_doctors',
  readAnalytics: 'telemedicine:read_analytics',
  manageAllAvailability: 'telemedicine:manage_all_availability',
  cancelAnyConsultation: 'telemedicine:cancel_any_consultation',
} as const;

export type TelemedicinePermission = (typeof TELEMEDICINE_PERMISSIONS)[keyof typeof TELEMEDICINE_PERMISSIONS];

const P = TELEMEDICINE_PERMISSIONS;

export const TELEMEDICINE_ROLES: ServiceRoles = {
  definitions: [
    {
      name: 'telemedicine:patient',
      description: 'Books consultations and sees their own consultations, prescriptions and records',
      permissions: [
        P.managePatientProfile,
        P.book,
        P.review,
        P.readOwnAccessLog,
        P.exportOwnData,
        P.readConsultations,
        P.cancelConsultations,
        P.rescheduleConsultations,
        P.readPrescriptions,
      ],
      requiresMfa: false,
    },
    {
      name: 'telemedicine:doctor',
      description: 'Offers availability, conducts their consultations, writes notes and prescriptions',
      permissions: [
        P.manageDoctorProfile,
        P.manageAvailability,
        P.readConsultations,
        P.cancelConsultations,
        P.conductConsultations,
        P.writeClinicalNotes,
        P.prescribe,
        P.readPrescriptions,
      ],
      requiresMfa: true,
    },
    {
      name: 'telemedicine:support',
      description:
        'Read-only operations: every consultation’s logistics and payments, never clinical content',
      permissions: [P.readConsultations, P.readAllConsultations, P.readPayments],
      requiresMfa: false,
    },
    {
      name: 'telemedicine:admin',
      description: 'Verifies doctors, runs availability and cancellations for everyone, reads analytics',
      permissions: [
        P.readConsultations,
        P.readAllConsultations,
        P.readPayments,
        P.verifyDoctors,
        P.readAnalytics,
        P.manageAllAvailability,
        P.cancelConsultations,
        P.cancelAnyConsultation,
      ],
      requiresMfa: true,
    },
  ],
  registrationRole: 'telemedicine:patient',
};
