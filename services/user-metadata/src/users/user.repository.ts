import { type Kysely, sql } from '@keel/platform/db';
import type { User } from './user.ts';

export type UsersTable = {
  id: string;
  name: string;
  email: string;
  phone: string;
  created_at: Date;
};

export type UserMetadataSchema = { 'user_metadata.users': UsersTable };

const USER_COLUMNS = ['id', 'name', 'email', 'phone', 'created_at'] as const;

function toUser(row: UsersTable): User {
  return { id: row.id, name: row.name, email: row.email, phone: row.phone, createdAt: row.created_at };
}

export async function findUserById(db: Kysely<UserMetadataSchema>, id: string): Promise<User | undefined> {
  const row = await db
    .selectFrom('user_metadata.users')
    .select(USER_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toUser(row);
}

export async function findUserIdByEmail(
  db: Kysely<UserMetadataSchema>,
  email: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('user_metadata.users')
    .select('id')
    .where(sql<string>`lower(email)`, '=', email.toLowerCase())
    .executeTakeFirst();
  return row?.id;
}

/**
 * Inserts the user; undefined when the email is taken. ON CONFLICT on the
 * unique index (rather than catching the violation) keeps the transaction
 * usable, so the caller can still look the existing user up in it.
 */
export async function insertUser(db: Kysely<UserMetadataSchema>, user: User): Promise<User | undefined> {
  const row = await db
    .insertInto('user_metadata.users')
    .values({
      id: user.id,
      name: user.name,
      email: user.email,
      phone: user.phone,
      created_at: user.createdAt,
    })
    .onConflict((conflict) => conflict.expression(sql`lower(email)`).doNothing())
    .returning(USER_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toUser(row);
}
