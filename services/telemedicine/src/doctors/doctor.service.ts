import { recordAuditEvent } from '@keel/platform/audit';
import { isUniqueViolation } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { Clock } from '@keel/platform/module';
import { doctorNotFound } from '../access/access.errors.ts';
import type { RequestOrigin } from '../compliance/clinical-access.ts';
import type { DoctorStatus, TelemedicineDatabase } from '../database.ts';
import { doctorProfileNotFound, registrationNumberTaken } from './doctor.errors.ts';
import { emitDoctorProfileChanged } from './doctor.events.ts';
import {
  findDoctorById,
  findDoctorIdByRegistrationNumber,
  insertDoctor,
  listDoctors,
  lockDoctor,
  updateDoctorProfile,
  updateDoctorStatus,
} from './doctor.repository.ts';
import {
  assertIfMatch,
  assertValidDoctorProfile,
  assertVerificationMove,
  type Doctor,
  type DoctorProfileInput,
  decodeCursor,
  encodeCursor,
  parseIfMatch,
  statusAfterProfileChange,
  targetStatusOf,
  type VerificationAction,
} from './doctor.ts';

export type DoctorServiceDependencies = { db: TelemedicineDatabase; clock: Clock };

export type SavedDoctorProfile = { doctor: Doctor; isCreated: boolean };

export type DoctorPage = { items: Doctor[]; nextCursor: string | null };

export type DoctorService = ReturnType<typeof createDoctorService>;

const REGISTRATION_NUMBER_CONSTRAINT = 'doctors_registration_number_key';

export function createDoctorService(deps: DoctorServiceDependencies) {
  const { db, clock } = deps;

  async function moveVerification(
    principal: Principal,
    doctorId: string,
    action: VerificationAction,
    details: { reason?: string; origin: RequestOrigin },
  ): Promise<Doctor> {
    const now = clock.now();
    const to = targetStatusOf(action);
    return db.transaction(async (trx) => {
      const current = await lockDoctor(trx, doctorId);
      if (current === undefined) throw doctorNotFound(doctorId);
      assertVerificationMove(doctorId, current.status, action);
      const moved = await updateDoctorStatus(trx, {
        id: doctorId,
        from: current.status,
        to,
        verification: action === 'verify' ? { at: now, by: principal.id } : null,
        now,
      });
      // The row is locked: a concurrent move waits and then sees the new status.
      if (moved === undefined) throw new Error('locked doctor changed status');
      await recordAuditEvent(trx, {
        actorType: principal.kind === 'api_key' ? 'api_key' : 'user',
        actorId: principal.id,
        action: action === 'verify' ? 'telemedicine.doctor_verified' : 'telemedicine.doctor_suspended',
        resourceType: 'telemedicine.doctor',
        resourceId: doctorId,
        outcome: 'success',
        requestId: details.origin.requestId ?? null,
        ip: details.origin.ip ?? null,
        userAgent: details.origin.userAgent ?? null,
        changes: {
          status: { from: current.status, to },
          ...(details.reason === undefined ? {} : { reason: details.reason }),
        },
        occurredAt: now,
      });
      await emitDoctorProfileChanged(trx, moved, 'verification', now);
      return moved;
    });
  }

  return {
    /**
     * Creates (PENDING) or updates the caller's profile. Changing the
     * registration number of a verified doctor sends them back to PENDING.
     * The change and its `doctor_profile_changed` event commit together.
     */
    async saveMyProfile(
      principal: Principal,
      input: DoctorProfileInput,
      options: { ifMatch?: string | undefined },
    ): Promise<SavedDoctorProfile> {
      assertValidDoctorProfile(input);
      const expected = parseIfMatch(options.ifMatch);
      const id = principal.id;
      const now = clock.now();
      try {
        return await db.transaction(async (trx) => {
          let current = await lockDoctor(trx, id);
          // The friendly answer; the unique constraint is the guarantee (caught below).
          const holder = await findDoctorIdByRegistrationNumber(trx, input.registrationNumber);
          if (holder !== undefined && holder !== id) throw registrationNumberTaken();
          let saved: Doctor | undefined;
          if (current === undefined) {
            assertIfMatch(expected, undefined);
            saved = await insertDoctor(trx, { id, input, now });
            // A concurrent first PUT created it meanwhile: update that one.
            if (saved === undefined) current = await lockDoctor(trx, id);
          }
          const isCreated = saved !== undefined;
          if (saved === undefined) {
            if (current === undefined) throw new Error('doctor profile vanished after its insert conflicted');
            assertIfMatch(expected, current.version);
            const status = statusAfterProfileChange(current, input);
            saved = await updateDoctorProfile(trx, {
              id,
              expectedVersion: current.version,
              input,
              status,
              isVerificationCleared: current.status === 'VERIFIED' && status === 'PENDING',
              now,
            });
            if (saved === undefined) throw new Error('locked doctor profile changed version');
          }
          await emitDoctorProfileChanged(trx, saved, 'profile', now);
          // A new registration number revoked the verification: listeners that
          // follow verification (availability takes the slots down) hear it too.
          if (current !== undefined && current.status !== saved.status) {
            await emitDoctorProfileChanged(trx, saved, 'verification', now);
          }
          return { doctor: saved, isCreated };
        });
      } catch (error) {
        if (isUniqueViolation(error, REGISTRATION_NUMBER_CONSTRAINT)) throw registrationNumberTaken();
        throw error;
      }
    },

    async getMyProfile(principal: Principal): Promise<Doctor> {
      const doctor = await db.run((kysely) => findDoctorById(kysely, principal.id));
      if (doctor === undefined) throw doctorProfileNotFound();
      return doctor;
    },

    /** A verified doctor; anyone else is `telemedicine.doctor_not_found`. */
    async getPublicDoctor(doctorId: string): Promise<Doctor> {
      const doctor = await db.run((kysely) => findDoctorById(kysely, doctorId));
      if (doctor === undefined || doctor.status !== 'VERIFIED') throw doctorNotFound(doctorId);
      return doctor;
    },

    async listDoctors(filter: {
      status?: DoctorStatus;
      limit: number;
      cursor?: string;
    }): Promise<DoctorPage> {
      const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor);
      // One row more than asked tells whether there is a next page.
      const rows = await db.run((kysely) =>
        listDoctors(kysely, {
          ...(filter.status === undefined ? {} : { status: filter.status }),
          ...(after === undefined ? {} : { after }),
          limit: filter.limit + 1,
        }),
      );
      const page = rows.slice(0, filter.limit);
      const last = page.at(-1);
      return {
        items: page.map((row) => row.doctor),
        nextCursor: rows.length > filter.limit && last !== undefined ? encodeCursor(last.cursor) : null,
      };
    },

    /** PENDING or SUSPENDED → VERIFIED; audited and announced in the same transaction. */
    async verifyDoctor(principal: Principal, doctorId: string, origin: RequestOrigin): Promise<Doctor> {
      return moveVerification(principal, doctorId, 'verify', { origin });
    },

    /** PENDING or VERIFIED → SUSPENDED; the reason goes to the audit log. */
    async suspendDoctor(
      principal: Principal,
      doctorId: string,
      reason: string,
      origin: RequestOrigin,
    ): Promise<Doctor> {
      return moveVerification(principal, doctorId, 'suspend', { reason, origin });
    },
  };
}
