import { randomUUID } from 'node:crypto';
import type { FieldEncryption } from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import {
  createTestAccount,
  type SignedIn,
  signIn,
  type TestAccount,
  type TestApp,
} from '@keel/platform/testing';
import type { TelemedicineSchema } from '../src/database.ts';
import { fieldAad } from '../src/encrypted-columns.ts';

// Test data for the telemedicine service, written straight to its tables:
// each feature's own routes are tested in its own file; other tests need a
// verified doctor with slots, not a tour of the profile and schedule APIs.

export type TelemedicineCaller = { account: TestAccount; session: SignedIn; authorization: string };

export async function signInWithRoles(testApp: TestApp, roles: string[]): Promise<TelemedicineCaller> {
  const account = await createTestAccount(testApp, { roles });
  const session = await signIn(testApp, account);
  return { account, session, authorization: session.authorization };
}

/** A signed-in patient with a patient profile. */
export async function signInPatient(
  testApp: TestApp,
  database: Database,
  encryption: FieldEncryption,
  profile: { fullName?: string; dateOfBirth?: string } = {},
): Promise<TelemedicineCaller> {
  const caller = await signInWithRoles(testApp, ['telemedicine:patient']);
  await insertPatient(database, encryption, caller.account.id, profile);
  return caller;
}

/** A patient profile row (personal fields encrypted as the service writes them). */
export async function insertPatient(
  database: Database,
  encryption: FieldEncryption,
  id: string,
  profile: { fullName?: string; dateOfBirth?: string } = {},
): Promise<void> {
  const table = 'telemedicine.patients';
  await database.typed<TelemedicineSchema>().run((db) =>
    db
      .insertInto(table)
      .values({
        id,
        full_name: encryption.encrypt(profile.fullName ?? 'Test Patient', fieldAad(table, 'full_name', id)),
        date_of_birth: encryption.encrypt(
          profile.dateOfBirth ?? '1990-01-01',
          fieldAad(table, 'date_of_birth', id),
        ),
        sex: 'unspecified',
      })
      .execute(),
  );
}

export type DoctorSpec = {
  fullName?: string;
  specialties?: string[];
  languages?: string[];
  feeMinor?: number;
  currency?: string;
  timeZone?: string;
  status?: 'PENDING' | 'VERIFIED' | 'SUSPENDED';
  yearsOfExperience?: number;
  bio?: string;
};

/** A signed-in doctor (`telemedicine:doctor`, MFA completed by `signIn`) with a verified profile. */
export async function signInDoctor(
  testApp: TestApp,
  database: Database,
  spec: DoctorSpec = {},
): Promise<TelemedicineCaller> {
  const caller = await signInWithRoles(testApp, ['telemedicine:doctor']);
  await insertDoctor(database, caller.account.id, spec);
  return caller;
}

/** A doctor profile row; VERIFIED unless `status` says otherwise. */
export async function insertDoctor(
  database: Database,
  id: string = randomUUID(),
  spec: DoctorSpec = {},
): Promise<string> {
  const status = spec.status ?? 'VERIFIED';
  await database.typed<TelemedicineSchema>().run((db) =>
    db
      .insertInto('telemedicine.doctors')
      .values({
        id,
        full_name: spec.fullName ?? `Dr Test ${id.slice(0, 8)}`,
        specialties: spec.specialties ?? ['general practice'],
        languages: spec.languages ?? ['en'],
        registration_number: `REG-${id}`,
        years_of_experience: spec.yearsOfExperience ?? 10,
        fee_minor: spec.feeMinor ?? 5000,
        currency: spec.currency ?? 'EUR',
        bio: spec.bio ?? '',
        time_zone: spec.timeZone ?? 'Europe/Berlin',
        status,
        verified_at: status === 'VERIFIED' ? new Date() : null,
      })
      .execute(),
  );
  return id;
}

/**
 * Open slots for a doctor, `count` of them `minutes` long back to back from
 * `startsAt` (default: tomorrow 09:00 UTC, rounded). Returns their ids in order.
 */
export async function insertSlots(
  database: Database,
  doctorId: string,
  options: { startsAt?: Date; count?: number; minutes?: number } = {},
): Promise<string[]> {
  const minutes = options.minutes ?? 15;
  const count = options.count ?? 1;
  const start = options.startsAt ?? nextDayAtUtc(9);
  const rows = Array.from({ length: count }, (_, index) => ({
    id: randomUUID(),
    doctor_id: doctorId,
    starts_at: new Date(start.getTime() + index * minutes * 60_000),
    ends_at: new Date(start.getTime() + (index + 1) * minutes * 60_000),
  }));
  await database
    .typed<TelemedicineSchema>()
    .run((db) => db.insertInto('telemedicine.slots').values(rows).execute());
  return rows.map((row) => row.id);
}

/** Tomorrow (UTC) at `hour`:00 UTC. */
export function nextDayAtUtc(hour: number, daysAhead = 1): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + daysAhead, hour));
}

export async function signInSupport(testApp: TestApp): Promise<TelemedicineCaller> {
  return signInWithRoles(testApp, ['telemedicine:support']);
}

/** A telemedicine admin (MFA completed by `signIn`). */
export async function signInTelemedicineAdmin(testApp: TestApp): Promise<TelemedicineCaller> {
  return signInWithRoles(testApp, ['telemedicine:admin']);
}
