import type { FieldEncryption } from '@keel/platform/crypto';
import type { Principal } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import { assertCanSeeConsultation } from '../access/consultation-access.ts';
import { TELEMEDICINE_PERMISSIONS } from '../access/telemedicine-permissions.ts';
import { type RequestOrigin, recordClinicalAccess } from '../compliance/clinical-access.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import { invalidCursor } from './consultation.errors.ts';
import { findConsultationById, listConsultations } from './consultation.repository.ts';
import {
  type Consultation,
  type ConsultationRecord,
  type ConsultationStatus,
  decodeCursor,
  encodeCursor,
} from './consultation.ts';

export type ConsultationServiceDependencies = {
  db: TelemedicineDatabase;
  clock: Clock;
  encryption: FieldEncryption;
};

/**
 * What a caller gets of one consultation: a participant the whole of it,
 * the clinical reason decrypted; operations staff the logistics only.
 */
export type ConsultationView =
  | { audience: 'participant'; consultation: Consultation }
  | { audience: 'operations'; consultation: ConsultationRecord };

export type ListConsultationsInput = {
  statuses?: ConsultationStatus[];
  startsFrom?: Date;
  startsBefore?: Date;
  limit: number;
  cursor?: string;
};

export type ConsultationPage = { items: ConsultationRecord[]; nextCursor: string | null };

export type ConsultationService = ReturnType<typeof createConsultationService>;

export function createConsultationService(deps: ConsultationServiceDependencies) {
  const { db, clock, encryption } = deps;

  return {
    /**
     * A participant's read returns the clinical reason and is recorded in
     * the patient's access log in the same transaction (no audit row, no
     * data). Operations staff read logistics only, which is not clinical
     * access. Anyone else: 404.
     */
    async getConsultation(
      principal: Principal,
      consultationId: string,
      origin: RequestOrigin = {},
    ): Promise<ConsultationView> {
      return db.transaction(async (trx) => {
        const record = await findConsultationById(trx, consultationId);
        const relation = assertCanSeeConsultation(principal, record, consultationId);
        if (record === undefined)
          throw new Error('unreachable: assertCanSeeConsultation passed a missing record');
        if (relation === 'operations') return { audience: 'operations', consultation: record };
        await recordClinicalAccess(trx, {
          actor: principal,
          patientId: record.patientId,
          operation: 'read',
          resource: 'consultation',
          resourceId: record.id,
          purpose: relation === 'doctor' ? 'treatment' : 'patient_access',
          origin,
          occurredAt: clock.now(),
        });
        const { encryptedReason, ...rest } = record;
        const reason =
          encryptedReason === null
            ? null
            : encryption.decrypt(
                encryptedReason,
                fieldAad('telemedicine.consultations', 'reason', record.id),
              );
        return { audience: 'participant', consultation: { ...rest, reason } };
      });
    },

    /**
     * Participants list the consultations they take part in (as patient or
     * doctor); operations staff every consultation. Logistics only: a list
     * never carries the clinical reason. Keyset-paginated, latest start first.
     */
    async listConsultations(principal: Principal, input: ListConsultationsInput): Promise<ConsultationPage> {
      const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
      if (input.cursor !== undefined && after === undefined) throw invalidCursor();
      const isOperations = principal.permissions.has(TELEMEDICINE_PERMISSIONS.readAllConsultations);
      const rows = await db.run((kysely) =>
        listConsultations(kysely, {
          ...(isOperations ? {} : { participantId: principal.id }),
          ...(input.statuses === undefined ? {} : { statuses: input.statuses }),
          ...(input.startsFrom === undefined ? {} : { startsFrom: input.startsFrom }),
          ...(input.startsBefore === undefined ? {} : { startsBefore: input.startsBefore }),
          ...(after === undefined ? {} : { after }),
          // One more than asked tells whether there is a next page.
          limit: input.limit + 1,
        }),
      );
      const page = rows.slice(0, input.limit);
      const last = page.at(-1);
      return {
        items: page.map((row) => row.consultation),
        nextCursor: rows.length > input.limit && last !== undefined ? encodeCursor(last.cursor) : null,
      };
    },
  };
}
