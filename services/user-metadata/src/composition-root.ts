import type { ServiceContext } from '@keel/platform/module';
import type { UserMetadataSchema } from './users/user.repository.ts';
import { createUserService, type UserService } from './users/user.service.ts';

export type UserMetadataRoot = { users: UserService };

/** Builds the service's object graph from what the platform provides. */
export function createUserMetadataRoot(context: ServiceContext): UserMetadataRoot {
  const db = context.database.typed<UserMetadataSchema>();
  return { users: createUserService({ db, clock: context.clock, ids: context.ids }) };
}
