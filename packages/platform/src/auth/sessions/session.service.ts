import type { Transaction } from 'kysely';
import {
  advanceMfaTimeStep,
  consumeMfaChallenge,
  consumeRecoveryCode,
  deleteLoginThrottle,
  enableMfa,
  findAccountByEmail,
  findLiveMfaChallenge,
  findLoginLock,
  findRoles,
  insertMfaChallenge,
  lockAccount,
  recordLoginFailure,
  recordMfaChallengeFailure,
  replaceRecoveryCodes,
  updatePasswordHash,
} from '../accounts/account.repository.ts';
import { type Account, mfaSecretAad } from '../accounts/account.ts';
import {
  invalidCredentials,
  invalidMfaChallenge,
  invalidMfaCode,
  invalidRefreshToken,
  loginLocked,
  mfaAttemptsExceeded,
  refreshTokenReused,
} from '../auth.errors.ts';
import {
  auditAuthEvent,
  forgetSessions,
  type IdentityDependencies,
  identityDb,
  type RequestOrigin,
  sessionCacheKey,
} from '../identity.context.ts';
import type { IdentityTables } from '../identity.tables.ts';
import { generateRecoveryCodes, hashRecoveryCode, normaliseRecoveryCode } from '../mfa/index.ts';
import { generateSecretToken, hashEmailForThrottle, hashSecretToken } from '../secret-token.ts';
import {
  findRefreshTokenSession,
  findSessionState,
  insertRefreshToken,
  insertSession,
  lockSession,
  revokeAccountSessions,
  revokeSession,
  type SessionState,
  updateSessionRefreshed,
  useRefreshToken,
} from './session.repository.ts';

/** What a client gets when it has a session. */
export type SessionTokens = {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  sessionId: string;
};

export type LoginResult =
  | { status: 'authenticated'; tokens: SessionTokens }
  | { status: 'mfa_required'; mfaToken: string; expiresAt: Date; isEnrolmentRequired: boolean };

export type MfaVerification = { tokens: SessionTokens; recoveryCodes?: string[] };

type Trx = Transaction<IdentityTables>;

const TOTP_PATTERN = /^\d{6}$/;

export type SessionService = ReturnType<typeof createSessionService>;

export function createSessionService(deps: IdentityDependencies) {
  const db = identityDb(deps.database);
  const { clock, settings } = deps;

  async function startSession(
    trx: Trx,
    account: Account,
    authenticationMethods: readonly string[],
    origin: RequestOrigin,
  ): Promise<SessionTokens> {
    const now = clock.now();
    const sessionId = deps.ids.uuid();
    const absoluteExpiresAt = new Date(now.getTime() + settings.refreshAbsoluteTtlMs);
    const idleExpiresAt = new Date(
      Math.min(now.getTime() + settings.refreshIdleTtlMs, absoluteExpiresAt.getTime()),
    );
    await insertSession(trx, {
      id: sessionId,
      accountId: account.id,
      authenticationMethods,
      isMfaAuthenticated:
        authenticationMethods.includes('otp') || authenticationMethods.includes('recovery_code'),
      now,
      idleExpiresAt,
      absoluteExpiresAt,
      ip: origin.ip,
      userAgent: origin.userAgent?.slice(0, 512) ?? null,
    });
    const refreshToken = generateSecretToken();
    await insertRefreshToken(trx, { hash: hashSecretToken(refreshToken), sessionId, now });
    const access = await deps.accessTokens.issue({ subject: account.id, sessionId, authenticationMethods });
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken,
      refreshTokenExpiresAt: idleExpiresAt,
      sessionId,
    };
  }

  const invalidateSessions = (sessionIds: readonly string[]) => forgetSessions(deps, sessionIds);

  /** The audit record of a completed sign-in, in the transaction that created the session. */
  function auditLoginSucceeded(
    trx: Trx,
    origin: RequestOrigin,
    accountId: string,
    tokens: SessionTokens,
    methods: readonly string[],
  ) {
    return auditAuthEvent(trx, origin, {
      actorType: 'user',
      actorId: accountId,
      action: 'auth.login_succeeded',
      resourceType: 'session',
      resourceId: tokens.sessionId,
      outcome: 'success',
      changes: { authenticationMethods: [...methods] },
      occurredAt: clock.now(),
    });
  }

  /** Verifies a TOTP or recovery code for an account inside the caller's transaction. */
  async function checkSecondFactor(
    trx: Trx,
    account: Account,
    secret: string,
    code: string,
  ): Promise<'otp' | 'recovery_code' | undefined> {
    const trimmed = code.trim();
    if (TOTP_PATTERN.test(trimmed)) {
      const result = await deps.totp.verify({
        secret,
        code: trimmed,
        ...(account.mfaLastTimeStep === null ? {} : { afterTimeStep: account.mfaLastTimeStep }),
      });
      // The conditional update is the replay guard: a code's step is accepted at most once.
      if (result.isValid && (await advanceMfaTimeStep(trx, account.id, result.timeStep))) return 'otp';
      return undefined;
    }
    const normalised = normaliseRecoveryCode(trimmed);
    if (normalised === undefined) return undefined;
    const isUsed = await consumeRecoveryCode(trx, account.id, hashRecoveryCode(normalised), clock.now());
    return isUsed ? 'recovery_code' : undefined;
  }

  return {
    /**
     * Signs in with email and password. Unknown email, wrong password and a
     * disabled account get the same answer after the same work (an argon2
     * verification either way), and every failure counts towards the email's
     * lock, whether or not an account has that email.
     */
    async login(input: { email: string; password: string }, origin: RequestOrigin): Promise<LoginResult> {
      const emailHash = hashEmailForThrottle(input.email);
      const now = clock.now();
      const lockedUntil = await db.run((handle) => findLoginLock(handle, emailHash));
      if (lockedUntil !== undefined && lockedUntil > now) {
        throw loginLocked(Math.max(1, Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000)));
      }
      const account = await db.run((handle) => findAccountByEmail(handle, input.email));
      const isPasswordCorrect =
        account === undefined
          ? await deps.passwords.verifyDummy(input.password)
          : await deps.passwords.verify(account.passwordHash, input.password);

      if (account === undefined || !isPasswordCorrect || account.status !== 'active') {
        await db.transaction(async (trx) => {
          await recordLoginFailure(trx, emailHash, clock.now(), settings.lockout);
          await auditAuthEvent(trx, origin, {
            actorType: account ? 'user' : 'anonymous',
            actorId: account?.id ?? null,
            action: 'auth.login_failed',
            resourceType: 'account',
            resourceId: account?.id ?? null,
            outcome: 'failure',
            changes: {
              reason:
                account === undefined
                  ? 'unknown_email'
                  : isPasswordCorrect
                    ? 'account_disabled'
                    : 'wrong_password',
            },
            occurredAt: clock.now(),
          });
        });
        throw invalidCredentials();
      }

      const roles = await db.run((handle) => findRoles(handle, account.id));
      const needsMfa = account.mfaEnabledAt !== null || deps.roles.requiresMfa(roles);
      return db.transaction(async (trx) => {
        await deleteLoginThrottle(trx, emailHash);
        if (deps.passwords.needsRehash(account.passwordHash)) {
          const upgraded = await deps.passwords.hash(input.password);
          await updatePasswordHash(trx, account.id, upgraded, clock.now(), { isChange: false });
        }
        if (needsMfa) {
          const mfaToken = generateSecretToken();
          const expiresAt = new Date(clock.now().getTime() + settings.mfaChallengeTtlMs);
          const isEnrolmentRequired = account.mfaEnabledAt === null;
          await insertMfaChallenge(trx, {
            hash: hashSecretToken(mfaToken),
            accountId: account.id,
            purpose: isEnrolmentRequired ? 'enroll' : 'verify',
            now: clock.now(),
            expiresAt,
          });
          await auditAuthEvent(trx, origin, {
            actorType: 'user',
            actorId: account.id,
            action: 'auth.mfa_challenged',
            resourceType: 'account',
            resourceId: account.id,
            outcome: 'success',
            changes: { isEnrolmentRequired },
            occurredAt: clock.now(),
          });
          return { status: 'mfa_required', mfaToken, expiresAt, isEnrolmentRequired } as const;
        }
        const tokens = await startSession(trx, account, ['pwd'], origin);
        await auditLoginSucceeded(trx, origin, account.id, tokens, ['pwd']);
        return { status: 'authenticated', tokens } as const;
      });
    },

    /**
     * Completes a login that needs MFA with a TOTP or a recovery code. For an
     * enrolment challenge, the code confirms the secret set up through
     * `enrollWithChallenge` and the answer carries the new recovery codes.
     * Wrong codes are counted on the challenge; at the limit it is spent.
     */
    async verifyMfa(
      input: { mfaToken: string; code: string },
      origin: RequestOrigin,
    ): Promise<MfaVerification> {
      const challengeHash = hashSecretToken(input.mfaToken);
      const outcome = await db.transaction(async (trx) => {
        const challenge = await findLiveMfaChallenge(trx, challengeHash, clock.now(), { isLocked: true });
        if (challenge === undefined) return { kind: 'invalid_challenge' } as const;
        const account = await lockAccount(trx, challenge.accountId);
        if (account === undefined || account.status !== 'active' || account.mfaSecret === null) {
          return { kind: 'invalid_challenge' } as const;
        }
        const secret = deps.encryption.decrypt(account.mfaSecret, mfaSecretAad(account.id));
        if (challenge.purpose === 'enroll') {
          if (account.mfaEnabledAt !== null) return { kind: 'invalid_challenge' } as const;
          const result = await deps.totp.verify({ secret, code: input.code.trim() });
          if (!result.isValid) return { kind: 'wrong_code', accountId: account.id } as const;
          await enableMfa(trx, account.id, result.timeStep, clock.now());
          const recoveryCodes = generateRecoveryCodes();
          await replaceRecoveryCodes(trx, account.id, recoveryCodes.map(hashRecoveryCode), clock.now());
          await consumeMfaChallenge(trx, challengeHash, clock.now());
          const tokens = await startSession(trx, account, ['pwd', 'otp'], origin);
          await auditAuthEvent(trx, origin, {
            actorType: 'user',
            actorId: account.id,
            action: 'auth.mfa_enabled',
            resourceType: 'account',
            resourceId: account.id,
            outcome: 'success',
            occurredAt: clock.now(),
          });
          await auditLoginSucceeded(trx, origin, account.id, tokens, ['pwd', 'otp']);
          return { kind: 'ok', verification: { tokens, recoveryCodes } } as const;
        }
        if (account.mfaEnabledAt === null) return { kind: 'invalid_challenge' } as const;
        const method = await checkSecondFactor(trx, account, secret, input.code);
        if (method === undefined) return { kind: 'wrong_code', accountId: account.id } as const;
        await consumeMfaChallenge(trx, challengeHash, clock.now());
        const tokens = await startSession(trx, account, ['pwd', method], origin);
        await auditLoginSucceeded(trx, origin, account.id, tokens, ['pwd', method]);
        return { kind: 'ok', verification: { tokens } } as const;
      });

      if (outcome.kind === 'ok') return outcome.verification;
      if (outcome.kind === 'invalid_challenge') throw invalidMfaChallenge();
      // The failure is counted in its own transaction: the one above rolled
      // nothing forward (a replayed code must leave no trace but the count).
      const attempts = await db.transaction(async (trx) => {
        const count = await recordMfaChallengeFailure(
          trx,
          challengeHash,
          clock.now(),
          settings.mfaMaxAttempts,
        );
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: outcome.accountId,
          action: 'auth.mfa_failed',
          resourceType: 'account',
          resourceId: outcome.accountId,
          outcome: 'failure',
          changes: { failedAttempts: count ?? null },
          occurredAt: clock.now(),
        });
        return count;
      });
      if (attempts === undefined) throw invalidMfaChallenge();
      if (attempts >= settings.mfaMaxAttempts) throw mfaAttemptsExceeded();
      throw invalidMfaCode();
    },

    /**
     * Exchanges a refresh token for new tokens, rotating it. A token that was
     * already used is reuse (stolen, or replayed): the whole session (the
     * token family) is revoked and the event audited.
     */
    async refresh(input: { refreshToken: string }, origin: RequestOrigin): Promise<SessionTokens> {
      const hash = hashSecretToken(input.refreshToken);
      const outcome = await db.transaction(async (trx) => {
        const now = clock.now();
        const sessionId = await useRefreshToken(trx, hash, now);
        if (sessionId === undefined) {
          const reusedSessionId = await findRefreshTokenSession(trx, hash);
          if (reusedSessionId === undefined) return { kind: 'invalid' } as const;
          const session = await lockSession(trx, reusedSessionId);
          // A used token of a session that already ended (logout, disable, an earlier reuse) is
          // just stale: a client retrying after its session ended is no theft to report.
          if (session === undefined || session.revokedAt !== null) return { kind: 'invalid' } as const;
          const wasLive = await revokeSession(trx, reusedSessionId, 'refresh_token_reuse', now);
          await auditAuthEvent(trx, origin, {
            actorType: 'user',
            actorId: session.accountId,
            action: 'auth.refresh_token_reused',
            resourceType: 'session',
            resourceId: reusedSessionId,
            outcome: 'denied',
            changes: { wasSessionLive: wasLive },
            occurredAt: now,
          });
          return { kind: 'reused', sessionId: reusedSessionId } as const;
        }
        const session = await lockSession(trx, sessionId);
        if (
          session === undefined ||
          session.revokedAt !== null ||
          session.idleExpiresAt <= now ||
          session.absoluteExpiresAt <= now
        ) {
          return { kind: 'invalid' } as const;
        }
        const account = await lockAccount(trx, session.accountId);
        if (account === undefined || account.status !== 'active') return { kind: 'invalid' } as const;
        const idleExpiresAt = new Date(
          Math.min(now.getTime() + settings.refreshIdleTtlMs, session.absoluteExpiresAt.getTime()),
        );
        const refreshToken = generateSecretToken();
        await insertRefreshToken(trx, { hash: hashSecretToken(refreshToken), sessionId, now });
        await updateSessionRefreshed(trx, sessionId, now, idleExpiresAt);
        const access = await deps.accessTokens.issue({
          subject: account.id,
          sessionId,
          authenticationMethods: session.authenticationMethods,
        });
        return {
          kind: 'ok',
          tokens: {
            accessToken: access.token,
            accessTokenExpiresAt: access.expiresAt,
            refreshToken,
            refreshTokenExpiresAt: idleExpiresAt,
            sessionId,
          },
        } as const;
      });
      if (outcome.kind === 'ok') return outcome.tokens;
      if (outcome.kind === 'reused') {
        await invalidateSessions([outcome.sessionId]);
        throw refreshTokenReused();
      }
      throw invalidRefreshToken();
    },

    async logout(principal: { id: string; sessionId?: string }, origin: RequestOrigin): Promise<void> {
      const sessionId = principal.sessionId;
      if (sessionId === undefined) return;
      await db.transaction(async (trx) => {
        await revokeSession(trx, sessionId, 'logout', clock.now());
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: principal.id,
          action: 'auth.logged_out',
          resourceType: 'session',
          resourceId: sessionId,
          outcome: 'success',
          occurredAt: clock.now(),
        });
      });
      await invalidateSessions([sessionId]);
    },

    async logoutAll(principal: { id: string }, origin: RequestOrigin): Promise<number> {
      const revoked = await db.transaction(async (trx) => {
        const ids = await revokeAccountSessions(trx, principal.id, 'logout_all', clock.now());
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: principal.id,
          action: 'auth.logged_out_everywhere',
          resourceType: 'account',
          resourceId: principal.id,
          outcome: 'success',
          changes: { sessionsRevoked: ids.length },
          occurredAt: clock.now(),
        });
        return ids;
      });
      await invalidateSessions(revoked);
      return revoked.length;
    },

    /**
     * The session's state for the per-request check, from the short-lived
     * cache or the database. Revocation paths delete the cache entry, so this
     * process (and every process, with Redis) sees them at once; other
     * processes with an in-memory cache see them within the cache TTL.
     */
    async sessionState(sessionId: string): Promise<SessionState | undefined> {
      const key = sessionCacheKey(sessionId);
      const cached = await deps.sessionCache.get(key);
      if (cached !== undefined) return cached;
      const state = await db.run((handle) => findSessionState(handle, sessionId, clock.now()));
      if (state !== undefined && settings.sessionCacheTtlMs > 0) {
        await deps.sessionCache.set(key, state, settings.sessionCacheTtlMs);
      }
      return state;
    },

    invalidateSessions,
    startSession,
    checkSecondFactor,
  };
}
