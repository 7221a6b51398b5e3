import { isIP } from 'node:net';
import { invalidCursor } from './audit.errors.ts';
import { redactChanges } from './audit.redact.ts';

export type AuditActorType = 'user' | 'api_key' | 'system' | 'anonymous';
export type AuditOutcome = 'success' | 'failure' | 'denied';

/** What a service records; see `recordAuditEvent`. */
export type AuditEventInput = {
  actorType: AuditActorType;
  /** Required for `user` and `api_key` actors (a database constraint enforces it). */
  actorId?: string | null;
  /** `<area>.<verb_past>`, lower snake case segments: `auth.login_succeeded`, `users.email_changed`. */
  action: string;
  resourceType: string;
  resourceId?: string | null;
  outcome: AuditOutcome;
  requestId?: string | null;
  /** The client address; anything that is not an IP address is dropped rather than failing the write. */
  ip?: string | null;
  /** Truncated to `USER_AGENT_MAX_LENGTH`. */
  userAgent?: string | null;
  /** A change summary (`{ email: { from, to } }`); always redacted before it is stored. */
  changes?: Record<string, unknown> | null;
  /** Keys to mask in `changes` on top of the built-in sensitive ones. */
  redactKeys?: readonly string[];
  /** When it happened; defaults to the transaction's `now()`. Pass the service clock to keep time injectable. */
  occurredAt?: Date;
};

/** A stored audit event as the list returns it. */
export type AuditEvent = {
  id: string;
  occurredAt: Date;
  actorType: AuditActorType;
  actorId: string | null;
  action: string;
  resourceType: string;
  resourceId: string | null;
  outcome: AuditOutcome;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  changes: Record<string, unknown> | null;
};

/** What the list may filter on; every filter is optional and they combine with AND. */
export type AuditEventFilters = {
  actorId?: string;
  resourceType?: string;
  resourceId?: string;
  action?: string;
  /** Inclusive lower bound on `occurredAt`. */
  from?: Date;
  /** Exclusive upper bound on `occurredAt`. */
  to?: Date;
};

export type AuditEventQuery = AuditEventFilters & {
  /** 1 to `LIST_LIMIT_MAX`. */
  limit: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
};

export type AuditEventPage = { events: AuditEvent[]; nextCursor: string | null };

/** The row `insertAuditEvent` writes: an `AuditEventInput` made safe to store. */
export type AuditEventRow = Omit<AuditEvent, 'id' | 'occurredAt'> & { occurredAt: Date | undefined };

export const USER_AGENT_MAX_LENGTH = 512;
export const REQUEST_ID_MAX_LENGTH = 200;
export const LIST_LIMIT_MAX = 500;

/**
 * Turns caller input into a row that cannot fail the caller's transaction for
 * reasons outside the caller's control: client-supplied text (user agent,
 * address, request id) is truncated, validated or dropped, and NUL characters,
 * which Postgres text and jsonb reject, are replaced. Programming errors (an
 * unknown actor type, a malformed action) still fail on the table's CHECK
 * constraints.
 */
export function toAuditEventRow(input: AuditEventInput): AuditEventRow {
  return {
    occurredAt: input.occurredAt,
    actorType: input.actorType,
    actorId: cleanText(input.actorId),
    action: input.action,
    resourceType: input.resourceType,
    resourceId: cleanText(input.resourceId),
    outcome: input.outcome,
    requestId: truncate(cleanText(input.requestId), REQUEST_ID_MAX_LENGTH),
    ip: toIpAddress(input.ip),
    userAgent: truncate(cleanText(input.userAgent), USER_AGENT_MAX_LENGTH),
    changes:
      input.changes === undefined || input.changes === null
        ? null
        : redactChanges(input.changes, { keys: input.redactKeys }),
  };
}

function cleanText(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const cleaned = value.replaceAll('\u0000', '\uFFFD');
  return cleaned.length === 0 ? null : cleaned;
}

function truncate(value: string | null, maxLength: number): string | null {
  if (value === null || value.length <= maxLength) return value;
  // UTF-16 units, so the result is within the database's limit in code points
  // too; a cut that leaves half a surrogate pair drops that half.
  const cut = value.slice(0, maxLength);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

function toIpAddress(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const trimmed = value.trim();
  // Postgres inet accepts no IPv6 zone index (`fe80::1%eth0`).
  return isIP(trimmed) === 0 || trimmed.includes('%') ? null : trimmed;
}

/** Where a page ends: the last event's exact (microsecond) time and id. */
export type AuditCursor = { occurredAt: string; id: string };

// Microsecond precision, UTC, as the repository formats it: a JavaScript Date
// (milliseconds) would repeat or skip events that share a millisecond.
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const CURSOR_ID = /^[1-9]\d{0,18}$/;

export function encodeCursor(cursor: AuditCursor): string {
  return Buffer.from(JSON.stringify([cursor.occurredAt, cursor.id]), 'utf8').toString('base64url');
}

/** Throws 400 `audit.invalid_cursor` for anything `encodeCursor` did not produce. */
export function decodeCursor(value: string): AuditCursor {
  // A real cursor is about 60 characters; refuse to decode anything much larger.
  if (value.length > 200) throw invalidCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw invalidCursor();
  const [occurredAt, id] = parsed as unknown[];
  if (typeof occurredAt !== 'string' || !CURSOR_TIME.test(occurredAt)) throw invalidCursor();
  if (typeof id !== 'string' || !CURSOR_ID.test(id) || BigInt(id) > 9_223_372_036_854_775_807n) {
    throw invalidCursor();
  }
  // Date.parse accepts 2025-02-30 (as March 2nd); only a round trip proves the date exists.
  const milliseconds = `${occurredAt.slice(0, 23)}Z`;
  const date = new Date(milliseconds);
  if (Number.isNaN(date.getTime()) || date.toISOString() !== milliseconds) throw invalidCursor();
  return { occurredAt, id };
}
