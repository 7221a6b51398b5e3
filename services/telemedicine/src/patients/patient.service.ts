import type { FieldEncryption } from '@keel/platform/crypto';
import type { Principal } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import {
  type ClinicalPurpose,
  type RequestOrigin,
  recordClinicalAccess,
} from '../compliance/clinical-access.ts';
import type { TelemedicineDatabase, TelemedicineDb } from '../database.ts';
import { patientProfileNotFound } from './patient.errors.ts';
import {
  findPatientById,
  findTreatingConsultationId,
  insertPatient,
  lockPatient,
  updatePatient,
} from './patient.repository.ts';
import {
  assertIfMatch,
  assertValidDateOfBirth,
  openPatient,
  type PatientProfile,
  type PatientProfileInput,
  parseIfMatch,
  type StoredPatient,
  sealPatientFields,
} from './patient.ts';

export type PatientServiceDependencies = {
  db: TelemedicineDatabase;
  encryption: FieldEncryption;
  clock: Clock;
};

export type SavedPatientProfile = { profile: PatientProfile; isCreated: boolean };

export type PatientService = ReturnType<typeof createPatientService>;

export function createPatientService(deps: PatientServiceDependencies) {
  const { db, encryption, clock } = deps;

  /**
   * Reads a profile and audits the read in one transaction: the data leaves
   * only once its audit row has committed.
   */
  async function readAudited(
    principal: Principal,
    patientId: string,
    purpose: ClinicalPurpose,
    origin: RequestOrigin,
    isAllowed: (trx: TelemedicineDb) => Promise<boolean>,
  ): Promise<PatientProfile> {
    const stored = await db.transaction(async (trx) => {
      if (!(await isAllowed(trx))) return undefined;
      const row = await findPatientById(trx, patientId);
      if (row === undefined) return undefined;
      await recordClinicalAccess(trx, {
        actor: principal,
        patientId,
        operation: 'read',
        resource: 'patient_profile',
        resourceId: patientId,
        purpose,
        origin,
        occurredAt: clock.now(),
      });
      return row;
    });
    if (stored === undefined)
      throw patientProfileNotFound(patientId === principal.id ? undefined : patientId);
    return openPatient(encryption, stored);
  }

  return {
    /**
     * Creates or replaces the caller's profile (the id is their account id).
     * `If-Match` is optional; when sent it must name the current version. The
     * write and its audit row commit together.
     */
    async saveMyProfile(
      principal: Principal,
      input: PatientProfileInput,
      options: { ifMatch?: string | undefined; origin: RequestOrigin },
    ): Promise<SavedPatientProfile> {
      const now = clock.now();
      assertValidDateOfBirth(input.dateOfBirth, now);
      const expected = parseIfMatch(options.ifMatch);
      const id = principal.id;
      const fields = sealPatientFields(encryption, id, input);
      const write = { id, sex: input.sex, fields, now };

      const { stored, isCreated } = await db.transaction(async (trx) => {
        let current = await lockPatient(trx, id);
        let saved: StoredPatient | undefined;
        if (current === undefined) {
          assertIfMatch(expected, undefined);
          saved = await insertPatient(trx, write);
          // A concurrent first PUT created it meanwhile: replace that one.
          if (saved === undefined) current = await lockPatient(trx, id);
        }
        const isInsert = saved !== undefined;
        if (saved === undefined) {
          if (current === undefined) throw new Error('patient profile vanished after its insert conflicted');
          assertIfMatch(expected, current.version);
          // The row is locked: the conditional update cannot miss.
          saved = await updatePatient(trx, { ...write, expectedVersion: current.version });
          if (saved === undefined) throw new Error('locked patient profile changed version');
        }
        await recordClinicalAccess(trx, {
          actor: principal,
          patientId: id,
          operation: 'write',
          resource: 'patient_profile',
          resourceId: id,
          purpose: 'patient_access',
          origin: options.origin,
          occurredAt: now,
        });
        return { stored: saved, isCreated: isInsert };
      });

      return {
        profile: {
          id,
          fullName: input.fullName,
          dateOfBirth: input.dateOfBirth,
          sex: input.sex,
          phone: input.phone,
          emergencyContact: input.emergencyContact,
          allergies: input.allergies ?? [],
          version: stored.version,
          createdAt: stored.createdAt,
          updatedAt: stored.updatedAt,
        },
        isCreated,
      };
    },

    async getMyProfile(principal: Principal, origin: RequestOrigin): Promise<PatientProfile> {
      return readAudited(principal, principal.id, 'patient_access', origin, async () => true);
    },

    /**
     * Another caller's view of a patient's profile: only a doctor treating
     * them (a consultation booked, running or done) may read it. Everyone else
     * gets `telemedicine.patient_profile_not_found`, as if it did not exist.
     */
    async getPatientProfile(
      principal: Principal,
      patientId: string,
      origin: RequestOrigin,
    ): Promise<PatientProfile> {
      if (principal.kind === 'user' && principal.id === patientId) {
        return readAudited(principal, patientId, 'patient_access', origin, async () => true);
      }
      if (principal.kind !== 'user') throw patientProfileNotFound(patientId);
      return readAudited(principal, patientId, 'treatment', origin, async (trx) => {
        const consultationId = await findTreatingConsultationId(trx, {
          doctorId: principal.id,
          patientId,
        });
        return consultationId !== undefined;
      });
    },
  };
}
