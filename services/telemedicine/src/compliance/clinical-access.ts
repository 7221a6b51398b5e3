import { type AuditEventInput, recordAuditEvent, recordAuditEventWhen } from '@keel/platform/audit';
import type { RawBuilder, Transaction } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { TelemedicineSchema } from '../database.ts';

/** Why someone touched a patient's record; shown to the patient in their access log. */
export type ClinicalPurpose =
  | 'treatment'
  | 'patient_access'
  | 'support'
  | 'administration'
  | 'billing'
  | 'data_export';

/** The kinds of clinical record a patient's access log names. */
export type ClinicalResource =
  | 'patient_profile'
  | 'consultation'
  | 'clinical_notes'
  | 'prescription'
  | 'data_export';

/** Where the request came from, for the audit row (all optional). */
export type RequestOrigin = { requestId?: string; ip?: string; userAgent?: string };

export type ClinicalAccess = {
  actor: Principal;
  /** Whose record it is: every entry lands in that patient's access log. */
  patientId: string;
  operation: 'read' | 'write';
  resource: ClinicalResource;
  resourceId: string;
  purpose: ClinicalPurpose;
  origin?: RequestOrigin;
  occurredAt: Date;
};

/** The audit resource type every clinical access is filed under; `listMyAccessLog` reads it. */
export const PATIENT_RECORD_RESOURCE_TYPE = 'telemedicine.patient_record';

/**
 * Records one read or write of a patient's clinical data in the platform's
 * tamper-evident audit log, in the caller's transaction: a write's audit row
 * commits with the write, and a read is audited before its data is returned
 * (a read whose audit row cannot be written fails rather than going unlogged).
 *
 * Filed under the patient (resource `telemedicine.patient_record`, id = the
 * patient's id) so the patient's access log is one indexed query; the object
 * touched and the purpose go in `changes`, which carries no clinical content.
 *
 * @example
 * await recordClinicalAccess(trx, { actor: principal, patientId, operation: 'read',
 *   resource: 'consultation', resourceId: consultation.id, purpose: 'treatment', occurredAt: clock.now() });
 */
export async function recordClinicalAccess(
  trx: Transaction<TelemedicineSchema>,
  access: ClinicalAccess,
): Promise<void> {
  await recordAuditEvent(trx, toAuditEvent(access));
}

/**
 * `recordClinicalAccess` inside a one-statement write: a CTE that records the
 * access only if `condition` selects anything (see `recordAuditEventWhen`).
 */
export function clinicalAccessInsertWhen(
  access: ClinicalAccess,
  condition: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return recordAuditEventWhen(toAuditEvent(access), condition);
}

function toAuditEvent(access: ClinicalAccess): AuditEventInput {
  const verb = access.operation === 'read' ? 'viewed' : 'written';
  return {
    actorType: access.actor.kind === 'api_key' ? 'api_key' : 'user',
    actorId: access.actor.id,
    action: `telemedicine.${access.resource}_${verb}`,
    resourceType: PATIENT_RECORD_RESOURCE_TYPE,
    resourceId: access.patientId,
    outcome: 'success',
    requestId: access.origin?.requestId ?? null,
    ip: access.origin?.ip ?? null,
    userAgent: access.origin?.userAgent ?? null,
    changes: {
      resource: access.resource,
      resource_id: access.resourceId,
      operation: access.operation,
      purpose: access.purpose,
      actor_roles: [...access.actor.roles],
    },
    occurredAt: access.occurredAt,
  };
}
