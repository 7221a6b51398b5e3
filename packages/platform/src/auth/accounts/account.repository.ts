import { type RawBuilder, sql } from 'kysely';
import type { IdentityDb, MfaChallengePurpose } from '../identity.tables.ts';
import type { Account, AccountSummary } from './account.ts';

const ACCOUNT_COLUMNS = [
  'id',
  'email',
  'password_hash',
  'status',
  'mfa_secret',
  'mfa_enabled_at',
  'mfa_last_time_step',
  'created_at',
] as const;

type AccountRow = {
  id: string;
  email: string;
  password_hash: string;
  status: 'active' | 'disabled';
  mfa_secret: string | null;
  mfa_enabled_at: Date | null;
  mfa_last_time_step: string | null;
  created_at: Date;
};

function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    status: row.status,
    mfaSecret: row.mfa_secret,
    mfaEnabledAt: row.mfa_enabled_at,
    mfaLastTimeStep: row.mfa_last_time_step === null ? null : Number(row.mfa_last_time_step),
    createdAt: row.created_at,
  };
}

export async function findAccountByEmail(db: IdentityDb, email: string): Promise<Account | undefined> {
  const row = await db
    .selectFrom('platform.accounts')
    .select(ACCOUNT_COLUMNS)
    .where(sql<string>`lower(email)`, '=', email.trim().toLowerCase())
    .executeTakeFirst();
  return row ? toAccount(row) : undefined;
}

export async function findAccountById(db: IdentityDb, id: string): Promise<Account | undefined> {
  const row = await db
    .selectFrom('platform.accounts')
    .select(ACCOUNT_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row ? toAccount(row) : undefined;
}

export async function lockAccount(db: IdentityDb, id: string): Promise<Account | undefined> {
  const row = await db
    .selectFrom('platform.accounts')
    .select(ACCOUNT_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row ? toAccount(row) : undefined;
}

/** Inserts the account unless its email is taken (any case); returns whether it was written. */
export async function insertAccount(
  db: IdentityDb,
  account: { id: string; email: string; passwordHash: string; now: Date },
): Promise<boolean> {
  const result = await db
    .insertInto('platform.accounts')
    .values({
      id: account.id,
      email: account.email,
      password_hash: account.passwordHash,
      status: 'active',
      password_changed_at: account.now,
      created_at: account.now,
      updated_at: account.now,
    })
    .onConflict((conflict) => conflict.expression(sql`lower(email)`).doNothing())
    .executeTakeFirst();
  return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

export async function updatePasswordHash(
  db: IdentityDb,
  id: string,
  passwordHash: string,
  now: Date,
  options: { isChange: boolean },
): Promise<void> {
  await db
    .updateTable('platform.accounts')
    .set({
      password_hash: passwordHash,
      updated_at: now,
      ...(options.isChange ? { password_changed_at: now } : {}),
    })
    .where('id', '=', id)
    .execute();
}

export async function updateAccountStatus(
  db: IdentityDb,
  id: string,
  status: 'active' | 'disabled',
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('platform.accounts')
    .set({ status, updated_at: now })
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function findRoles(db: IdentityDb, accountId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('platform.role_grants')
    .select('role')
    .where('account_id', '=', accountId)
    .orderBy('role')
    .execute();
  return rows.map((row) => row.role);
}

export async function insertRoleGrant(
  db: IdentityDb,
  grant: { accountId: string; role: string; grantedBy: string | null; now: Date },
): Promise<boolean> {
  const result = await db
    .insertInto('platform.role_grants')
    .values({
      account_id: grant.accountId,
      role: grant.role,
      granted_by: grant.grantedBy,
      granted_at: grant.now,
    })
    .onConflict((conflict) => conflict.columns(['account_id', 'role']).doNothing())
    .executeTakeFirst();
  return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

export async function deleteRoleGrant(db: IdentityDb, accountId: string, role: string): Promise<boolean> {
  const result = await db
    .deleteFrom('platform.role_grants')
    .where('account_id', '=', accountId)
    .where('role', '=', role)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function hasAnyAccountWithRole(db: IdentityDb, role: string): Promise<boolean> {
  const row = await db
    .selectFrom('platform.role_grants')
    .select('account_id')
    .where('role', '=', role)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export type AccountListFilters = { emailPrefix?: string; status?: 'active' | 'disabled'; role?: string };

/** Accounts by id (UUIDv7, so by creation), after `afterId`, with their roles. */
export async function findAccounts(
  db: IdentityDb,
  filters: AccountListFilters,
  afterId: string | undefined,
  limit: number,
): Promise<AccountSummary[]> {
  let query = db
    .selectFrom('platform.accounts as a')
    .select([
      'a.id',
      'a.email',
      'a.status',
      'a.mfa_enabled_at',
      'a.created_at',
      sql<
        string[]
      >`coalesce((select array_agg(g.role order by g.role) from platform.role_grants g where g.account_id = a.id), '{}')`.as(
        'roles',
      ),
    ])
    .orderBy('a.id')
    .limit(limit);
  if (afterId !== undefined) query = query.where('a.id', '>', afterId);
  if (filters.status !== undefined) query = query.where('a.status', '=', filters.status);
  if (filters.emailPrefix !== undefined) {
    // Escape LIKE metacharacters: the prefix is user input.
    const escaped = filters.emailPrefix.toLowerCase().replace(/[\\%_]/g, (character) => `\\${character}`);
    query = query.where(sql<string>`lower(a.email)`, 'like', `${escaped}%`);
  }
  if (filters.role !== undefined) {
    const role = filters.role;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('platform.role_grants as r')
          .select('r.account_id')
          .whereRef('r.account_id', '=', 'a.id')
          .where('r.role', '=', role),
      ),
    );
  }
  const rows = await query.execute();
  return rows.map((row) => ({
    id: row.id,
    email: row.email,
    status: row.status,
    isMfaEnabled: row.mfa_enabled_at !== null,
    roles: row.roles,
    createdAt: row.created_at,
  }));
}

// Login throttling -----------------------------------------------------------

export async function findLoginLock(db: IdentityDb, emailHash: Buffer): Promise<Date | undefined> {
  const row = await db
    .selectFrom('platform.login_throttle')
    .select('locked_until')
    .where('email_hash', '=', emailHash)
    .executeTakeFirst();
  return row?.locked_until ?? undefined;
}

/**
 * Counts one more failure in a single statement (concurrent failures each
 * count) and sets the lock from the new count: once `threshold` failures in a
 * row, the lock doubles with every further failure, up to `maxSeconds`.
 */
export async function recordLoginFailure(
  db: IdentityDb,
  emailHash: Buffer,
  now: Date,
  policy: { threshold: number; baseSeconds: number; maxSeconds: number },
): Promise<void> {
  const lockAfter = (
    failures: RawBuilder<number>,
  ) => sql<Date | null>`case when ${failures} >= ${policy.threshold}
      then ${now}::timestamptz + make_interval(secs => least(${policy.maxSeconds}::float8,
        ${policy.baseSeconds}::float8 * power(2, least(${failures} - ${policy.threshold}, 30))))
      else null end`;
  // In DO UPDATE, `t.` is the row before this failure; the increment is atomic under concurrent failures.
  await sql`
    insert into platform.login_throttle as t (email_hash, consecutive_failures, locked_until, updated_at)
    values (${emailHash}, 1, ${lockAfter(sql<number>`1`)}, ${now})
    on conflict (email_hash) do update set
      consecutive_failures = t.consecutive_failures + 1,
      locked_until = ${lockAfter(sql<number>`(t.consecutive_failures + 1)`)},
      updated_at = ${now}
  `.execute(db);
}

export async function deleteLoginThrottle(db: IdentityDb, emailHash: Buffer): Promise<void> {
  await db.deleteFrom('platform.login_throttle').where('email_hash', '=', emailHash).execute();
}

// Password reset ---------------------------------------------------------------

export async function insertPasswordResetToken(
  db: IdentityDb,
  token: { hash: Buffer; accountId: string; now: Date; expiresAt: Date },
): Promise<void> {
  await db
    .insertInto('platform.password_reset_tokens')
    .values({
      token_hash: token.hash,
      account_id: token.accountId,
      created_at: token.now,
      expires_at: token.expiresAt,
    })
    .execute();
}

/** Marks the token used if it is unused and unexpired; the conditional update makes it single-use under races. */
export async function consumePasswordResetToken(
  db: IdentityDb,
  hash: Buffer,
  now: Date,
): Promise<string | undefined> {
  const row = await db
    .updateTable('platform.password_reset_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('account_id')
    .executeTakeFirst();
  return row?.account_id;
}

export async function findPasswordResetAccount(
  db: IdentityDb,
  hash: Buffer,
  now: Date,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('platform.password_reset_tokens')
    .select('account_id')
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return row?.account_id;
}

// MFA ---------------------------------------------------------------------------

export async function updatePendingMfaSecret(
  db: IdentityDb,
  accountId: string,
  encryptedSecret: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('platform.accounts')
    .set({ mfa_secret: encryptedSecret, updated_at: now })
    .where('id', '=', accountId)
    .where('mfa_enabled_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function enableMfa(
  db: IdentityDb,
  accountId: string,
  timeStep: number,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('platform.accounts')
    .set({ mfa_enabled_at: now, mfa_last_time_step: timeStep, updated_at: now })
    .where('id', '=', accountId)
    .where('mfa_enabled_at', 'is', null)
    .where('mfa_secret', 'is not', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Records `timeStep` as the last accepted TOTP step only if it is later than
 * the one stored: of two requests with the same code, exactly one wins.
 */
export async function advanceMfaTimeStep(
  db: IdentityDb,
  accountId: string,
  timeStep: number,
): Promise<boolean> {
  const result = await db
    .updateTable('platform.accounts')
    .set({ mfa_last_time_step: timeStep })
    .where('id', '=', accountId)
    .where((eb) =>
      eb.or([eb('mfa_last_time_step', 'is', null), eb('mfa_last_time_step', '<', String(timeStep) as never)]),
    )
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function replaceRecoveryCodes(
  db: IdentityDb,
  accountId: string,
  codeHashes: readonly string[],
  now: Date,
): Promise<void> {
  await db.deleteFrom('platform.mfa_recovery_codes').where('account_id', '=', accountId).execute();
  await db
    .insertInto('platform.mfa_recovery_codes')
    .values(codeHashes.map((codeHash) => ({ account_id: accountId, code_hash: codeHash, created_at: now })))
    .execute();
}

export async function consumeRecoveryCode(
  db: IdentityDb,
  accountId: string,
  codeHash: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('platform.mfa_recovery_codes')
    .set({ used_at: now })
    .where('account_id', '=', accountId)
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function countUnusedRecoveryCodes(db: IdentityDb, accountId: string): Promise<number> {
  const row = await db
    .selectFrom('platform.mfa_recovery_codes')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('account_id', '=', accountId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function insertMfaChallenge(
  db: IdentityDb,
  challenge: { hash: Buffer; accountId: string; purpose: MfaChallengePurpose; now: Date; expiresAt: Date },
): Promise<void> {
  await db
    .insertInto('platform.mfa_challenges')
    .values({
      token_hash: challenge.hash,
      account_id: challenge.accountId,
      purpose: challenge.purpose,
      created_at: challenge.now,
      expires_at: challenge.expiresAt,
    })
    .execute();
}

export type MfaChallenge = { accountId: string; purpose: MfaChallengePurpose; failedAttempts: number };

/**
 * The live (unconsumed, unexpired) challenge for a token. With `isLocked` the
 * row is locked so attempts on one challenge are counted one at a time.
 */
export async function findLiveMfaChallenge(
  db: IdentityDb,
  hash: Buffer,
  now: Date,
  options: { isLocked: boolean } = { isLocked: false },
): Promise<MfaChallenge | undefined> {
  const query = db
    .selectFrom('platform.mfa_challenges')
    .select(['account_id', 'purpose', 'failed_attempts'])
    .where('token_hash', '=', hash)
    .where('consumed_at', 'is', null)
    .where('expires_at', '>', now);
  const row = await (options.isLocked ? query.forUpdate() : query).executeTakeFirst();
  return row
    ? { accountId: row.account_id, purpose: row.purpose, failedAttempts: row.failed_attempts }
    : undefined;
}

/**
 * Counts a wrong code; once `maxAttempts` is reached the challenge is spent.
 * Returns the new count, or undefined when the challenge was already spent
 * (a concurrent request consumed it).
 */
export async function recordMfaChallengeFailure(
  db: IdentityDb,
  hash: Buffer,
  now: Date,
  maxAttempts: number,
): Promise<number | undefined> {
  const row = await db
    .updateTable('platform.mfa_challenges')
    .set((eb) => ({
      failed_attempts: eb('failed_attempts', '+', 1),
      consumed_at: sql<Date | null>`case when failed_attempts + 1 >= ${maxAttempts} then ${now}::timestamptz else null end`,
    }))
    .where('token_hash', '=', hash)
    .where('consumed_at', 'is', null)
    .returning('failed_attempts')
    .executeTakeFirst();
  return row?.failed_attempts;
}

export async function consumeMfaChallenge(db: IdentityDb, hash: Buffer, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('platform.mfa_challenges')
    .set({ consumed_at: now })
    .where('token_hash', '=', hash)
    .where('consumed_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
