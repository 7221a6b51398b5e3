import { AppError } from '@keel/platform/errors';
import { describe, expect, it } from 'vitest';
import {
  assertValidDoctorProfile,
  assertVerificationMove,
  type Doctor,
  type DoctorProfileInput,
  type DoctorStatus,
  decodeCursor,
  encodeCursor,
  isCurrencyCode,
  isLanguageCode,
  isValidTimeZone,
  statusAfterProfileChange,
  targetStatusOf,
} from './doctor.ts';

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).code;
  }
}

const input: DoctorProfileInput = {
  fullName: 'Dr Grace Hopper',
  specialties: ['cardiology'],
  languages: ['en', 'de'],
  qualifications: [],
  registrationNumber: 'GMC-1',
  yearsOfExperience: 10,
  feeMinor: 5000,
  currency: 'EUR',
  bio: '',
  timeZone: 'Europe/Berlin',
};

function doctorIn(status: DoctorStatus): Doctor {
  const now = new Date('2026-01-01T00:00:00Z');
  return {
    ...input,
    id: '0190a000-0000-7000-8000-000000000001',
    status,
    verifiedAt: status === 'VERIFIED' ? now : null,
    verifiedBy: null,
    rating: null,
    ratingCount: 0,
    nextAvailableAt: null,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
}

describe('profile checks', () => {
  it.each(['Europe/Berlin', 'UTC', 'America/Argentina/Buenos_Aires'])('knows the time zone %s', (zone) => {
    expect(isValidTimeZone(zone)).toBe(true);
  });

  it('refuses an unknown time zone with a pointer to it', () => {
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(codeOf(() => assertValidDoctorProfile({ ...input, timeZone: 'Mars/Olympus_Mons' }))).toBe(
      'telemedicine.invalid_time_zone',
    );
  });

  it('knows ISO 639-1 languages and ISO 4217 currencies', () => {
    expect(isLanguageCode('en')).toBe(true);
    expect(isLanguageCode('xx')).toBe(false);
    expect(isLanguageCode('eng')).toBe(false);
    expect(isCurrencyCode('JPY')).toBe(true);
    expect(isCurrencyCode('ABC')).toBe(false);
  });

  it('points at each unknown language', () => {
    try {
      assertValidDoctorProfile({ ...input, languages: ['en', 'xx', 'qq'] });
      expect.unreachable();
    } catch (error) {
      expect((error as AppError).errors?.map((field) => field.pointer)).toEqual([
        '/body/languages/1',
        '/body/languages/2',
      ]);
    }
  });
});

describe('statusAfterProfileChange', () => {
  it('sends a verified doctor back to PENDING only when the registration number changes', () => {
    expect(statusAfterProfileChange(doctorIn('VERIFIED'), { ...input, feeMinor: 9000 })).toBe('VERIFIED');
    expect(statusAfterProfileChange(doctorIn('VERIFIED'), { ...input, registrationNumber: 'GMC-2' })).toBe(
      'PENDING',
    );
  });

  it('leaves PENDING and SUSPENDED doctors where they are', () => {
    expect(statusAfterProfileChange(doctorIn('PENDING'), { ...input, registrationNumber: 'GMC-2' })).toBe(
      'PENDING',
    );
    expect(statusAfterProfileChange(doctorIn('SUSPENDED'), { ...input, registrationNumber: 'GMC-2' })).toBe(
      'SUSPENDED',
    );
  });
});

describe('verification moves', () => {
  it.each([
    ['PENDING', 'verify', undefined],
    ['SUSPENDED', 'verify', undefined],
    ['VERIFIED', 'verify', 'telemedicine.doctor_already_verified'],
    ['PENDING', 'suspend', undefined],
    ['VERIFIED', 'suspend', undefined],
    ['SUSPENDED', 'suspend', 'telemedicine.doctor_already_suspended'],
  ] as const)('%s doctor, %s: %s', (status, action, code) => {
    expect(codeOf(() => assertVerificationMove('id', status, action))).toBe(code);
  });

  it('targets VERIFIED and SUSPENDED', () => {
    expect(targetStatusOf('verify')).toBe('VERIFIED');
    expect(targetStatusOf('suspend')).toBe('SUSPENDED');
  });
});

describe('cursor', () => {
  it('round-trips a microsecond position', () => {
    const cursor = { at: '2026-01-01T10:00:00.123456Z', id: '0190a000-0000-7000-8000-000000000001' };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
  });

  it.each([
    'not base64 json',
    Buffer.from('[]').toString('base64url'),
    Buffer.from(JSON.stringify({ t: '2026-01-01T10:00:00Z', i: 'x' })).toString('base64url'),
  ])('refuses %s with telemedicine.invalid_cursor', (value) => {
    expect(codeOf(() => decodeCursor(value))).toBe('telemedicine.invalid_cursor');
  });
});
