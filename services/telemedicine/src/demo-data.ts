import type { DemoSeedContext } from '@keel/platform/module';
import { createSlotMaterialiser } from './availability/slot-materialiser.ts';
import { loadTelemedicineEncryption } from './composition-root.ts';
import type { TelemedicineSchema } from './database.ts';
import { fieldAad } from './encrypted-columns.ts';

// Verified doctors across specialties, languages, currencies and time zones,
// each with a weekday schedule in their own zone and slots materialised from
// it; with the server's demo accounts, also a patient and a doctor who can
// sign in. Rows have fixed ids (or the demo accounts' ids) and are inserted
// with ON CONFLICT DO NOTHING, and materialisation is idempotent, so seeding
// twice changes nothing.

type DemoDoctor = {
  id: string;
  fullName: string;
  specialties: string[];
  languages: string[];
  feeMinor: number;
  currency: string;
  timeZone: string;
  years: number;
  bio: string;
};

const DEMO_DOCTORS: readonly DemoDoctor[] = [
  {
    id: '0193a000-0000-7000-8000-000000000d01',
    fullName: 'Dr Anna Schmidt',
    specialties: ['cardiology'],
    languages: ['de', 'en'],
    feeMinor: 8000,
    currency: 'EUR',
    timeZone: 'Europe/Berlin',
    years: 18,
    bio: 'Cardiologist focusing on hypertension and heart rhythm disorders.',
  },
  {
    id: '0193a000-0000-7000-8000-000000000d02',
    fullName: 'Dr Miguel Garcia',
    specialties: ['dermatology'],
    languages: ['en', 'es'],
    feeMinor: 9500,
    currency: 'USD',
    timeZone: 'America/New_York',
    years: 11,
    bio: 'Dermatologist for acne, eczema and skin checks.',
  },
  {
    id: '0193a000-0000-7000-8000-000000000d03',
    fullName: 'Dr Priya Sharma',
    specialties: ['general practice', 'endocrinology'],
    languages: ['hi', 'en'],
    feeMinor: 150000,
    currency: 'INR',
    timeZone: 'Asia/Kolkata',
    years: 9,
    bio: 'General practitioner with an interest in diabetes care.',
  },
  {
    id: '0193a000-0000-7000-8000-000000000d04',
    fullName: 'Dr Oliver Smith',
    specialties: ['paediatrics'],
    languages: ['en'],
    feeMinor: 6500,
    currency: 'GBP',
    timeZone: 'Europe/London',
    years: 14,
    bio: 'Paediatrician: childhood illnesses, growth and development.',
  },
  {
    id: '0193a000-0000-7000-8000-000000000d05',
    fullName: 'Dr Claire Martin',
    specialties: ['psychiatry'],
    languages: ['fr', 'en'],
    feeMinor: 12000,
    currency: 'EUR',
    timeZone: 'Europe/Paris',
    years: 21,
    bio: 'Psychiatrist for anxiety, depression and sleep disorders.',
  },
  {
    id: '0193a000-0000-7000-8000-000000000d06',
    fullName: 'Dr James Okafor',
    specialties: ['general practice'],
    languages: ['en'],
    feeMinor: 7000,
    currency: 'AUD',
    timeZone: 'Australia/Sydney',
    years: 6,
    bio: 'Family doctor for everyday health questions.',
  },
];

/** Mon–Fri 09:00–12:00 and 14:00–17:00 local, 20-minute consultations with 10 minutes between them. */
const DEMO_WINDOWS = [
  { start: '09:00', end: '12:00' },
  { start: '14:00', end: '17:00' },
];

export const DEMO_PATIENT_EMAIL = 'patient@keel.local';
export const DEMO_DOCTOR_EMAIL = 'doctor@keel.local';

export async function seedTelemedicineDemoData(context: DemoSeedContext): Promise<void> {
  const db = context.database.typed<TelemedicineSchema>();
  const doctors = [...DEMO_DOCTORS];
  const { demoAccounts } = context;
  if (demoAccounts !== undefined) {
    const doctor = await demoAccounts.ensure({ email: DEMO_DOCTOR_EMAIL, roles: ['telemedicine:doctor'] });
    doctors.push({
      id: doctor.id,
      fullName: 'Dr Demo Doctor',
      specialties: ['general practice'],
      languages: ['en', 'de'],
      feeMinor: 5000,
      currency: 'EUR',
      timeZone: 'Europe/Berlin',
      years: 12,
      bio: 'The demo doctor: sign in as doctor@keel.local to run consultations.',
    });
    const patient = await demoAccounts.ensure({ email: DEMO_PATIENT_EMAIL, roles: ['telemedicine:patient'] });
    const encryption = loadTelemedicineEncryption(context.config);
    const table = 'telemedicine.patients';
    const aad = (column: string) => fieldAad(table, column, patient.id);
    await db.run((kysely) =>
      kysely
        .insertInto(table)
        .values({
          id: patient.id,
          full_name: encryption.encrypt('Pat Demo', aad('full_name')),
          date_of_birth: encryption.encrypt('1988-04-12', aad('date_of_birth')),
          sex: 'unspecified',
          phone: encryption.encrypt('+4915112345678', aad('phone')),
          allergies: encryption.encrypt(JSON.stringify(['penicillin']), aad('allergies')),
        })
        .onConflict((conflict) => conflict.column('id').doNothing())
        .execute(),
    );
  }

  const now = context.clock.now();
  for (const [index, doctor] of doctors.entries()) {
    await db.transaction(async (trx) => {
      await trx
        .insertInto('telemedicine.doctors')
        .values({
          id: doctor.id,
          full_name: doctor.fullName,
          specialties: doctor.specialties,
          languages: doctor.languages,
          qualifications: ['MD'],
          registration_number: `DEMO-${String(index + 1).padStart(4, '0')}-${doctor.id.slice(-4)}`,
          years_of_experience: doctor.years,
          fee_minor: doctor.feeMinor,
          currency: doctor.currency,
          bio: doctor.bio,
          time_zone: doctor.timeZone,
          status: 'VERIFIED',
          verified_at: now,
        })
        .onConflict((conflict) => conflict.column('id').doNothing())
        .execute();
      const inserted = await trx
        .insertInto('telemedicine.schedules')
        .values({ doctor_id: doctor.id, time_zone: doctor.timeZone, slot_minutes: 20, buffer_minutes: 10 })
        .onConflict((conflict) => conflict.column('doctor_id').doNothing())
        .returning('doctor_id')
        .executeTakeFirst();
      // Rules only with a new schedule: a second seed must not add a second set.
      if (inserted === undefined) return;
      await trx
        .insertInto('telemedicine.schedule_rules')
        .values(
          [1, 2, 3, 4, 5].flatMap((weekday) =>
            DEMO_WINDOWS.map((window) => ({
              id: context.ids.uuid(),
              doctor_id: doctor.id,
              weekday,
              start_local: window.start,
              end_local: window.end,
            })),
          ),
        )
        .execute();
    });
  }

  const materialiser = createSlotMaterialiser({
    db,
    clock: context.clock,
    ids: context.ids,
    logger: context.logger,
    settings: { slotHorizonDays: context.config.TELEMEDICINE_SLOT_HORIZON_DAYS },
  });
  for (const doctor of doctors) await materialiser.materialiseNow(doctor.id);
}
