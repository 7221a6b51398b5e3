import type { FieldEncryption } from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import { isRetryableJobError, type JobQueueDefinition } from '@keel/platform/jobs';
import type { Clock } from '@keel/platform/module';
import type { Notifier } from '@keel/platform/notifier';
import { patientProfileRequired } from '../access/access.errors.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import { recordClinicalAccess } from './clinical-access.ts';
import { exportNotFound } from './compliance.errors.ts';
import { findDataExport, updateDataExportFailed, updateDataExportReady } from './compliance.repository.ts';
import { readWholeAccessLog } from './compliance.service.ts';
import { EXPORT_DATA_QUEUE, type ExportDataJob, expiryOf } from './compliance.ts';
import {
  findAllConsents,
  findConsultationRecords,
  findPatientRecord,
  findPaymentRecords,
  findPrescriptionRecords,
  findRefundRecords,
  findReviewRecords,
} from './data-export-archive.repository.ts';
import { buildExportArchive } from './data-export-archive.ts';

export const EXPORT_DATA_RETRY_LIMIT = 5;
export const DATA_EXPORT_READY_TEMPLATE = 'telemedicine.data_export_ready';

export type ExportDataDeps = {
  db: TelemedicineDatabase;
  /** The platform database, for the access log (the audit log) that goes into the archive. */
  database: Database;
  encryption: FieldEncryption;
  clock: Clock;
  notifier: Notifier;
};

/**
 * The patient as the actor of the export's audit row: the export runs on the
 * patient's request, in the background, with no session of its own.
 */
function patientActor(patientId: string): Principal {
  return {
    id: patientId,
    kind: 'user',
    roles: ['telemedicine:patient'],
    permissions: new Set(),
    isMfaAuthenticated: false,
  };
}

/**
 * The `telemedicine.export-data` queue: one job per data export. It reads
 * everything held about the patient, decrypts it into one JSON archive,
 * stores that field-encrypted with the export READY (and the read audited)
 * in one transaction, then tells the patient. A rerun of a READY export only
 * repeats the notification (the first may be what failed); an attempt that
 * fails for good (the last retry, or a non-retryable error) marks it FAILED.
 */
export function createExportDataQueue(deps: ExportDataDeps): JobQueueDefinition<ExportDataJob> {
  const { db, clock } = deps;

  async function buildArchive(exportId: string, patientId: string): Promise<string> {
    const patient = await db.run((handle) => findPatientRecord(handle, patientId));
    if (patient === undefined) throw patientProfileRequired();
    // One query at a time: an export is background work and must not take the pool from requests.
    const consultations = await db.run((handle) => findConsultationRecords(handle, patientId));
    const prescriptions = await db.run((handle) => findPrescriptionRecords(handle, patientId));
    const payments = await db.run((handle) => findPaymentRecords(handle, patientId));
    const refunds = await db.run((handle) => findRefundRecords(handle, patientId));
    const reviews = await db.run((handle) => findReviewRecords(handle, patientId));
    const consents = await db.run((handle) => findAllConsents(handle, patientId));
    const accessLog = await readWholeAccessLog(deps.database, patientId);
    const archive = buildExportArchive(
      {
        exportId,
        generatedAt: clock.now(),
        patient,
        consultations,
        prescriptions,
        payments,
        refunds,
        reviews,
        consents,
        accessLog,
      },
      (ciphertext, aad) => deps.encryption.decrypt(ciphertext, aad),
    );
    return JSON.stringify(archive);
  }

  async function completeExport(exportId: string, patientId: string): Promise<void> {
    const archive = await buildArchive(exportId, patientId);
    const encrypted = deps.encryption.encrypt(
      archive,
      fieldAad('telemedicine.data_exports', 'archive', exportId),
    );
    await db.transaction(async (trx) => {
      const completedAt = clock.now();
      const isStored = await updateDataExportReady(trx, exportId, {
        archive: encrypted,
        completedAt,
        expiresAt: expiryOf(completedAt),
      });
      // Another run got there first and audited its own read.
      if (!isStored) return;
      await recordClinicalAccess(trx, {
        actor: patientActor(patientId),
        patientId,
        operation: 'read',
        resource: 'data_export',
        resourceId: exportId,
        purpose: 'data_export',
        occurredAt: completedAt,
      });
    });
  }

  return {
    name: EXPORT_DATA_QUEUE,
    retryLimit: EXPORT_DATA_RETRY_LIMIT,
    retryDelaySeconds: 5,
    retryBackoff: true,
    retryDelayMaxSeconds: 5 * 60,
    deadLetter: true,
    // Each export holds one patient's whole record in memory: a few at a time.
    concurrency: 2,
    handler: async (job) => {
      const { exportId } = job.data;
      const dataExport = await db.run((handle) => findDataExport(handle, exportId));
      if (dataExport === undefined) throw exportNotFound(exportId);
      if (dataExport.status === 'FAILED') return;
      if (dataExport.status === 'PENDING') {
        try {
          await completeExport(exportId, dataExport.patientId);
        } catch (error) {
          const isFinal = !isRetryableJobError(error) || job.retryCount >= EXPORT_DATA_RETRY_LIMIT;
          if (isFinal) await db.run((handle) => updateDataExportFailed(handle, exportId, clock.now()));
          throw error;
        }
      }
      // At least once: a rerun after a failed notification notifies again.
      await deps.notifier.send({
        to: dataExport.patientId,
        template: DATA_EXPORT_READY_TEMPLATE,
        data: { exportId },
      });
    },
  };
}
