import { type Kysely, sql } from '@keel/platform/db';
import type { ClaimCompletionSql } from '@keel/platform/idempotency';
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

export type InsertWithClaimResult = { isClaimHeld: boolean; user: User | undefined };

/**
 * Inserts the user and completes its idempotency key in one statement: the
 * insert runs only while the claim is still held, and the key is completed
 * only if the insert wrote a row (a taken email writes nothing and stores
 * nothing). One round trip, atomic because a statement is.
 */
export async function insertUserCompletingClaim(
  db: Kysely<UserMetadataSchema>,
  user: User,
  claim: ClaimCompletionSql,
): Promise<InsertWithClaimResult> {
  const result = await sql<UsersTable & { is_claim_held: boolean }>`
    with held as (${claim.heldClaim}),
    inserted as (
      insert into user_metadata.users (id, name, email, phone, created_at)
      select ${user.id}, ${user.name}, ${user.email}, ${user.phone}, ${user.createdAt}
      where exists (select 1 from held)
      on conflict ((lower(email))) do nothing
      returning id, name, email, phone, created_at
    ),
    completed as (${claim.completeWhen(sql`select 1 from inserted`)})
    select exists (select 1 from held) as is_claim_held, inserted.*
    from (select 1) as one left join inserted on true
  `.execute(db);
  const row = result.rows[0];
  return {
    isClaimHeld: row?.is_claim_held ?? false,
    user: row?.id ? toUser(row) : undefined,
  };
}
