import type { Db } from '@keel/platform/db';
import { AppError } from '@keel/platform/errors';
import {
  type IdempotencyClaim,
  idempotencyInProgress,
  type StoredResponse,
} from '@keel/platform/idempotency';
import type { Clock, IdGenerator } from '@keel/platform/module';
import { emailTaken, userNotFound } from './user.errors.ts';
import {
  findUserById,
  findUserIdByEmail,
  insertUser,
  insertUserCompletingClaim,
  type UserMetadataSchema,
} from './user.repository.ts';
import { type NewUserInput, normaliseNewUser, type User } from './user.ts';

export type UserServiceDependencies = {
  db: Db<UserMetadataSchema>;
  clock: Clock;
  ids: IdGenerator;
};

/** The request's idempotency claim and the response to store with the user. */
export type CreateUserIdempotency = { claim: IdempotencyClaim; respond: (user: User) => StoredResponse };

export type UserService = ReturnType<typeof createUserService>;

export function createUserService(deps: UserServiceDependencies) {
  /**
   * Why an insert wrote nothing. A statement whose connection is lost may
   * still have committed (an ambiguous commit); the retry then loses to its
   * own row. The id is minted before the first attempt, so finding it means
   * this request's write is done: that is success, not a conflict.
   */
  async function explainLostInsert(candidate: User): Promise<User | AppError> {
    const earlier = await deps.db.run((db) => findUserById(db, candidate.id));
    if (earlier !== undefined) return earlier;
    // Otherwise only the email index can have refused it, and the winner's row is visible now.
    const existingId = await deps.db.run((db) => findUserIdByEmail(db, candidate.email));
    return emailTaken(existingId ?? 'unknown');
  }

  return {
    /**
     * Creates a user. The same email twice never makes two users: the unique
     * index decides, and the loser gets `users.email_taken` with the winner's
     * location. With an idempotency claim, the user and the stored response
     * commit in the same statement.
     */
    async createUser(
      input: NewUserInput,
      options: { idempotency?: CreateUserIdempotency } = {},
    ): Promise<User> {
      const candidate: User = {
        ...normaliseNewUser(input),
        id: deps.ids.uuid(),
        createdAt: deps.clock.now(),
      };
      const { idempotency } = options;
      if (idempotency === undefined) {
        const user = await deps.db.run((db) => insertUser(db, candidate));
        if (user !== undefined) return user;
        const outcome = await explainLostInsert(candidate);
        if (outcome instanceof AppError) throw outcome;
        return outcome;
      }
      const completion = idempotency.claim.completionSql(idempotency.respond(candidate));
      const result = await deps.db.run((db) => insertUserCompletingClaim(db, candidate, completion));
      if (result.user === undefined) {
        const outcome = await explainLostInsert(candidate);
        if (outcome instanceof AppError) throw result.isClaimHeld ? outcome : idempotencyInProgress();
        // Our earlier attempt committed, and with it the completed key.
        idempotency.claim.markCompleted();
        return outcome;
      }
      idempotency.claim.markCompleted();
      return result.user;
    },

    async getUser(id: string): Promise<User> {
      const user = await deps.db.run((db) => findUserById(db, id));
      if (user === undefined) throw userNotFound(id);
      return user;
    },
  };
}
