import type { AuditActorType, AuditEvent } from '@keel/platform/audit';
import { assertNever } from '@keel/platform/errors';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '@keel/platform/http';
import type { ConsentsTable, DataExportsTable } from '../database.ts';
import { exportExpired, exportFailed, exportNotReady, invalidCursor } from './compliance.errors.ts';

// The compliance feature's types and rules, free of I/O: what a patient's
// access log entry says, when a data export may be downloaded, and the
// consents list's cursor.

/** One read or write of the patient's record, as the patient sees it. */
export type AccessLogEntry = {
  occurredAt: Date;
  actorId: string | null;
  actorType: AuditActorType;
  actorRoles: string[];
  action: string;
  /** What was touched (`consultation`, `prescription`…), from `recordClinicalAccess`. */
  resource: string | null;
  resourceId: string | null;
  purpose: string | null;
  operation: 'read' | 'write' | null;
};

export type AccessLogPage = { entries: AccessLogEntry[]; nextCursor: string | null };

function textOf(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * An audit event filed under the patient's record, as an access log entry.
 * `changes` is written by `recordClinicalAccess`; the checks keep a malformed
 * row (another writer, an older format) from failing the whole page.
 */
export function toAccessLogEntry(event: AuditEvent): AccessLogEntry {
  const changes = event.changes ?? {};
  const roles = changes.actor_roles;
  const operation = changes.operation;
  return {
    occurredAt: event.occurredAt,
    actorId: event.actorId,
    actorType: event.actorType,
    actorRoles: Array.isArray(roles) ? roles.filter((role): role is string => typeof role === 'string') : [],
    action: event.action,
    resource: textOf(changes.resource),
    resourceId: textOf(changes.resource_id),
    purpose: textOf(changes.purpose),
    operation: operation === 'read' || operation === 'write' ? operation : null,
  };
}

export type DataExportStatus = DataExportsTable['status'];

export type DataExport = {
  id: string;
  patientId: string;
  status: DataExportStatus;
  requestedAt: Date;
  completedAt: Date | null;
  expiresAt: Date | null;
};

/** What a client sees: a READY export past its expiry is EXPIRED (its archive is gone or going). */
export type DataExportState = DataExportStatus | 'EXPIRED';

/** The queue whose job builds an export's archive. */
export const EXPORT_DATA_QUEUE = 'telemedicine.export-data';
/**
 * How long a READY export answers a new request instead of a fresh one:
 * long enough to absorb a double click or a client's retry burst, short
 * enough that a patient asking again after a change gets the change.
 */
export const EXPORT_REUSE_WINDOW_MS = 60_000;
export type ExportDataJob = { exportId: string };

/** How long a READY archive may be downloaded before it is erased. */
export const DATA_EXPORT_TTL_DAYS = 7;

const DAY_MS = 86_400_000;

export function expiryOf(completedAt: Date): Date {
  return new Date(completedAt.getTime() + DATA_EXPORT_TTL_DAYS * DAY_MS);
}

export function stateOf(dataExport: DataExport, now: Date): DataExportState {
  if (
    dataExport.status === 'READY' &&
    dataExport.expiresAt !== null &&
    now.getTime() >= dataExport.expiresAt.getTime()
  ) {
    return 'EXPIRED';
  }
  return dataExport.status;
}

/**
 * Throws unless the archive may be downloaded now: 409 while PENDING or after
 * it FAILED, 404 `telemedicine.export_expired` once expired or erased.
 */
export function assertArchiveDownloadable(dataExport: DataExport, hasArchive: boolean, now: Date): void {
  const state = stateOf(dataExport, now);
  switch (state) {
    case 'PENDING':
      throw exportNotReady(dataExport.id);
    case 'FAILED':
      throw exportFailed(dataExport.id);
    case 'EXPIRED':
      throw exportExpired(dataExport.id);
    case 'READY':
      // The purge job may have erased it between the clock tick and this read.
      if (!hasArchive) throw exportExpired(dataExport.id);
      return;
    default:
      assertNever(state);
  }
}

export type Consent = {
  id: string;
  consultationId: string;
  kind: ConsentsTable['kind'];
  version: string;
  givenAt: Date;
};

export type ConsentPage = { consents: Consent[]; nextCursor: string | null };

/** Where a consents page ends: the last consent's exact (microsecond, UTC) time and id. */
export type ConsentCursor = { givenAt: string; id: string };

/** Opaque to clients: base64url of the last item's sort key. */
export function encodeConsentCursor(cursor: ConsentCursor): string {
  return encodeTimeIdCursor({ at: cursor.givenAt, id: cursor.id });
}

/** Throws `telemedicine.invalid_cursor` for anything `encodeConsentCursor` did not produce. */
export function decodeConsentCursor(value: string): ConsentCursor {
  const cursor = decodeTimeIdCursor(value);
  if (cursor === undefined) throw invalidCursor();
  return { givenAt: cursor.at, id: cursor.id };
}
