import { sql } from 'kysely';
import type { IdentityDb, SessionRevocationReason } from '../identity.tables.ts';

export type NewSession = {
  id: string;
  accountId: string;
  authenticationMethods: readonly string[];
  isMfaAuthenticated: boolean;
  now: Date;
  idleExpiresAt: Date;
  absoluteExpiresAt: Date;
  ip: string | null;
  userAgent: string | null;
};

export async function insertSession(db: IdentityDb, session: NewSession): Promise<void> {
  await db
    .insertInto('platform.sessions')
    .values({
      id: session.id,
      account_id: session.accountId,
      authentication_methods: [...session.authenticationMethods],
      is_mfa_authenticated: session.isMfaAuthenticated,
      created_at: session.now,
      last_refreshed_at: session.now,
      idle_expires_at: session.idleExpiresAt,
      absolute_expires_at: session.absoluteExpiresAt,
      ip: session.ip,
      user_agent: session.userAgent,
    })
    .execute();
}

export async function insertRefreshToken(
  db: IdentityDb,
  token: { hash: Buffer; sessionId: string; now: Date },
): Promise<void> {
  await db
    .insertInto('platform.refresh_tokens')
    .values({ token_hash: token.hash, session_id: token.sessionId, issued_at: token.now })
    .execute();
}

/**
 * Marks a refresh token used if it was not: the one conditional update that
 * decides, under any race, which presentation is the rotation and which is reuse.
 */
export async function useRefreshToken(db: IdentityDb, hash: Buffer, now: Date): Promise<string | undefined> {
  const row = await db
    .updateTable('platform.refresh_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .returning('session_id')
    .executeTakeFirst();
  return row?.session_id;
}

export async function findRefreshTokenSession(db: IdentityDb, hash: Buffer): Promise<string | undefined> {
  const row = await db
    .selectFrom('platform.refresh_tokens')
    .select('session_id')
    .where('token_hash', '=', hash)
    .executeTakeFirst();
  return row?.session_id;
}

export type SessionRecord = {
  id: string;
  accountId: string;
  authenticationMethods: string[];
  isMfaAuthenticated: boolean;
  idleExpiresAt: Date;
  absoluteExpiresAt: Date;
  revokedAt: Date | null;
};

export async function lockSession(db: IdentityDb, id: string): Promise<SessionRecord | undefined> {
  const row = await db
    .selectFrom('platform.sessions')
    .select([
      'id',
      'account_id',
      'authentication_methods',
      'is_mfa_authenticated',
      'idle_expires_at',
      'absolute_expires_at',
      'revoked_at',
    ])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row
    ? {
        id: row.id,
        accountId: row.account_id,
        authenticationMethods: row.authentication_methods,
        isMfaAuthenticated: row.is_mfa_authenticated,
        idleExpiresAt: row.idle_expires_at,
        absoluteExpiresAt: row.absolute_expires_at,
        revokedAt: row.revoked_at,
      }
    : undefined;
}

export async function updateSessionRefreshed(
  db: IdentityDb,
  id: string,
  now: Date,
  idleExpiresAt: Date,
): Promise<void> {
  await db
    .updateTable('platform.sessions')
    .set({ last_refreshed_at: now, idle_expires_at: idleExpiresAt })
    .where('id', '=', id)
    .execute();
}

/** Revokes one session if it is live; returns whether it was. */
export async function revokeSession(
  db: IdentityDb,
  id: string,
  reason: SessionRevocationReason,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('platform.sessions')
    .set({ revoked_at: now, revoked_reason: reason })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Revokes every live session of an account (but `exceptSessionId`); returns the revoked ids. */
export async function revokeAccountSessions(
  db: IdentityDb,
  accountId: string,
  reason: SessionRevocationReason,
  now: Date,
  exceptSessionId?: string,
): Promise<string[]> {
  let query = db
    .updateTable('platform.sessions')
    .set({ revoked_at: now, revoked_reason: reason })
    .where('account_id', '=', accountId)
    .where('revoked_at', 'is', null);
  if (exceptSessionId !== undefined) query = query.where('id', '!=', exceptSessionId);
  const rows = await query.returning('id').execute();
  return rows.map((row) => row.id);
}

/** What the per-request check needs: is the session live, and with which roles. */
export type SessionState = {
  accountId: string;
  isActive: boolean;
  isMfaAuthenticated: boolean;
  roles: string[];
};

/**
 * One round trip: the session, its account's status and its roles. A session
 * is active while it is not revoked, not past its absolute expiry, and its
 * account is active.
 */
export async function findSessionState(
  db: IdentityDb,
  id: string,
  now: Date,
): Promise<SessionState | undefined> {
  const row = await db
    .selectFrom('platform.sessions as s')
    .innerJoin('platform.accounts as a', 'a.id', 's.account_id')
    .select([
      's.account_id',
      's.is_mfa_authenticated',
      sql<boolean>`s.revoked_at is null and s.absolute_expires_at > ${now} and a.status = 'active'`.as(
        'is_active',
      ),
      sql<
        string[]
      >`coalesce((select array_agg(g.role order by g.role) from platform.role_grants g where g.account_id = s.account_id), '{}')`.as(
        'roles',
      ),
    ])
    .where('s.id', '=', id)
    .executeTakeFirst();
  return row
    ? {
        accountId: row.account_id,
        isActive: row.is_active,
        isMfaAuthenticated: row.is_mfa_authenticated,
        roles: row.roles,
      }
    : undefined;
}

export async function findLiveSessionIds(db: IdentityDb, accountId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('platform.sessions')
    .select('id')
    .where('account_id', '=', accountId)
    .where('revoked_at', 'is', null)
    .execute();
  return rows.map((row) => row.id);
}
