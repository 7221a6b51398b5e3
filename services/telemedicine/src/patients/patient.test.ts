import { createFieldEncryption, generateEncryptionKey, parseKeyring } from '@keel/platform/crypto';
import { AppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import {
  assertIfMatch,
  assertValidDateOfBirth,
  openPatient,
  type PatientProfileInput,
  parseIfMatch,
  sealPatientFields,
} from './patient.ts';

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).code;
  }
}

const now = new Date('2026-03-10T23:30:00Z');
const encryption = createFieldEncryption(parseKeyring(`k1:${generateEncryptionKey()}`));

const input: PatientProfileInput = {
  fullName: 'Ada Lovelace',
  dateOfBirth: '1985-12-10',
  sex: 'female',
  phone: '+4930123456',
  emergencyContact: { name: 'Charles', phone: '+442071234567', relationship: 'friend' },
  allergies: ['penicillin'],
};

describe('assertValidDateOfBirth', () => {
  it.each(['1900-01-01', '2000-02-29', '2026-03-10'])('accepts %s', (date) => {
    expect(codeOf(() => assertValidDateOfBirth(date, now))).toBeUndefined();
  });

  it.each([
    ['a day after today (UTC)', '2026-03-11'],
    ['a day before 1900', '1899-12-31'],
    ['a 29 February outside a leap year', '1900-02-29'],
    ['month 13', '1990-13-01'],
    ['a timestamp', '1990-01-01T00:00:00Z'],
  ])('refuses %s with telemedicine.invalid_date_of_birth', (_case, date) => {
    expect(codeOf(() => assertValidDateOfBirth(date, now))).toBe('telemedicine.invalid_date_of_birth');
  });
});

describe('sealPatientFields / openPatient', () => {
  const id = '0190a000-0000-7000-8000-000000000001';

  it('round-trips every field, structured ones as JSON', () => {
    const sealed = sealPatientFields(encryption, id, input);
    for (const value of Object.values(sealed)) expect(value).toMatch(/^kv1\./);
    const opened = openPatient(encryption, {
      ...sealed,
      id,
      sex: 'female',
      version: 3,
      createdAt: now,
      updatedAt: now,
    });
    expect(opened).toEqual({ ...input, id, version: 3, createdAt: now, updatedAt: now });
  });

  it('keeps absent optional fields null and reads absent allergies as an empty list', () => {
    const sealed = sealPatientFields(encryption, id, {
      ...input,
      phone: null,
      emergencyContact: null,
      allergies: null,
    });
    expect(sealed).toMatchObject({ phone: null, emergency_contact: null, allergies: null });
    const opened = openPatient(encryption, {
      ...sealed,
      id,
      sex: 'male',
      version: 1,
      createdAt: now,
      updatedAt: now,
    });
    expect(opened).toMatchObject({ phone: null, emergencyContact: null, allergies: [] });
  });

  it('refuses a value moved to another row (the AAD binds it to its row)', () => {
    const sealed = sealPatientFields(encryption, id, input);
    const otherId = '0190a000-0000-7000-8000-000000000002';
    expect(() =>
      openPatient(encryption, {
        ...sealed,
        id: otherId,
        sex: 'female',
        version: 1,
        createdAt: now,
        updatedAt: now,
      }),
    ).toThrow();
  });
});

describe('If-Match', () => {
  it('passes without a header, with * on an existing profile, and with the current version', () => {
    expect(codeOf(() => assertIfMatch(parseIfMatch(undefined), undefined))).toBeUndefined();
    expect(codeOf(() => assertIfMatch(parseIfMatch('*'), 4))).toBeUndefined();
    expect(codeOf(() => assertIfMatch(parseIfMatch('"4"'), 4))).toBeUndefined();
    expect(codeOf(() => assertIfMatch(parseIfMatch('W/"4"'), 4))).toBeUndefined();
  });

  it('fails on a stale version and on any If-Match for a missing profile', () => {
    expect(codeOf(() => assertIfMatch(parseIfMatch('"3"'), 4))).toBe('telemedicine.version_mismatch');
    expect(codeOf(() => assertIfMatch(parseIfMatch('*'), undefined))).toBe('telemedicine.version_mismatch');
  });

  it('refuses a header that names no version', () => {
    expect(codeOf(() => parseIfMatch('"3", "4"'))).toBe('telemedicine.invalid_if_match');
    expect(codeOf(() => parseIfMatch('abc'))).toBe('telemedicine.invalid_if_match');
  });
});
