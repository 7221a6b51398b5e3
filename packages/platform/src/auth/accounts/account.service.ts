import type { Transaction } from 'kysely';
import {
  accountNotFound,
  cannotChangeOwnAccess,
  emailTaken,
  invalidCredentials,
  invalidMfaChallenge,
  invalidMfaCode,
  invalidResetToken,
  mfaAlreadyEnabled,
  mfaNotPending,
  unknownRole,
  unknownService,
  weakPassword,
} from '../auth.errors.ts';
import {
  auditAuthEvent,
  forgetSessions,
  type IdentityDependencies,
  identityDb,
  type RequestOrigin,
} from '../identity.context.ts';
import type { IdentityTables } from '../identity.tables.ts';
import { generateRecoveryCodes, hashRecoveryCode } from '../mfa/index.ts';
import { checkPasswordPolicy, type PasswordPolicyViolation } from '../passwords/index.ts';
import { generateSecretToken, hashEmailForThrottle, hashSecretToken } from '../secret-token.ts';
import { findLiveSessionIds, revokeAccountSessions } from '../sessions/session.repository.ts';
import {
  type AccountListFilters,
  consumePasswordResetToken,
  deleteLoginThrottle,
  deleteRoleGrant,
  enableMfa,
  findAccountByEmail,
  findAccountById,
  findAccounts,
  findLiveMfaChallenge,
  findPasswordResetAccount,
  findRoles,
  hasAnyAccountWithRole,
  insertAccount,
  insertPasswordResetToken,
  insertRoleGrant,
  lockAccount,
  replaceRecoveryCodes,
  updateAccountStatus,
  updatePasswordHash,
  updatePendingMfaSecret,
} from './account.repository.ts';
import { type AccountSummary, mfaSecretAad, normaliseEmailInput } from './account.ts';

type Trx = Transaction<IdentityTables>;

export const PLATFORM_ADMIN_ROLE = 'platform:admin';

const POLICY_MESSAGES: Record<PasswordPolicyViolation, string> = {
  too_short: 'must be at least 12 characters',
  too_long: 'must be at most 128 characters',
  too_common: 'is one of the most common passwords; choose another',
  contains_email: 'must not contain your email address',
};

export type MfaEnrolment = { secret: string; otpauthUri: string; qrCodeSvg: string };

export type AccountPage = { accounts: AccountSummary[]; nextCursor: string | null };

export type AccountService = ReturnType<typeof createAccountService>;

export function createAccountService(deps: IdentityDependencies) {
  const db = identityDb(deps.database);
  const { clock, settings } = deps;

  function assertPasswordPolicy(password: string, email: string, pointer: string): void {
    const violation = checkPasswordPolicy(password, { email });
    if (violation !== undefined) throw weakPassword(pointer, `The password ${POLICY_MESSAGES[violation]}`);
  }

  const invalidateAccountSessions = (sessionIds: readonly string[]) => forgetSessions(deps, sessionIds);

  /** Grants or revokes a role (idempotently), audits a real change, and applies it to live sessions now. */
  async function changeRole(
    actor: { id: string },
    accountId: string,
    role: string,
    change: 'granted' | 'revoked',
    origin: RequestOrigin,
  ): Promise<string[]> {
    const roles = await db.transaction(async (trx) => {
      const account = await lockAccount(trx, accountId);
      if (account === undefined) throw accountNotFound();
      const isChanged =
        change === 'granted'
          ? await insertRoleGrant(trx, { accountId, role, grantedBy: actor.id, now: clock.now() })
          : await deleteRoleGrant(trx, accountId, role);
      if (isChanged) {
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: actor.id,
          action: `auth.role_${change}`,
          resourceType: 'account',
          resourceId: accountId,
          outcome: 'success',
          changes: { role },
          occurredAt: clock.now(),
        });
      }
      return findRoles(trx, accountId);
    });
    // Permissions come from the cached session state: drop it so the change applies now.
    await invalidateAccountSessions(await liveSessionIds(accountId));
    return roles;
  }

  function liveSessionIds(accountId: string): Promise<string[]> {
    return db.run((handle) => findLiveSessionIds(handle, accountId));
  }

  async function beginMfaEnrolment(trx: Trx, accountId: string, email: string): Promise<MfaEnrolment> {
    const secret = deps.totp.generateSecret();
    const encrypted = deps.encryption.encrypt(secret, mfaSecretAad(accountId));
    if (!(await updatePendingMfaSecret(trx, accountId, encrypted, clock.now()))) throw mfaAlreadyEnabled();
    const otpauthUri = deps.totp.keyUri({ issuer: settings.mfaIssuer, accountName: email, secret });
    return { secret, otpauthUri, qrCodeSvg: await deps.totp.qrCodeSvg(otpauthUri) };
  }

  async function createAccount(
    input: { email: string; password: string; roles: readonly string[]; grantedBy: string | null },
    origin: RequestOrigin,
    action: string,
  ): Promise<{ id: string; email: string; roles: string[] }> {
    const email = normaliseEmailInput(input.email);
    assertPasswordPolicy(input.password, email, '/body/password');
    const passwordHash = await deps.passwords.hash(input.password);
    const id = deps.ids.uuid();
    return db.transaction(async (trx) => {
      const now = clock.now();
      if (!(await insertAccount(trx, { id, email, passwordHash, now }))) throw emailTaken();
      for (const role of input.roles) {
        await insertRoleGrant(trx, { accountId: id, role, grantedBy: input.grantedBy, now });
      }
      await auditAuthEvent(trx, origin, {
        actorType: input.grantedBy ? 'user' : 'anonymous',
        actorId: input.grantedBy,
        action,
        resourceType: 'account',
        resourceId: id,
        outcome: 'success',
        changes: { email, roles: [...input.roles] },
        occurredAt: now,
      });
      return { id, email, roles: [...input.roles] };
    });
  }

  return {
    /**
     * Self-registration. The account gets the registration role of the named
     * service (patient, customer) and nothing more; every other role is
     * granted by an admin.
     */
    async register(
      input: { email: string; password: string; service?: string },
      origin: RequestOrigin,
    ): Promise<{ id: string; email: string; roles: string[] }> {
      const roles: string[] = [];
      if (input.service !== undefined) {
        const role = deps.roles.registrationRoles.get(input.service);
        if (role === undefined) throw unknownService(input.service);
        roles.push(role);
      }
      return createAccount({ ...input, roles, grantedBy: null }, origin, 'auth.account_registered');
    },

    /**
     * Creates an account with the given roles, for operators, demo data and
     * tests; roles must be declared. HTTP callers go through `register` or an
     * admin's `grantRole` instead.
     */
    async provisionAccount(
      input: { email: string; password: string; roles: readonly string[] },
      origin: RequestOrigin = { requestId: null, ip: null, userAgent: null },
    ): Promise<{ id: string; email: string; roles: string[] }> {
      for (const role of input.roles) if (!deps.roles.roles.has(role)) throw unknownRole(role);
      return createAccount({ ...input, grantedBy: null }, origin, 'auth.account_provisioned');
    },

    /** The id of the account with this email, if there is one (operators and demo data). */
    async findAccountIdByEmail(email: string): Promise<string | undefined> {
      const account = await db.run((handle) => findAccountByEmail(handle, email));
      return account?.id;
    },

    async getMe(accountId: string): Promise<AccountSummary> {
      const account = await db.run((handle) => findAccountById(handle, accountId));
      if (account === undefined) throw accountNotFound();
      const roles = await db.run((handle) => findRoles(handle, accountId));
      return {
        id: account.id,
        email: account.email,
        status: account.status,
        isMfaEnabled: account.mfaEnabledAt !== null,
        roles,
        createdAt: account.createdAt,
      };
    },

    /** Changes the password after checking the current one, and ends every other session. */
    async changePassword(
      principal: { id: string; sessionId?: string },
      input: { currentPassword: string; newPassword: string },
      origin: RequestOrigin,
    ): Promise<void> {
      const account = await db.run((handle) => findAccountById(handle, principal.id));
      if (account === undefined) throw accountNotFound();
      if (!(await deps.passwords.verify(account.passwordHash, input.currentPassword))) {
        await db.transaction((trx) =>
          auditAuthEvent(trx, origin, {
            actorType: 'user',
            actorId: account.id,
            action: 'auth.password_change_failed',
            resourceType: 'account',
            resourceId: account.id,
            outcome: 'failure',
            occurredAt: clock.now(),
          }),
        );
        throw invalidCredentials();
      }
      assertPasswordPolicy(input.newPassword, account.email, '/body/new_password');
      const passwordHash = await deps.passwords.hash(input.newPassword);
      const revoked = await db.transaction(async (trx) => {
        await updatePasswordHash(trx, account.id, passwordHash, clock.now(), { isChange: true });
        const ids = await revokeAccountSessions(
          trx,
          account.id,
          'password_changed',
          clock.now(),
          principal.sessionId,
        );
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: account.id,
          action: 'auth.password_changed',
          resourceType: 'account',
          resourceId: account.id,
          outcome: 'success',
          changes: { otherSessionsRevoked: ids.length },
          occurredAt: clock.now(),
        });
        return ids;
      });
      await invalidateAccountSessions(revoked);
    },

    /**
     * Sends a single-use reset token if the email belongs to an active
     * account. Answers the same either way; the send is not awaited by the
     * caller's response so its latency does not tell the two apart.
     */
    async requestPasswordReset(input: { email: string }, origin: RequestOrigin): Promise<void> {
      const account = await db.run((handle) => findAccountByEmail(handle, input.email));
      if (account === undefined || account.status !== 'active') return;
      const token = generateSecretToken();
      const now = clock.now();
      await db.transaction(async (trx) => {
        await insertPasswordResetToken(trx, {
          hash: hashSecretToken(token),
          accountId: account.id,
          now,
          expiresAt: new Date(now.getTime() + settings.passwordResetTtlMs),
        });
        await auditAuthEvent(trx, origin, {
          actorType: 'anonymous',
          action: 'auth.password_reset_requested',
          resourceType: 'account',
          resourceId: account.id,
          outcome: 'success',
          occurredAt: now,
        });
      });
      void deps.notifier
        .send({
          to: account.email,
          template: 'password_reset',
          data: { expiresInMinutes: Math.round(settings.passwordResetTtlMs / 60_000) },
          secrets: { resetToken: token },
        })
        .catch((error: unknown) =>
          deps.logger.error(
            { err: { message: (error as Error).message } },
            'password reset notification failed',
          ),
        );
    },

    /** Sets a new password with a reset token (single use, unexpired) and ends every session. */
    async resetPassword(input: { token: string; newPassword: string }, origin: RequestOrigin): Promise<void> {
      const hash = hashSecretToken(input.token);
      const accountId = await db.run((handle) => findPasswordResetAccount(handle, hash, clock.now()));
      if (accountId === undefined) throw invalidResetToken();
      const account = await db.run((handle) => findAccountById(handle, accountId));
      if (account === undefined) throw invalidResetToken();
      assertPasswordPolicy(input.newPassword, account.email, '/body/new_password');
      const passwordHash = await deps.passwords.hash(input.newPassword);
      const revoked = await db.transaction(async (trx) => {
        // The conditional update decides: of two resets with one token, one wins.
        if ((await consumePasswordResetToken(trx, hash, clock.now())) !== accountId)
          throw invalidResetToken();
        await updatePasswordHash(trx, accountId, passwordHash, clock.now(), { isChange: true });
        await deleteLoginThrottle(trx, hashEmailForThrottle(account.email));
        const ids = await revokeAccountSessions(trx, accountId, 'password_reset', clock.now());
        await auditAuthEvent(trx, origin, {
          actorType: 'anonymous',
          action: 'auth.password_reset',
          resourceType: 'account',
          resourceId: accountId,
          outcome: 'success',
          changes: { sessionsRevoked: ids.length },
          occurredAt: clock.now(),
        });
        return ids;
      });
      await invalidateAccountSessions(revoked);
    },

    /** Starts (or restarts) TOTP enrolment for a signed-in account without MFA. */
    async enrollMfa(principal: { id: string }): Promise<MfaEnrolment> {
      const account = await db.run((handle) => findAccountById(handle, principal.id));
      if (account === undefined) throw accountNotFound();
      if (account.mfaEnabledAt !== null) throw mfaAlreadyEnabled();
      return db.transaction((trx) => beginMfaEnrolment(trx, account.id, account.email));
    },

    /** Enrolment for an account that must have MFA before it may sign in, with its login challenge. */
    async enrollMfaWithChallenge(input: { mfaToken: string }): Promise<MfaEnrolment> {
      const challenge = await db.run((handle) =>
        findLiveMfaChallenge(handle, hashSecretToken(input.mfaToken), clock.now()),
      );
      if (challenge === undefined || challenge.purpose !== 'enroll') throw invalidMfaChallenge();
      const account = await db.run((handle) => findAccountById(handle, challenge.accountId));
      if (account === undefined || account.status !== 'active') throw invalidMfaChallenge();
      return db.transaction((trx) => beginMfaEnrolment(trx, account.id, account.email));
    },

    /** Activates pending TOTP with a first code; returns the 10 recovery codes, shown once. */
    async confirmMfa(
      principal: { id: string },
      input: { code: string },
      origin: RequestOrigin,
    ): Promise<{ recoveryCodes: string[] }> {
      return db.transaction(async (trx) => {
        const account = await lockAccount(trx, principal.id);
        if (account === undefined) throw accountNotFound();
        if (account.mfaEnabledAt !== null) throw mfaAlreadyEnabled();
        if (account.mfaSecret === null) throw mfaNotPending();
        const secret = deps.encryption.decrypt(account.mfaSecret, mfaSecretAad(account.id));
        const result = await deps.totp.verify({ secret, code: input.code.trim() });
        if (!result.isValid) throw invalidMfaCode();
        await enableMfa(trx, account.id, result.timeStep, clock.now());
        const recoveryCodes = generateRecoveryCodes();
        await replaceRecoveryCodes(trx, account.id, recoveryCodes.map(hashRecoveryCode), clock.now());
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: account.id,
          action: 'auth.mfa_enabled',
          resourceType: 'account',
          resourceId: account.id,
          outcome: 'success',
          occurredAt: clock.now(),
        });
        return { recoveryCodes };
      });
    },

    // Administration ---------------------------------------------------------

    async listAccounts(
      filters: AccountListFilters & { limit: number; cursor?: string },
    ): Promise<AccountPage> {
      const rows = await db.run((handle) => findAccounts(handle, filters, filters.cursor, filters.limit + 1));
      const page = rows.slice(0, filters.limit);
      return {
        accounts: page,
        nextCursor: rows.length > filters.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },

    async grantRole(
      actor: { id: string },
      accountId: string,
      role: string,
      origin: RequestOrigin,
    ): Promise<string[]> {
      if (!deps.roles.roles.has(role)) throw unknownRole(role);
      return changeRole(actor, accountId, role, 'granted', origin);
    },

    async revokeRole(
      actor: { id: string },
      accountId: string,
      role: string,
      origin: RequestOrigin,
    ): Promise<string[]> {
      if (actor.id === accountId && role === PLATFORM_ADMIN_ROLE) throw cannotChangeOwnAccess();
      return changeRole(actor, accountId, role, 'revoked', origin);
    },

    /** Disables an account and ends all its sessions; its tokens stop working at once. */
    async setAccountStatus(
      actor: { id: string },
      accountId: string,
      status: 'active' | 'disabled',
      origin: RequestOrigin,
    ): Promise<void> {
      if (actor.id === accountId) throw cannotChangeOwnAccess();
      const revoked = await db.transaction(async (trx) => {
        if (!(await updateAccountStatus(trx, accountId, status, clock.now()))) throw accountNotFound();
        const ids =
          status === 'disabled'
            ? await revokeAccountSessions(trx, accountId, 'account_disabled', clock.now())
            : [];
        await auditAuthEvent(trx, origin, {
          actorType: 'user',
          actorId: actor.id,
          action: status === 'disabled' ? 'auth.account_disabled' : 'auth.account_enabled',
          resourceType: 'account',
          resourceId: accountId,
          outcome: 'success',
          changes: { sessionsRevoked: ids.length },
          occurredAt: clock.now(),
        });
        return ids;
      });
      await invalidateAccountSessions(revoked);
    },

    /**
     * Creates the first admin from KEEL_BOOTSTRAP_ADMIN_* when no account holds
     * `platform:admin`. An existing account with that email is never promoted:
     * whoever registered it first would otherwise become admin.
     */
    async bootstrapAdmin(input: {
      email: string;
      password: string;
    }): Promise<'created' | 'exists' | 'email_taken'> {
      if (await db.run((handle) => hasAnyAccountWithRole(handle, PLATFORM_ADMIN_ROLE))) return 'exists';
      try {
        await createAccount(
          { email: input.email, password: input.password, roles: [PLATFORM_ADMIN_ROLE], grantedBy: null },
          { requestId: null, ip: null, userAgent: null },
          'auth.admin_bootstrapped',
        );
        return 'created';
      } catch (error) {
        if ((error as { code?: string }).code === 'auth.email_taken') return 'email_taken';
        throw error;
      }
    },
  };
}
