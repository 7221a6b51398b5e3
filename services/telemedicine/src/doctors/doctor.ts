import { assertNever } from '@keel/platform/errors';
import {
  decodeTimeIdCursor,
  encodeTimeIdCursor,
  parseIfMatchVersion,
  type TimeIdCursor,
} from '@keel/platform/http';
import type { DoctorStatus } from '../database.ts';
import {
  doctorAlreadySuspended,
  doctorAlreadyVerified,
  invalidCurrency,
  invalidCursor,
  invalidIfMatch,
  invalidLanguages,
  invalidTimeZone,
  versionMismatch,
} from './doctor.errors.ts';

export type { DoctorStatus } from '../database.ts';

/** A doctor's profile. The id is the doctor's platform account id. */
export type Doctor = {
  id: string;
  fullName: string;
  specialties: string[];
  languages: string[];
  qualifications: string[];
  registrationNumber: string;
  yearsOfExperience: number;
  feeMinor: number;
  currency: string;
  bio: string;
  timeZone: string;
  status: DoctorStatus;
  verifiedAt: Date | null;
  verifiedBy: string | null;
  /** The average review rating, two decimals; null before the first review. */
  rating: number | null;
  ratingCount: number;
  nextAvailableAt: Date | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
};

/** What `PUT /doctors/me` sets. */
export type DoctorProfileInput = {
  fullName: string;
  specialties: string[];
  languages: string[];
  qualifications: string[];
  registrationNumber: string;
  yearsOfExperience: number;
  feeMinor: number;
  currency: string;
  bio: string;
  timeZone: string;
};

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone });
    return true;
  } catch {
    return false;
  }
}

// ICU knows every ISO 639-1 code by name; with fallback 'none' an unknown code has none.
const languageNames = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'none' });
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

export function isLanguageCode(code: string): boolean {
  return /^[a-z]{2}$/.test(code) && languageNames.of(code) !== undefined;
}

export function isCurrencyCode(code: string): boolean {
  return CURRENCIES.has(code);
}

/** The checks the request schema cannot express: real zones, languages and currencies. */
export function assertValidDoctorProfile(input: DoctorProfileInput): void {
  if (!isValidTimeZone(input.timeZone)) throw invalidTimeZone();
  const unknownLanguages = input.languages
    .map((code, index) => ({ code, index }))
    .filter((language) => !isLanguageCode(language.code))
    .map((language) => language.index);
  if (unknownLanguages.length > 0) throw invalidLanguages(unknownLanguages);
  if (!isCurrencyCode(input.currency)) throw invalidCurrency();
}

/**
 * The status after a profile edit. Verification vouches for the registration
 * number: changing it sends a verified doctor back to review. A suspension
 * stands whatever the doctor edits.
 */
export function statusAfterProfileChange(current: Doctor, input: DoctorProfileInput): DoctorStatus {
  const isRegistrationChanged = current.registrationNumber !== input.registrationNumber;
  switch (current.status) {
    case 'VERIFIED':
      return isRegistrationChanged ? 'PENDING' : 'VERIFIED';
    case 'PENDING':
    case 'SUSPENDED':
      return current.status;
    default:
      return assertNever(current.status);
  }
}

export type VerificationAction = 'verify' | 'suspend';

/**
 * Verification moves: PENDING or SUSPENDED → VERIFIED (verifying a suspended
 * doctor reinstates them); PENDING or VERIFIED → SUSPENDED.
 */
export function assertVerificationMove(id: string, status: DoctorStatus, action: VerificationAction): void {
  switch (action) {
    case 'verify':
      if (status === 'VERIFIED') throw doctorAlreadyVerified(id);
      return;
    case 'suspend':
      if (status === 'SUSPENDED') throw doctorAlreadySuspended(id);
      return;
    default:
      assertNever(action);
  }
}

export function targetStatusOf(action: VerificationAction): DoctorStatus {
  switch (action) {
    case 'verify':
      return 'VERIFIED';
    case 'suspend':
      return 'SUSPENDED';
    default:
      return assertNever(action);
  }
}

/** The version `If-Match` names, `'*'`, or undefined when absent. */
export function parseIfMatch(header: string | undefined): number | '*' | undefined {
  return parseIfMatchVersion(header, invalidIfMatch, { isWeakAccepted: true });
}

/** Any `If-Match` on a missing profile fails: the client expected one to exist. */
export function assertIfMatch(expected: number | '*' | undefined, current: number | undefined): void {
  if (expected === undefined) return;
  if (current === undefined) throw versionMismatch(null);
  if (expected !== '*' && expected !== current) throw versionMismatch(current);
}

/**
 * A position in a listing keyed by (timestamp, uuid). `at` is the timestamp at
 * full database precision (microseconds, UTC): a millisecond JavaScript Date
 * would skip rows written within the same millisecond.
 */
export type KeysetCursor = TimeIdCursor;

/** Opaque to clients: base64url of the last item's sort key. */
export const encodeCursor = encodeTimeIdCursor;

/** Throws `telemedicine.invalid_cursor` for anything `encodeCursor` did not produce. */
export function decodeCursor(value: string): KeysetCursor {
  const cursor = decodeTimeIdCursor(value);
  if (cursor === undefined) throw invalidCursor();
  return cursor;
}
