import type { Db, Transaction } from '@keel/platform/db';
import type { Clock, IdGenerator } from '@keel/platform/module';
import { emailTaken, userNotFound } from './user.errors.ts';
import { findUserById, findUserIdByEmail, insertUser, type UserMetadataSchema } from './user.repository.ts';
import { type NewUserInput, normaliseNewUser, type User } from './user.ts';

export type UserServiceDependencies = {
  db: Db<UserMetadataSchema>;
  clock: Clock;
  ids: IdGenerator;
};

/** Work the caller needs committed together with the user (e.g. its idempotency record). */
export type WithinTransaction<T> = (trx: Transaction<UserMetadataSchema>, result: T) => Promise<void>;

export type UserService = ReturnType<typeof createUserService>;

export function createUserService(deps: UserServiceDependencies) {
  return {
    /**
     * Creates a user. The same email twice never makes two users: the unique
     * index decides, and the loser gets `users.email_taken` with the winner's location.
     */
    async createUser(
      input: NewUserInput,
      options: { withinTransaction?: WithinTransaction<User> } = {},
    ): Promise<User> {
      const normalised = normaliseNewUser(input);
      return deps.db.transaction(async (trx) => {
        const user = await insertUser(trx, {
          ...normalised,
          id: deps.ids.uuid(),
          createdAt: deps.clock.now(),
        });
        if (user === undefined) {
          const existingId = await findUserIdByEmail(trx, normalised.email);
          // The only way to lose the insert is the email index; the row is visible now.
          throw emailTaken(existingId ?? 'unknown');
        }
        await options.withinTransaction?.(trx, user);
        return user;
      });
    },

    async getUser(id: string): Promise<User> {
      const user = await deps.db.run((db) => findUserById(db, id));
      if (user === undefined) throw userNotFound(id);
      return user;
    },
  };
}
