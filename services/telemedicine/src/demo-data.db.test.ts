import { randomUUID } from 'node:crypto';
import type { DemoAccounts } from '@keel/platform/module';
import { signIn, useTestApp } from '@keel/platform/testing';
import { describe, expect, it } from 'vitest';
import { DEMO_PATIENT_EMAIL, seedTelemedicineDemoData } from './demo-data.ts';
import { telemedicineModule } from './index.ts';

const harness = useTestApp({ modules: [telemedicineModule] });

const DEMO_PASSWORD = 'demo password that is long enough';

/** What the server hands the seed in the embedded demo (apps/server/src/bootstrap-admin.ts). */
function demoAccounts(): DemoAccounts {
  const { accounts } = harness.testApp.security.identity;
  return {
    password: DEMO_PASSWORD,
    async ensure({ email, roles }) {
      const existing = await accounts.findAccountIdByEmail(email);
      if (existing !== undefined) return { id: existing, email };
      return accounts.provisionAccount({ email, password: DEMO_PASSWORD, roles });
    },
  };
}

async function seed(accounts?: DemoAccounts): Promise<void> {
  const { testApp, testDb } = harness;
  await seedTelemedicineDemoData({
    config: testApp.config,
    database: testDb.database,
    logger: testApp.logger,
    clock: testApp.clock,
    ids: { uuid: randomUUID },
    ...(accounts === undefined ? {} : { demoAccounts: accounts }),
  });
}

async function counts(): Promise<Record<string, number>> {
  const result = await harness.testDb.database.pool.query<Record<string, string>>(`
    select (select count(*) from telemedicine.doctors where status = 'VERIFIED') as doctors,
           (select count(distinct time_zone) from telemedicine.doctors) as zones,
           (select count(*) from telemedicine.schedule_rules) as rules,
           (select count(*) from telemedicine.slots where status = 'OPEN') as open_slots,
           (select count(*) from telemedicine.patients) as patients`);
  return Object.fromEntries(Object.entries(result.rows[0] ?? {}).map(([key, value]) => [key, Number(value)]));
}

describe('seedTelemedicineDemoData', () => {
  it('seeds verified doctors in several zones with schedules and slots, a patient and a doctor who can sign in, and is a no-op the second time', async () => {
    const accounts = demoAccounts();
    await seed(accounts);
    const first = await counts();
    expect(first.doctors).toBe(7);
    expect(first.zones).toBeGreaterThanOrEqual(6);
    expect(first.rules).toBe(7 * 10);
    expect(first.open_slots).toBeGreaterThan(7 * 100);
    expect(first.patients).toBe(1);

    await seed(demoAccounts());
    expect(await counts()).toEqual(first);

    // The demo patient is a real account: it signs in and sees its profile.
    const session = await signIn(harness.testApp, { email: DEMO_PATIENT_EMAIL, password: DEMO_PASSWORD });
    const profile = await harness.testApp.app.inject({
      method: 'GET',
      url: '/telemedicine/patients/me',
      headers: { authorization: session.authorization },
    });
    expect(profile.statusCode, profile.body).toBe(200);
    expect(profile.json<{ full_name: string }>().full_name).toBe('Pat Demo');
  });

  it('seeds the public doctors without demo accounts (an external database with KEEL_DEMO_DATA)', async () => {
    await seed();
    expect((await counts()).doctors).toBeGreaterThanOrEqual(6);
  });
});
