import { createHash } from 'node:crypto';
import { assertNever } from '@keel/platform/errors';
import { addDays, canonicalTimeZone, startOfLocalDate } from '../availability/time-zone.ts';
import {
  invalidCursor,
  invalidFeeRange,
  invalidTimeZone,
  sortRequiresQuery,
} from './doctor-search.errors.ts';

export const DOCTOR_SEARCH_SORTS = ['relevance', 'fee', 'rating', 'next_available'] as const;
export type DoctorSearchSort = (typeof DOCTOR_SEARCH_SORTS)[number];

/** The search as the API received it (camelCase, already schema-validated). */
export type DoctorSearchInput = {
  text?: string;
  specialty?: string;
  language?: string;
  feeMin?: number;
  feeMax?: number;
  currency?: string;
  minRating?: number;
  availableOn?: string;
  timeZone?: string;
  availableWithinDays?: number;
  sort?: DoctorSearchSort;
  limit: number;
  cursor?: string;
};

/**
 * The search with every equivalent spelling reduced to one: the cache key and
 * the cursor's filter hash are computed from it, so `q=Smith` and
 * `q=%20smith` share a cache entry and a cursor.
 */
export type DoctorSearchCriteria = {
  text: string | null;
  specialty: string | null;
  language: string | null;
  feeMin: number | null;
  feeMax: number | null;
  currency: string | null;
  minRating: number | null;
  /** A local date and the IANA zone it is in (only set together). */
  availableOn: { day: string; timeZone: string } | null;
  availableWithinDays: number | null;
  sort: DoctorSearchSort;
};

/** Where the previous page ended: its last row's sort key (as text) and id. */
export type DoctorSearchPosition = { key: string | null; id: string };

export type DoctorSearchItem = {
  id: string;
  fullName: string;
  specialties: string[];
  languages: string[];
  yearsOfExperience: number;
  feeMinor: number;
  currency: string;
  rating: number | null;
  ratingCount: number;
  /** ISO 8601; a string rather than a Date so a page round-trips through the cache unchanged. */
  nextAvailableAt: string | null;
  bioExcerpt: string;
};

export type DoctorSearchPage = { items: DoctorSearchItem[]; nextCursor: string | null };

/** A half-open interval in which a doctor must have an OPEN slot starting. */
export type SlotWindow = { from: Date; to: Date };

export const BIO_EXCERPT_MAX_CHARS = 200;
const ELLIPSIS = '…';
const CURSOR_VERSION = 1;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MICROSECOND_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const DECIMAL = /^\d{1,12}(\.\d{1,12})?$/;
const INTEGER = /^\d{1,15}$/;
const DAY_MS = 86_400_000;

/**
 * Validates what the schema cannot (a range, a zone, a sort that needs text)
 * and reduces the input to its canonical criteria.
 */
export function normaliseSearch(input: DoctorSearchInput): DoctorSearchCriteria {
  // Full text and trigram matching both ignore case and runs of spaces.
  const text = input.text?.trim().replace(/\s+/g, ' ').toLowerCase() || null;
  if (input.feeMin !== undefined && input.feeMax !== undefined && input.feeMin > input.feeMax) {
    throw invalidFeeRange();
  }
  if (input.sort === 'relevance' && text === null) throw sortRequiresQuery();
  const timeZone = canonicalTimeZone(input.timeZone ?? 'UTC');
  if (timeZone === undefined) throw invalidTimeZone(input.timeZone ?? '');
  return {
    text,
    specialty: input.specialty?.trim().toLowerCase() || null,
    language: input.language?.toLowerCase() ?? null,
    feeMin: input.feeMin ?? null,
    feeMax: input.feeMax ?? null,
    currency: input.currency ?? null,
    minRating: input.minRating ?? null,
    availableOn: input.availableOn === undefined ? null : { day: input.availableOn, timeZone },
    availableWithinDays: input.availableWithinDays ?? null,
    sort: input.sort ?? (text === null ? 'next_available' : 'relevance'),
  };
}

/**
 * Hash of everything that decides which rows a search returns and in which
 * order (not the page size): a cursor carries it, so a cursor from one search
 * is refused by another instead of silently skipping or repeating rows.
 */
export function filtersHashOf(criteria: DoctorSearchCriteria): string {
  return sha256(JSON.stringify(criteria)).slice(0, 16);
}

/** The whole request, canonical: what one cached page answers. */
export function fingerprintOf(criteria: DoctorSearchCriteria, limit: number, cursor: string | null): string {
  return JSON.stringify({ criteria, limit, cursor });
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

export function encodeCursor(criteria: DoctorSearchCriteria, position: DoctorSearchPosition): string {
  const body = {
    v: CURSOR_VERSION,
    s: criteria.sort,
    h: filtersHashOf(criteria),
    k: position.key,
    i: position.id,
  };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/**
 * Throws `telemedicine.invalid_cursor` for anything `encodeCursor` did not
 * produce for these same criteria (another sort, other filters, tampering).
 */
export function decodeCursor(value: string, criteria: DoctorSearchCriteria): DoctorSearchPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalidCursor();
  const { v, s, h, k, i } = parsed as Record<string, unknown>;
  if (v !== CURSOR_VERSION || s !== criteria.sort || h !== filtersHashOf(criteria)) throw invalidCursor();
  if (typeof i !== 'string' || !UUID.test(i)) throw invalidCursor();
  if (k !== null && (typeof k !== 'string' || !isSortKey(criteria.sort, k))) throw invalidCursor();
  // Fee and relevance are never null; only rating and next availability sort nulls last.
  if (k === null && (criteria.sort === 'fee' || criteria.sort === 'relevance')) throw invalidCursor();
  return { key: k, id: i };
}

function isSortKey(sort: DoctorSearchSort, key: string): boolean {
  switch (sort) {
    case 'relevance':
    case 'rating':
      return DECIMAL.test(key);
    case 'fee':
      return INTEGER.test(key);
    case 'next_available':
      return MICROSECOND_TIMESTAMP.test(key) && !Number.isNaN(Date.parse(key));
    default:
      return assertNever(sort);
  }
}

/**
 * The windows a doctor needs an OPEN slot in: the local day of `available_on`
 * (from now on, if that day is today) and the next `available_within_days`
 * days. Both may apply at once; each is its own condition.
 */
export function slotWindowsOf(criteria: DoctorSearchCriteria, now: Date): SlotWindow[] {
  const windows: SlotWindow[] = [];
  if (criteria.availableOn !== null) {
    const { day, timeZone } = criteria.availableOn;
    const start = new Date(startOfLocalDate(day, timeZone));
    const end = new Date(startOfLocalDate(addDays(day, 1), timeZone));
    // A slot that already started cannot be booked: today means "from now".
    windows.push({ from: start < now ? now : start, to: end });
  }
  if (criteria.availableWithinDays !== null) {
    windows.push({ from: now, to: new Date(now.getTime() + criteria.availableWithinDays * DAY_MS) });
  }
  return windows;
}

/**
 * At most BIO_EXCERPT_MAX_CHARS characters (code points, as Postgres counts
 * them), cut at a word boundary with an ellipsis when the bio is longer.
 */
export function bioExcerptOf(bio: string): string {
  // Line breaks become spaces one for one: the length decides whether the
  // bio was cut (the repository reads one character more than the excerpt).
  const characters = Array.from(bio.replace(/\s/g, ' '));
  if (characters.length <= BIO_EXCERPT_MAX_CHARS) return characters.join('').trim();
  const head = characters.slice(0, BIO_EXCERPT_MAX_CHARS - ELLIPSIS.length).join('');
  const lastSpace = head.lastIndexOf(' ');
  // A single 199-character word is cut mid-word rather than dropped.
  const cut = lastSpace > BIO_EXCERPT_MAX_CHARS / 2 ? head.slice(0, lastSpace) : head;
  return `${cut.trimEnd()}${ELLIPSIS}`;
}
