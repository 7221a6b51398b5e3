import { LIST_LIMIT_MAX, listAuditEvents } from '@keel/platform/audit';
import type { FieldEncryption } from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { Clock, IdGenerator, JobSender } from '@keel/platform/module';
import { patientProfileRequired } from '../access/access.errors.ts';
import type { TelemedicineDatabase } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import { PATIENT_RECORD_RESOURCE_TYPE, type RequestOrigin, recordClinicalAccess } from './clinical-access.ts';
import { exportNotFound } from './compliance.errors.ts';
import {
  findConsentsPage,
  findDataExportArchive,
  findDataExportOfPatient,
  findReusableDataExport,
  insertDataExport,
  lockPatient,
} from './compliance.repository.ts';
import {
  type AccessLogEntry,
  type AccessLogPage,
  assertArchiveDownloadable,
  type ConsentPage,
  type DataExport,
  type DataExportState,
  decodeConsentCursor,
  EXPORT_DATA_QUEUE,
  EXPORT_REUSE_WINDOW_MS,
  type ExportDataJob,
  encodeConsentCursor,
  stateOf,
  toAccessLogEntry,
} from './compliance.ts';

export type AccessLogQuery = { from?: Date; to?: Date; limit: number; cursor?: string };

/**
 * One page of a patient's access log, newest first: the audit events filed
 * under their record by `recordClinicalAccess`. The cursor is the audit
 * log's own (400 `audit.invalid_cursor` for a forged one); the filter is
 * always re-applied, so a cursor cannot widen what a page shows.
 */
export async function readAccessLogPage(
  database: Database,
  patientId: string,
  query: AccessLogQuery,
): Promise<AccessLogPage> {
  const page = await listAuditEvents(database, {
    resourceType: PATIENT_RECORD_RESOURCE_TYPE,
    resourceId: patientId,
    limit: query.limit,
    ...(query.from === undefined ? {} : { from: query.from }),
    ...(query.to === undefined ? {} : { to: query.to }),
    ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
  });
  return { entries: page.events.map(toAccessLogEntry), nextCursor: page.nextCursor };
}

/** The whole access log of a patient, newest first, for the data export. */
export async function readWholeAccessLog(database: Database, patientId: string): Promise<AccessLogEntry[]> {
  const entries: AccessLogEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await readAccessLogPage(database, patientId, {
      limit: LIST_LIMIT_MAX,
      ...(cursor === undefined ? {} : { cursor }),
    });
    entries.push(...page.entries);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return entries;
}

export type ComplianceServiceDeps = {
  db: TelemedicineDatabase;
  /** The platform database, for the audit log the access log is read from. */
  database: Database;
  encryption: FieldEncryption;
  clock: Clock;
  ids: IdGenerator;
  jobs: JobSender;
};

export type DataExportView = { dataExport: DataExport; state: DataExportState };

export type ComplianceService = {
  readOwnAccessLog(principal: Principal, query: AccessLogQuery): Promise<AccessLogPage>;
  /** The pending or just-finished export, or a new one; `isNew` tells which. */
  exportOwnData(principal: Principal): Promise<DataExportView & { isNew: boolean }>;
  getOwnDataExport(principal: Principal, exportId: string): Promise<DataExportView>;
  /** The decrypted archive (JSON text), audited as a read of the patient's record. */
  downloadOwnDataExport(
    principal: Principal,
    exportId: string,
    origin: RequestOrigin,
  ): Promise<{ dataExport: DataExport; archive: string }>;
  listOwnConsents(principal: Principal, query: { limit: number; cursor?: string }): Promise<ConsentPage>;
};

export function createComplianceService(deps: ComplianceServiceDeps): ComplianceService {
  const { db, clock } = deps;
  return {
    readOwnAccessLog(principal, query) {
      return readAccessLogPage(deps.database, principal.id, query);
    },

    async exportOwnData(principal) {
      const result = await db.transaction(async (trx) => {
        if (!(await lockPatient(trx, principal.id))) throw patientProfileRequired();
        // Under the patient lock, so concurrent requests see each other's
        // export. A READY one counts too while it is recent: a burst of
        // requests must not start a second export just because the job
        // finished the first between two of them.
        const now = clock.now();
        const reusable = await findReusableDataExport(trx, principal.id, {
          now,
          recentSince: new Date(now.getTime() - EXPORT_REUSE_WINDOW_MS),
        });
        if (reusable !== undefined) return { dataExport: reusable, isNew: false };
        const dataExport = await insertDataExport(trx, {
          id: deps.ids.uuid(),
          patientId: principal.id,
          requestedAt: now,
        });
        await deps.jobs.sendWith<ExportDataJob>(trx, EXPORT_DATA_QUEUE, { exportId: dataExport.id });
        return { dataExport, isNew: true };
      });
      return { ...result, state: stateOf(result.dataExport, clock.now()) };
    },

    async getOwnDataExport(principal, exportId) {
      const dataExport = await db.run((handle) => findDataExportOfPatient(handle, exportId, principal.id));
      if (dataExport === undefined) throw exportNotFound(exportId);
      return { dataExport, state: stateOf(dataExport, clock.now()) };
    },

    async downloadOwnDataExport(principal, exportId, origin) {
      return db.transaction(async (trx) => {
        const found = await findDataExportArchive(trx, exportId, principal.id);
        if (found === undefined) throw exportNotFound(exportId);
        const now = clock.now();
        assertArchiveDownloadable(found.dataExport, found.archive !== null, now);
        const archive = deps.encryption.decrypt(
          found.archive ?? '',
          fieldAad('telemedicine.data_exports', 'archive', exportId),
        );
        // Audited in the transaction that read it: no audit row, no archive.
        await recordClinicalAccess(trx, {
          actor: principal,
          patientId: principal.id,
          operation: 'read',
          resource: 'data_export',
          resourceId: exportId,
          purpose: 'patient_access',
          origin,
          occurredAt: now,
        });
        return { dataExport: found.dataExport, archive };
      });
    },

    async listOwnConsents(principal, query) {
      const after = query.cursor === undefined ? undefined : decodeConsentCursor(query.cursor);
      // One extra row tells whether another page exists without a count.
      const rows = await db.run((handle) => findConsentsPage(handle, principal.id, after, query.limit + 1));
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return {
        consents: page.map((row) => row.consent),
        nextCursor: rows.length > query.limit && last !== undefined ? encodeConsentCursor(last.cursor) : null,
      };
    },
  };
}
