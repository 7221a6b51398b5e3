import { ConsultationStatusChangedV1 } from '@keel/contracts';
import type { FieldEncryption } from '@keel/platform/crypto';
import { assertNever } from '@keel/platform/errors';
import { type Principal, parseIfMatchVersion } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import { emitEvent } from '@keel/platform/outbox';
import { consultationNotFound } from '../access/access.errors.ts';
import { assertIsParticipant } from '../access/consultation-access.ts';
import { type RequestOrigin, recordClinicalAccess } from '../compliance/clinical-access.ts';
import { canTransition } from '../consultations/consultation.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import {
  invalidIfMatch,
  invalidTransition,
  notesNotWritable,
  preconditionRequired,
  tooEarlyForNoShow,
  tooEarlyToStart,
  versionMismatch,
} from './clinical.errors.ts';
import {
  findConsultationRecord,
  findStoredNotes,
  type StoredNotes,
  updateClinicalNotes,
  updateConsultationStatus,
} from './clinical.repository.ts';
import {
  type ClinicalNotes,
  type ConsultationRecord,
  earliestMomentFor,
  isNotesWritable,
  type LifecycleAction,
  targetStatusOf,
} from './clinical.ts';

export type ClinicalServiceDependencies = {
  db: TelemedicineDatabase;
  clock: Clock;
  encryption: FieldEncryption;
};

export type ClinicalService = ReturnType<typeof createClinicalService>;

/** Thrown inside a transaction to roll it back when its conditional write lost a race. */
class LostRace extends Error {
  constructor() {
    super('the conditional write matched no row');
    this.name = 'LostRace';
  }
}

function notesAad(consultationId: string): string {
  return fieldAad('telemedicine.consultations', 'clinical_notes', consultationId);
}

/** Refuses an action asked for before its window opens (start: 15 min early; no-show: 10 min late). */
function assertNotTooEarly(action: LifecycleAction, startsAt: Date, now: Date): void {
  const earliest = earliestMomentFor(action, startsAt);
  if (earliest === undefined || now.getTime() >= earliest.getTime()) return;
  switch (action) {
    case 'start':
      throw tooEarlyToStart(earliest);
    case 'no_show':
      throw tooEarlyForNoShow(earliest);
    case 'complete':
      return;
    default:
      assertNever(action);
  }
}

export function createClinicalService(deps: ClinicalServiceDependencies) {
  const { db, clock, encryption } = deps;

  function decryptNotes(stored: StoredNotes): ClinicalNotes {
    return {
      consultationId: stored.consultationId,
      patientId: stored.patientId,
      doctorId: stored.doctorId,
      status: stored.status,
      notes:
        stored.encryptedNotes === null
          ? null
          : encryption.decrypt(stored.encryptedNotes, notesAad(stored.consultationId)),
      version: stored.version,
      updatedAt: stored.updatedAt,
    };
  }

  return {
    /**
     * Starts, completes or marks a no-show, as the consultation's doctor only.
     * `If-Match` is required; the conditional update on (status, version)
     * decides between racing changes, and only its winner emits the event.
     */
    async changeStatus(
      principal: Principal,
      consultationId: string,
      action: LifecycleAction,
      ifMatch: string | undefined,
    ): Promise<ConsultationRecord> {
      const requested = parseIfMatchVersion(ifMatch, invalidIfMatch);
      const consultation = await db.run((kysely) => findConsultationRecord(kysely, consultationId));
      if (consultation === undefined || consultation.doctorId !== principal.id) {
        throw consultationNotFound(consultationId);
      }
      if (requested === undefined) throw preconditionRequired();
      const expectedVersion = requested === '*' ? consultation.version : requested;
      if (expectedVersion !== consultation.version) {
        throw versionMismatch(expectedVersion, consultation.version);
      }
      const to = targetStatusOf(action);
      if (!canTransition(consultation.status, to)) throw invalidTransition(consultation.status, to);
      const now = clock.now();
      assertNotTooEarly(action, consultation.startsAt, now);

      try {
        return await db.transaction(async (trx) => {
          const updated = await updateConsultationStatus(trx, {
            id: consultationId,
            from: consultation.status,
            to,
            expectedVersion,
            at: now,
          });
          if (updated === undefined) throw new LostRace();
          await emitEvent(
            trx,
            {
              type: ConsultationStatusChangedV1.type,
              aggregateType: 'consultation',
              aggregateId: consultationId,
              occurredAt: now,
              payload: {
                consultationId,
                patientId: updated.patientId,
                doctorId: updated.doctorId,
                slotId: updated.slotId,
                specialty: updated.specialty,
                startsAt: updated.startsAt.toISOString(),
                endsAt: updated.endsAt.toISOString(),
                feeMinor: updated.feeMinor,
                currency: updated.currency,
                from: consultation.status,
                to,
              },
            },
            { definition: ConsultationStatusChangedV1 },
          );
          return updated;
        });
      } catch (error) {
        if (!(error instanceof LostRace)) throw error;
        // Every change bumps the version, so whoever won moved it past ours.
        const current = await db.run((kysely) => findConsultationRecord(kysely, consultationId));
        throw versionMismatch(expectedVersion, current?.version ?? expectedVersion);
      }
    },

    /**
     * Replaces the consultation's clinical notes (encrypted), as its doctor,
     * while it is IN_PROGRESS or COMPLETED. `If-Match` is optional: with it a
     * stale version is refused instead of overwriting a newer write-up.
     */
    async writeNotes(
      principal: Principal,
      consultationId: string,
      input: { notes: string; ifMatch: string | undefined; origin: RequestOrigin },
    ): Promise<ClinicalNotes> {
      const requested = parseIfMatchVersion(input.ifMatch, invalidIfMatch);
      const stored = await db.run((kysely) => findStoredNotes(kysely, consultationId));
      if (stored === undefined || stored.doctorId !== principal.id)
        throw consultationNotFound(consultationId);
      if (!isNotesWritable(stored.status)) throw notesNotWritable(stored.status);
      const expectedVersion = typeof requested === 'number' ? requested : undefined;
      if (expectedVersion !== undefined && expectedVersion !== stored.version) {
        throw versionMismatch(expectedVersion, stored.version);
      }

      const encryptedNotes = encryption.encrypt(input.notes, notesAad(consultationId));
      const now = clock.now();
      const updated = await db.transaction(async (trx) => {
        const written = await updateClinicalNotes(trx, {
          id: consultationId,
          encryptedNotes,
          expectedVersion,
          at: now,
        });
        if (written === undefined) return undefined;
        await recordClinicalAccess(trx, {
          actor: principal,
          patientId: stored.patientId,
          operation: 'write',
          resource: 'clinical_notes',
          resourceId: consultationId,
          purpose: 'treatment',
          origin: input.origin,
          occurredAt: now,
        });
        return written;
      });
      if (updated === undefined) {
        const current = await db.run((kysely) => findStoredNotes(kysely, consultationId));
        if (current !== undefined && !isNotesWritable(current.status)) throw notesNotWritable(current.status);
        throw versionMismatch(expectedVersion ?? stored.version, current?.version ?? stored.version);
      }
      return {
        consultationId,
        patientId: stored.patientId,
        doctorId: stored.doctorId,
        status: stored.status,
        notes: input.notes,
        version: updated.version,
        updatedAt: updated.updatedAt,
      };
    },

    /**
     * The notes, for the consultation's two participants only (support and
     * admins see logistics, never notes). The read is audited in the same
     * transaction before anything is returned.
     */
    async readNotes(
      principal: Principal,
      consultationId: string,
      origin: RequestOrigin,
    ): Promise<ClinicalNotes> {
      return db.transaction(async (trx) => {
        const stored = await findStoredNotes(trx, consultationId);
        const relation = assertIsParticipant(
          principal,
          stored === undefined
            ? undefined
            : { id: stored.consultationId, patientId: stored.patientId, doctorId: stored.doctorId },
          consultationId,
        );
        if (stored === undefined) throw consultationNotFound(consultationId);
        await recordClinicalAccess(trx, {
          actor: principal,
          patientId: stored.patientId,
          operation: 'read',
          resource: 'clinical_notes',
          resourceId: consultationId,
          purpose: relation === 'doctor' ? 'treatment' : 'patient_access',
          origin,
          occurredAt: clock.now(),
        });
        return decryptNotes(stored);
      });
    },
  };
}
