import type { FieldEncryption } from '@keel/platform/crypto';
import { parseIfMatchVersion } from '@keel/platform/http';
import type { PatientsTable } from '../database.ts';
import { fieldAad } from '../encrypted-columns.ts';
import { invalidDateOfBirth, invalidIfMatch, versionMismatch } from './patient.errors.ts';

export type Sex = PatientsTable['sex'];

export type EmergencyContact = { name: string; phone: string; relationship: string };

/** A patient's profile, decrypted. The id is the patient's platform account id. */
export type PatientProfile = {
  id: string;
  fullName: string;
  dateOfBirth: string;
  sex: Sex;
  phone: string | null;
  emergencyContact: EmergencyContact | null;
  allergies: string[];
  version: number;
  createdAt: Date;
  updatedAt: Date;
};

/** What `PUT /patients/me` replaces the profile with. */
export type PatientProfileInput = {
  fullName: string;
  dateOfBirth: string;
  sex: Sex;
  phone: string | null;
  emergencyContact: EmergencyContact | null;
  allergies: string[] | null;
};

/** The personal fields as stored: every one field-encrypted (`kv1.` values). */
export type SealedPatientFields = {
  full_name: string;
  date_of_birth: string;
  phone: string | null;
  emergency_contact: string | null;
  allergies: string | null;
};

/** A patient row as read, personal fields still encrypted. */
export type StoredPatient = SealedPatientFields & {
  id: string;
  sex: Sex;
  version: number;
  createdAt: Date;
  updatedAt: Date;
};

const PATIENTS_TABLE = 'telemedicine.patients';
const EARLIEST_DATE_OF_BIRTH = '1900-01-01';
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function isCalendarDate(value: string): boolean {
  const match = ISO_DATE.exec(value);
  if (match === null) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/**
 * Refuses a date of birth that is not a real calendar day, lies in the future
 * (today is allowed: a newborn's profile) or before 1900. ISO dates compare
 * correctly as strings.
 */
export function assertValidDateOfBirth(dateOfBirth: string, now: Date): void {
  if (!isCalendarDate(dateOfBirth)) throw invalidDateOfBirth('is not a calendar date (YYYY-MM-DD)');
  const today = now.toISOString().slice(0, 10);
  if (dateOfBirth > today) throw invalidDateOfBirth('is in the future');
  if (dateOfBirth < EARLIEST_DATE_OF_BIRTH) throw invalidDateOfBirth('is before 1900-01-01');
}

/** Encrypts every personal field under its own AAD (table, column, row id). */
export function sealPatientFields(
  encryption: FieldEncryption,
  id: string,
  input: PatientProfileInput,
): SealedPatientFields {
  const seal = (column: keyof SealedPatientFields, value: string) =>
    encryption.encrypt(value, fieldAad(PATIENTS_TABLE, column, id));
  return {
    full_name: seal('full_name', input.fullName),
    date_of_birth: seal('date_of_birth', input.dateOfBirth),
    phone: input.phone === null ? null : seal('phone', input.phone),
    emergency_contact:
      input.emergencyContact === null
        ? null
        : seal('emergency_contact', JSON.stringify(input.emergencyContact)),
    allergies: input.allergies === null ? null : seal('allergies', JSON.stringify(input.allergies)),
  };
}

/** Decrypts a stored row; a value that fails authentication throws (tampered or misplaced). */
export function openPatient(encryption: FieldEncryption, stored: StoredPatient): PatientProfile {
  const open = (column: keyof SealedPatientFields, value: string) =>
    encryption.decrypt(value, fieldAad(PATIENTS_TABLE, column, stored.id));
  return {
    id: stored.id,
    fullName: open('full_name', stored.full_name),
    dateOfBirth: open('date_of_birth', stored.date_of_birth),
    sex: stored.sex,
    phone: stored.phone === null ? null : open('phone', stored.phone),
    emergencyContact:
      stored.emergency_contact === null
        ? null
        : (JSON.parse(open('emergency_contact', stored.emergency_contact)) as EmergencyContact),
    allergies: stored.allergies === null ? [] : (JSON.parse(open('allergies', stored.allergies)) as string[]),
    version: stored.version,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  };
}

/** The version `If-Match` names, `'*'`, or undefined when absent. */
export function parseIfMatch(header: string | undefined): number | '*' | undefined {
  return parseIfMatchVersion(header, invalidIfMatch, { isWeakAccepted: true });
}

/**
 * Checks `If-Match` against the current version (undefined: no profile yet).
 * Any `If-Match` on a missing profile fails: the client expected one to exist.
 */
export function assertIfMatch(expected: number | '*' | undefined, current: number | undefined): void {
  if (expected === undefined) return;
  if (current === undefined) throw versionMismatch(null);
  if (expected !== '*' && expected !== current) throw versionMismatch(current);
}
