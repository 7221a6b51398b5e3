import type { ServiceContext } from '@keel/platform/module';
import { createUserMetadataRoot } from './composition-root.ts';

const DEMO_USERS = [
  { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+442071838750' },
  { name: 'Grace Hopper', email: 'grace@example.com', phone: '+12025550143' },
];

/** Demo users for `npm start`; existing emails are skipped, so it is safe to run twice. */
export async function seedUserMetadataDemoData(context: ServiceContext): Promise<void> {
  const { users } = createUserMetadataRoot(context);
  for (const user of DEMO_USERS) {
    await users.createUser(user).catch((error: unknown) => {
      if ((error as { code?: string }).code !== 'users.email_taken') throw error;
    });
  }
}
