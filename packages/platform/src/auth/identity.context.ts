import type { AuditEventInput } from '../audit/index.ts';
import { recordAuditEvent } from '../audit/index.ts';
import type { FieldEncryption } from '../crypto/index.ts';
import type { Database, Db } from '../db/index.ts';
import type { Clock, IdGenerator } from '../module/index.ts';
import type { Notifier } from '../notifier/index.ts';
import type { Logger } from '../observability/index.ts';
import type { RoleRegistry } from '../rbac/index.ts';
import type { IdentityDb, IdentityTables } from './identity.tables.ts';
import type { Totp } from './mfa/index.ts';
import type { PasswordHasher } from './passwords/index.ts';
import type { SessionState } from './sessions/session.repository.ts';
import type { TtlCache } from './sessions/session-state-cache.ts';
import type { AccessTokens } from './tokens/index.ts';

/** Where a request came from; every audit event carries it. */
export type RequestOrigin = { requestId: string | null; ip: string | null; userAgent: string | null };

export type IdentitySettings = {
  refreshIdleTtlMs: number;
  refreshAbsoluteTtlMs: number;
  sessionCacheTtlMs: number;
  mfaChallengeTtlMs: number;
  mfaMaxAttempts: number;
  passwordResetTtlMs: number;
  lockout: { threshold: number; baseSeconds: number; maxSeconds: number };
  /** Shown in authenticator apps next to the account. */
  mfaIssuer: string;
};

/** An API key's stored credential as the per-request cache keeps it. */
export type CachedApiKey = {
  secretHashHex: string;
  permissions: string[];
  expiresAt: string | null;
  isRevoked: boolean;
};

export type IdentityDependencies = {
  database: Database;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  roles: RoleRegistry;
  passwords: PasswordHasher;
  accessTokens: AccessTokens;
  totp: Totp;
  encryption: FieldEncryption;
  sessionCache: TtlCache<SessionState>;
  apiKeyCache: TtlCache<CachedApiKey>;
  notifier: Notifier;
  settings: IdentitySettings;
};

export function identityDb(database: Database): Db<IdentityTables> {
  return database.typed<IdentityTables>();
}

/** Records an auth event in the caller's transaction, with the request's origin. */
export async function auditAuthEvent(
  trx: IdentityDb,
  origin: RequestOrigin,
  event: Omit<AuditEventInput, 'requestId' | 'ip' | 'userAgent'>,
): Promise<void> {
  // The identity transaction is a platform transaction: the audit row commits with it.
  await recordAuditEvent(trx as never, { ...origin, ...event });
}

export function sessionCacheKey(sessionId: string): string {
  return `session:${sessionId}`;
}

export function apiKeyCacheKey(keyId: string): string {
  return `api-key:${keyId}`;
}

/** Drops cached session states so a revocation or role change applies on the next request. */
export async function forgetSessions(
  deps: Pick<IdentityDependencies, 'sessionCache'>,
  sessionIds: readonly string[],
) {
  if (sessionIds.length > 0) await deps.sessionCache.delete(sessionIds.map(sessionCacheKey));
}
