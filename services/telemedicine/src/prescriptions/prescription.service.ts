import { PrescriptionIssuedV1 } from '@keel/contracts';
import type { FieldEncryption } from '@keel/platform/crypto';
import { isUniqueViolation, type Transaction } from '@keel/platform/db';
import { isAppError } from '@keel/platform/errors';
import type { Principal } from '@keel/platform/http';
import type { Clock, IdGenerator } from '@keel/platform/module';
import { emitEvent } from '@keel/platform/outbox';
import { consultationNotFound } from '../access/access.errors.ts';
import { assertIsParticipant } from '../access/consultation-access.ts';
import { type RequestOrigin, recordClinicalAccess } from '../compliance/clinical-access.ts';
import type { TelemedicineDatabase, TelemedicineSchema } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import {
  prescriptionAlreadyIssued,
  prescriptionNotAllowed,
  prescriptionNotFound,
  prescriptionSuperseded,
} from './prescription.errors.ts';
import {
  findConsultationParties,
  findDoctorIdentity,
  findEncryptedPatientName,
  findPrescribingContext,
  findPrescription,
  insertPrescription,
  listPrescriptionsOfConsultation,
  updatePrescriptionSuperseded,
} from './prescription.repository.ts';
import {
  buildDocument,
  digestOf,
  isAuthentic,
  type Prescription,
  type PrescriptionContent,
  type PrescriptionDocument,
  parseDocument,
  type SignedPrescription,
  type StoredPrescription,
  signedBytesOf,
} from './prescription.ts';
import type {
  PrescriptionSigningKey,
  PrescriptionVerificationKey,
  SigningPublicJwk,
} from './prescription-signing-key.ts';

export type PrescriptionServiceDependencies = {
  db: TelemedicineDatabase;
  clock: Clock;
  ids: IdGenerator;
  encryption: FieldEncryption;
  signingKey: PrescriptionSigningKey;
  /** Public keys of earlier signing keys: what they signed still verifies. */
  retiredKeys?: readonly PrescriptionVerificationKey[];
};

export type PrescriptionService = ReturnType<typeof createPrescriptionService>;

/** What `verifyPrescription` tells anyone: validity, and for a valid one the issuer and whether it is current. */
export type VerificationResult =
  | { isValid: false }
  | {
      isValid: true;
      issuer: { fullName: string; registrationNumber: string };
      issuedAt: Date;
      isCurrent: boolean;
    };

/** A prescription with the patient's name, for the printed copy. */
export type PrintablePrescription = { prescription: Prescription; patientFullName: string };

const UNIQUE_CONSULTATION_VERSION = 'prescriptions_consultation_id_version_key';
const UNIQUE_SUPERSEDES = 'prescriptions_supersedes_id_key';
const TAMPERED_CIPHERTEXT_CODES: ReadonlySet<string> = new Set([
  'crypto.decrypt_failed',
  'crypto.malformed_ciphertext',
]);

function contentAad(prescriptionId: string): string {
  return fieldAad('telemedicine.prescriptions', 'content', prescriptionId);
}

export function createPrescriptionService(deps: PrescriptionServiceDependencies) {
  const { db, clock, ids, encryption, signingKey } = deps;
  const verificationKeys: readonly PrescriptionVerificationKey[] = [signingKey, ...(deps.retiredKeys ?? [])];
  const verificationKeysById = new Map(verificationKeys.map((key) => [key.kid, key]));

  function signAndEncrypt(document: PrescriptionDocument): SignedPrescription {
    const bytes = signedBytesOf(document);
    return {
      document,
      encryptedContent: encryption.encrypt(bytes.toString('utf8'), contentAad(document.id)),
      documentDigest: digestOf(bytes),
      signature: signingKey.sign(bytes),
      signingKeyId: signingKey.kid,
    };
  }

  function decryptDocument(stored: StoredPrescription): PrescriptionDocument {
    const document = parseDocument(encryption.decrypt(stored.encryptedContent, contentAad(stored.id)));
    if (document === undefined) throw new Error(`prescription ${stored.id} holds no prescription document`);
    return document;
  }

  function open(stored: StoredPrescription): Prescription {
    const { encryptedContent: _encrypted, ...rest } = stored;
    return { ...rest, document: decryptDocument(stored) };
  }

  /** Inserts the signed prescription, emits `prescription_issued` and audits the write, in `trx`. */
  async function recordIssued(
    trx: Transaction<TelemedicineSchema>,
    principal: Principal,
    signed: SignedPrescription,
    origin: RequestOrigin,
    issuedAt: Date,
  ): Promise<void> {
    const { document } = signed;
    await insertPrescription(trx, {
      id: document.id,
      consultationId: document.consultation_id,
      patientId: document.patient_id,
      doctorId: document.doctor.id,
      version: document.version,
      supersedesId: document.supersedes_id,
      encryptedContent: signed.encryptedContent,
      documentDigest: signed.documentDigest,
      signature: signed.signature,
      signingKeyId: signed.signingKeyId,
      issuedAt,
    });
    await emitEvent(
      trx,
      {
        type: PrescriptionIssuedV1.type,
        aggregateType: 'prescription',
        aggregateId: document.id,
        occurredAt: issuedAt,
        payload: {
          prescriptionId: document.id,
          consultationId: document.consultation_id,
          patientId: document.patient_id,
          doctorId: document.doctor.id,
          version: document.version,
          supersedesId: document.supersedes_id,
          issuedAt: document.issued_at,
        },
      },
      { definition: PrescriptionIssuedV1 },
    );
    await recordClinicalAccess(trx, {
      actor: principal,
      patientId: document.patient_id,
      operation: 'write',
      resource: 'prescription',
      resourceId: document.id,
      purpose: 'treatment',
      origin,
      occurredAt: issuedAt,
    });
  }

  function toIssued(signed: SignedPrescription, issuedAt: Date): Prescription {
    const { document } = signed;
    return {
      id: document.id,
      consultationId: document.consultation_id,
      patientId: document.patient_id,
      doctorId: document.doctor.id,
      version: document.version,
      supersedesId: document.supersedes_id,
      supersededById: null,
      status: 'ISSUED',
      documentDigest: signed.documentDigest,
      signature: signed.signature,
      signingKeyId: signed.signingKeyId,
      issuedAt,
      supersededAt: null,
      document,
    };
  }

  /** The stored prescription if the principal is one of its two participants; 404 for anyone else. */
  function assertIsPrescriptionParticipant(
    principal: Principal,
    stored: StoredPrescription | undefined,
    prescriptionId: string,
  ): { stored: StoredPrescription; relation: 'patient' | 'doctor' } {
    if (stored === undefined || principal.kind !== 'user') throw prescriptionNotFound(prescriptionId);
    if (principal.id === stored.patientId) return { stored, relation: 'patient' };
    if (principal.id === stored.doctorId) return { stored, relation: 'doctor' };
    throw prescriptionNotFound(prescriptionId);
  }

  async function auditRead(
    trx: Transaction<TelemedicineSchema>,
    principal: Principal,
    stored: StoredPrescription,
    relation: 'patient' | 'doctor',
    origin: RequestOrigin,
  ): Promise<void> {
    await recordClinicalAccess(trx, {
      actor: principal,
      patientId: stored.patientId,
      operation: 'read',
      resource: 'prescription',
      resourceId: stored.id,
      purpose: relation === 'doctor' ? 'treatment' : 'patient_access',
      origin,
      occurredAt: clock.now(),
    });
  }

  return {
    /**
     * Issues the consultation's prescription, as its doctor, while the
     * consultation is IN_PROGRESS or COMPLETED. One per consultation: a change
     * is a correction. Signed over the canonical document, stored encrypted.
     */
    async issuePrescription(
      principal: Principal,
      consultationId: string,
      content: PrescriptionContent,
      origin: RequestOrigin,
    ): Promise<Prescription> {
      const context = await db.run((kysely) => findPrescribingContext(kysely, consultationId));
      if (context === undefined || context.doctorId !== principal.id)
        throw consultationNotFound(consultationId);
      if (context.status !== 'IN_PROGRESS' && context.status !== 'COMPLETED') {
        throw prescriptionNotAllowed(context.status);
      }
      const issuedAt = clock.now();
      const signed = signAndEncrypt(
        buildDocument({
          id: ids.uuid(),
          version: 1,
          supersedesId: null,
          consultationId,
          patientId: context.patientId,
          issuedAt,
          doctor: {
            id: context.doctorId,
            fullName: context.doctorFullName,
            registrationNumber: context.registrationNumber,
          },
          content,
        }),
      );
      try {
        await db.transaction((trx) => recordIssued(trx, principal, signed, origin, issuedAt));
      } catch (error) {
        if (isUniqueViolation(error, UNIQUE_CONSULTATION_VERSION))
          throw prescriptionAlreadyIssued(consultationId);
        throw error;
      }
      return toIssued(signed, issuedAt);
    },

    /**
     * Replaces the current version with a corrected one, as its doctor: the
     * old row turns SUPERSEDED (the only change a prescription ever sees) and
     * the new one, version + 1, names it in `supersedes_id`. Of concurrent
     * corrections exactly one wins: the conditional update admits one, and
     * the unique `supersedes_id` would refuse a second insert regardless.
     */
    async correctPrescription(
      principal: Principal,
      prescriptionId: string,
      content: PrescriptionContent,
      origin: RequestOrigin,
    ): Promise<Prescription> {
      const current = await db.run((kysely) => findPrescription(kysely, prescriptionId));
      if (current === undefined || current.doctorId !== principal.id)
        throw prescriptionNotFound(prescriptionId);
      if (current.status !== 'ISSUED') throw prescriptionSuperseded(prescriptionId);
      const doctor = await db.run((kysely) => findDoctorIdentity(kysely, current.doctorId));
      if (doctor === undefined) throw new Error(`prescription ${prescriptionId} names a missing doctor`);

      const issuedAt = clock.now();
      const signed = signAndEncrypt(
        buildDocument({
          id: ids.uuid(),
          version: current.version + 1,
          supersedesId: current.id,
          consultationId: current.consultationId,
          patientId: current.patientId,
          issuedAt,
          doctor: { id: current.doctorId, ...doctor },
          content,
        }),
      );
      try {
        await db.transaction(async (trx) => {
          if (!(await updatePrescriptionSuperseded(trx, current.id, issuedAt))) {
            throw prescriptionSuperseded(prescriptionId);
          }
          await recordIssued(trx, principal, signed, origin, issuedAt);
        });
      } catch (error) {
        if (
          isUniqueViolation(error, UNIQUE_SUPERSEDES) ||
          isUniqueViolation(error, UNIQUE_CONSULTATION_VERSION)
        ) {
          throw prescriptionSuperseded(prescriptionId);
        }
        throw error;
      }
      return toIssued(signed, issuedAt);
    },

    async getPrescription(
      principal: Principal,
      prescriptionId: string,
      origin: RequestOrigin,
    ): Promise<Prescription> {
      return db.transaction(async (trx) => {
        const { stored, relation } = assertIsPrescriptionParticipant(
          principal,
          await findPrescription(trx, prescriptionId),
          prescriptionId,
        );
        await auditRead(trx, principal, stored, relation, origin);
        return open(stored);
      });
    },

    /** Every version of the consultation's prescription, oldest first; each one's read is audited. */
    async listConsultationPrescriptions(
      principal: Principal,
      consultationId: string,
      origin: RequestOrigin,
    ): Promise<Prescription[]> {
      return db.transaction(async (trx) => {
        const relation = assertIsParticipant(
          principal,
          await findConsultationParties(trx, consultationId),
          consultationId,
        );
        const stored = await listPrescriptionsOfConsultation(trx, consultationId);
        for (const prescription of stored) await auditRead(trx, principal, prescription, relation, origin);
        return stored.map(open);
      });
    },

    /** The prescription with the patient's (decrypted) name, for the PDF; the read is audited. */
    async getPrintablePrescription(
      principal: Principal,
      prescriptionId: string,
      origin: RequestOrigin,
    ): Promise<PrintablePrescription> {
      return db.transaction(async (trx) => {
        const { stored, relation } = assertIsPrescriptionParticipant(
          principal,
          await findPrescription(trx, prescriptionId),
          prescriptionId,
        );
        const encryptedName = await findEncryptedPatientName(trx, stored.patientId);
        if (encryptedName === undefined)
          throw new Error(`prescription ${prescriptionId} names a missing patient`);
        await auditRead(trx, principal, stored, relation, origin);
        return {
          prescription: open(stored),
          patientFullName: encryption.decrypt(
            encryptedName,
            fieldAad('telemedicine.patients', 'full_name', stored.patientId),
          ),
        };
      });
    },

    /**
     * Whether `signature` is the signature of prescription `prescriptionId`
     * and still verifies over its stored document. An unknown id and a wrong
     * signature answer the same, so the endpoint reveals no ids; nothing about
     * the patient or the content is returned.
     */
    async verifyPrescription(prescriptionId: string, signature: string): Promise<VerificationResult> {
      const stored = await db.run((kysely) => findPrescription(kysely, prescriptionId));
      if (stored === undefined || stored.signature !== signature) return { isValid: false };
      const key = verificationKeysById.get(stored.signingKeyId);
      if (key === undefined) return { isValid: false };
      let plaintext: string;
      try {
        plaintext = encryption.decrypt(stored.encryptedContent, contentAad(stored.id));
      } catch (error) {
        // Altered ciphertext fails authentication: that is an invalid prescription. A
        // missing key (crypto.unknown_key) is our fault and stays a 500.
        if (isAppError(error) && TAMPERED_CIPHERTEXT_CODES.has(error.code)) return { isValid: false };
        throw error;
      }
      const document = parseDocument(plaintext);
      if (document === undefined || !isAuthentic(stored, document, key.verify)) return { isValid: false };
      return {
        isValid: true,
        issuer: {
          fullName: document.doctor.full_name,
          registrationNumber: document.doctor.registration_number,
        },
        issuedAt: stored.issuedAt,
        isCurrent: stored.status === 'ISSUED',
      };
    },

    /** The current key first, then the retired ones. */
    listSigningKeys(): SigningPublicJwk[] {
      return verificationKeys.map((key) => key.publicJwk);
    },
  };
}
