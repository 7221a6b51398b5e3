import type { Principal } from '@keel/platform/http';
import { consultationNotFound } from './access.errors.ts';
import { TELEMEDICINE_PERMISSIONS } from './telemedicine-permissions.ts';

/**
 * How a caller relates to a consultation: one of its two participants (who
 * see clinical content), operations staff (support and admins: logistics
 * only, never clinical content), or nobody.
 */
export type ConsultationRelation = 'patient' | 'doctor' | 'operations';

export type ConsultationParties = { id: string; patientId: string; doctorId: string };

export function relationTo(
  principal: Principal,
  consultation: ConsultationParties,
): ConsultationRelation | null {
  if (principal.kind === 'user' && principal.id === consultation.patientId) return 'patient';
  if (principal.kind === 'user' && principal.id === consultation.doctorId) return 'doctor';
  if (principal.permissions.has(TELEMEDICINE_PERMISSIONS.readAllConsultations)) return 'operations';
  return null;
}

/**
 * The caller's relation to the consultation, or `telemedicine.consultation_not_found`
 * (404) when they have none: someone else's consultation looks exactly like a
 * missing one.
 */
export function assertCanSeeConsultation(
  principal: Principal,
  consultation: ConsultationParties | undefined,
  consultationId: string,
): ConsultationRelation {
  const relation = consultation === undefined ? null : relationTo(principal, consultation);
  if (relation === null) throw consultationNotFound(consultationId);
  return relation;
}

/** As `assertCanSeeConsultation`, but only the two participants pass (clinical content). */
export function assertIsParticipant(
  principal: Principal,
  consultation: ConsultationParties | undefined,
  consultationId: string,
): 'patient' | 'doctor' {
  const relation = assertCanSeeConsultation(principal, consultation, consultationId);
  if (relation === 'operations') throw consultationNotFound(consultationId);
  return relation;
}
