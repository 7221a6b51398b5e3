import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/index.ts';
import { type KeelApp, type Principal, problemResponses } from '../http/index.ts';
import type { RateLimiters } from '../ratelimit/index.ts';
import type { AccountSummary } from './accounts/account.ts';
import {
  AcceptedResponse,
  AccountResponse,
  ChangePasswordBody,
  ConfirmMfaBody,
  JwksResponse,
  LoginBody,
  LoginResponse,
  MeResponse,
  MfaChallengeBody,
  MfaEnrolmentResponse,
  PasswordResetBody,
  PasswordResetRequestBody,
  RecoveryCodesResponse,
  RefreshBody,
  RegisterBody,
  SessionsRevokedResponse,
  SessionTokensResponse,
  VerifyMfaBody,
} from './auth.schemas.ts';
import { type Identity, originOf } from './identity.ts';
import { hashSecretToken } from './secret-token.ts';
import type { SessionTokens } from './sessions/session.service.ts';

const TAGS = ['auth'];

export function toAccountResponse(account: AccountSummary) {
  return {
    id: account.id,
    email: account.email,
    status: account.status,
    mfa_enabled: account.isMfaEnabled,
    roles: account.roles,
    created_at: account.createdAt.toISOString(),
  };
}

function toTokensResponse(tokens: SessionTokens, lifetimeSeconds: number, recoveryCodes?: string[]) {
  return {
    status: 'authenticated' as const,
    token_type: 'Bearer' as const,
    access_token: tokens.accessToken,
    // Tokens are issued with the full lifetime; counting down from the server clock would only add skew.
    expires_in: lifetimeSeconds,
    refresh_token: tokens.refreshToken,
    refresh_token_expires_at: tokens.refreshTokenExpiresAt.toISOString(),
    session_id: tokens.sessionId,
    ...(recoveryCodes ? { recovery_codes: recoveryCodes } : {}),
  };
}

function principalOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  // The access hook guarantees a principal on non-public routes; this guards a misdeclared route.
  if (principal === undefined) throw new AppError('unauthenticated', 'auth.unauthenticated', 'Sign in first');
  return principal;
}

function userOf(request: FastifyRequest): Principal {
  const principal = principalOf(request);
  if (principal.kind !== 'user') {
    throw new AppError('forbidden', 'auth.forbidden', 'This operation is for signed-in people, not API keys');
  }
  return principal;
}

const emailOf = (request: FastifyRequest) => {
  const email = (request.body as { email?: unknown } | undefined)?.email;
  return typeof email === 'string' ? email.trim().toLowerCase() : undefined;
};

const mfaTokenOf = (request: FastifyRequest) => {
  const token = (request.body as { mfa_token?: unknown } | undefined)?.mfa_token;
  return typeof token === 'string' ? hashSecretToken(token).toString('hex') : undefined;
};

/**
 * `/auth/*` and the JWKS. Sign-in, registration, MFA and password reset carry
 * per-IP and per-account limits on top of the default per-caller limit.
 */
export function registerAuthRoutes(app: KeelApp, deps: { identity: Identity; limiters: RateLimiters }): void {
  const { identity, limiters } = deps;
  const { accounts, sessions } = identity;
  const now = () => identity.dependencies.clock.now();

  app.get(
    '/.well-known/jwks.json',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'getJwks',
        tags: TAGS,
        summary: 'Public keys that verify access tokens',
        response: { 200: JwksResponse },
      },
    },
    async (_request, reply) => {
      // Verifiers may cache; a new key is published before it signs (see the key-rotation runbook).
      reply.header('cache-control', 'public, max-age=300');
      return identity.jwks();
    },
  );

  app.post(
    '/auth/register',
    {
      config: { access: 'public' },
      // Per IP before the body is read; per account once it is parsed.
      onRequest: [limiters.perIp('register')],
      preValidation: [limiters.perAccount('register', emailOf)],
      schema: {
        operationId: 'register',
        tags: TAGS,
        summary: 'Create an account',
        description:
          'Self-registration. With `service`, the account gets that service’s registration role ' +
          '(e.g. telemedicine:patient); other roles are granted by an admin.',
        body: RegisterBody,
        response: { 201: AccountResponse, ...problemResponses(400, 409, 429) },
      },
    },
    async (request, reply) => {
      const created = await accounts.register(request.body, originOf(request));
      return reply
        .code(201)
        .send(toAccountResponse({ ...created, status: 'active', isMfaEnabled: false, createdAt: now() }));
    },
  );

  app.post(
    '/auth/login',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('login')],
      preValidation: [limiters.perAccount('login', emailOf)],
      schema: {
        operationId: 'login',
        tags: TAGS,
        summary: 'Sign in with email and password',
        description:
          'Answers tokens, or `mfa_required` with a short-lived `mfa_token` for accounts that use MFA ' +
          '(and for roles that require it). Wrong email and wrong password get the same answer. ' +
          'Repeated failures lock the email for a growing delay (`auth.login_locked`, 429).',
        body: LoginBody,
        response: { 200: LoginResponse, ...problemResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const result = await sessions.login(request.body, originOf(request));
      if (result.status === 'authenticated')
        return toTokensResponse(result.tokens, identity.accessTokenTtlSeconds);
      return {
        status: 'mfa_required' as const,
        mfa_token: result.mfaToken,
        mfa_token_expires_at: result.expiresAt.toISOString(),
        enrollment_required: result.isEnrolmentRequired,
      };
    },
  );

  app.post(
    '/auth/mfa/verify',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('mfa')],
      preValidation: [limiters.perAccount('mfa', mfaTokenOf)],
      schema: {
        operationId: 'verifyMfa',
        tags: TAGS,
        summary: 'Complete sign-in with a TOTP or recovery code',
        description:
          'Takes the `mfa_token` from login and a 6-digit TOTP code or a recovery code. A code works once; ' +
          'after too many wrong codes the mfa_token is spent. After enrolment the answer carries the recovery codes.',
        body: VerifyMfaBody,
        response: { 200: SessionTokensResponse, ...problemResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const result = await sessions.verifyMfa(
        { mfaToken: request.body.mfa_token, code: request.body.code },
        originOf(request),
      );
      return toTokensResponse(result.tokens, identity.accessTokenTtlSeconds, result.recoveryCodes);
    },
  );

  app.post(
    '/auth/mfa/challenge/enroll',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('mfa')],
      preValidation: [limiters.perAccount('mfa', mfaTokenOf)],
      schema: {
        operationId: 'enrollMfaWithChallenge',
        tags: TAGS,
        summary: 'Set up TOTP during sign-in',
        description:
          'For an account whose role requires MFA but has none yet: login answers `mfa_required` with ' +
          '`enrollment_required: true`; this returns the secret and QR code; verifyMfa with a first code finishes.',
        body: MfaChallengeBody,
        response: { 200: MfaEnrolmentResponse, ...problemResponses(400, 401, 409, 429) },
      },
    },
    async (request) => {
      const enrolment = await accounts.enrollMfaWithChallenge({ mfaToken: request.body.mfa_token });
      return {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauthUri,
        qr_code_svg: enrolment.qrCodeSvg,
      };
    },
  );

  app.post(
    '/auth/mfa/enroll',
    {
      config: { access: 'authenticated' },
      schema: {
        operationId: 'enrollMfa',
        tags: TAGS,
        summary: 'Start TOTP enrolment',
        security: [{ bearerAuth: [] }],
        response: { 200: MfaEnrolmentResponse, ...problemResponses(401, 403, 409) },
      },
    },
    async (request) => {
      const enrolment = await accounts.enrollMfa(userOf(request));
      return {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauthUri,
        qr_code_svg: enrolment.qrCodeSvg,
      };
    },
  );

  app.post(
    '/auth/mfa/confirm',
    {
      config: { access: 'authenticated' },
      onRequest: [limiters.perAccount('mfa-confirm', (request) => request.principal?.id)],
      schema: {
        operationId: 'confirmMfa',
        tags: TAGS,
        summary: 'Activate TOTP with a first code',
        security: [{ bearerAuth: [] }],
        body: ConfirmMfaBody,
        response: { 200: RecoveryCodesResponse, ...problemResponses(400, 401, 403, 409, 429) },
      },
    },
    async (request) => {
      const result = await accounts.confirmMfa(userOf(request), request.body, originOf(request));
      return { recovery_codes: result.recoveryCodes };
    },
  );

  app.post(
    '/auth/token/refresh',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('refresh')],
      schema: {
        operationId: 'refreshToken',
        tags: TAGS,
        summary: 'Exchange a refresh token for new tokens',
        description:
          'Refresh tokens rotate: each works once. Presenting a used one ends the whole session ' +
          '(`auth.refresh_token_reused`).',
        body: RefreshBody,
        response: { 200: SessionTokensResponse, ...problemResponses(400, 401, 429) },
      },
    },
    async (request) =>
      toTokensResponse(
        await sessions.refresh({ refreshToken: request.body.refresh_token }, originOf(request)),
        identity.accessTokenTtlSeconds,
      ),
  );

  app.post(
    '/auth/logout',
    {
      config: { access: 'authenticated' },
      schema: {
        operationId: 'logout',
        tags: TAGS,
        summary: 'End this session',
        security: [{ bearerAuth: [] }],
        response: { 204: { type: 'null', description: 'Signed out' }, ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      await sessions.logout(userOf(request), originOf(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/logout-all',
    {
      config: { access: 'authenticated' },
      schema: {
        operationId: 'logoutAll',
        tags: TAGS,
        summary: 'End every session of the caller',
        security: [{ bearerAuth: [] }],
        response: { 200: SessionsRevokedResponse, ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ sessions_revoked: await sessions.logoutAll(userOf(request), originOf(request)) }),
  );

  app.get(
    '/auth/me',
    {
      config: { access: 'authenticated' },
      schema: {
        operationId: 'getMe',
        tags: TAGS,
        summary: 'The caller: account, roles and effective permissions',
        security: [{ bearerAuth: [] }],
        response: { 200: MeResponse, ...problemResponses(401) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const permissions = [...principal.permissions].sort();
      if (principal.kind === 'api_key') {
        return {
          id: principal.id,
          kind: 'api_key' as const,
          roles: [],
          permissions,
          mfa_authenticated: false,
        };
      }
      const account = await accounts.getMe(principal.id);
      return {
        id: account.id,
        kind: 'user' as const,
        email: account.email,
        roles: account.roles,
        permissions,
        mfa_enabled: account.isMfaEnabled,
        mfa_authenticated: principal.isMfaAuthenticated,
        ...(principal.sessionId ? { session_id: principal.sessionId } : {}),
      };
    },
  );

  app.post(
    '/auth/password/change',
    {
      config: { access: 'authenticated' },
      onRequest: [limiters.perAccount('password-change', (request) => request.principal?.id)],
      schema: {
        operationId: 'changePassword',
        tags: TAGS,
        summary: 'Change the password (ends every other session)',
        security: [{ bearerAuth: [] }],
        body: ChangePasswordBody,
        response: { 204: { type: 'null', description: 'Changed' }, ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      await accounts.changePassword(
        userOf(request),
        { currentPassword: request.body.current_password, newPassword: request.body.new_password },
        originOf(request),
      );
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/password/reset-request',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('password-reset')],
      preValidation: [limiters.perAccount('password-reset', emailOf)],
      schema: {
        operationId: 'requestPasswordReset',
        tags: TAGS,
        summary: 'Send a password reset token',
        description:
          'Always answers 202, whether or not the email has an account. The token (single use, 30 minutes) ' +
          'goes through the notifier.',
        body: PasswordResetRequestBody,
        response: { 202: AcceptedResponse, ...problemResponses(400, 429) },
      },
    },
    async (request, reply) => {
      await accounts.requestPasswordReset(request.body, originOf(request));
      return reply.code(202).send({ status: 'accepted' as const });
    },
  );

  app.post(
    '/auth/password/reset',
    {
      config: { access: 'public' },
      onRequest: [limiters.perIp('password-reset')],
      schema: {
        operationId: 'resetPassword',
        tags: TAGS,
        summary: 'Set a new password with a reset token (ends every session)',
        body: PasswordResetBody,
        response: { 204: { type: 'null', description: 'Reset' }, ...problemResponses(400, 429) },
      },
    },
    async (request, reply) => {
      await accounts.resetPassword(
        { token: request.body.token, newPassword: request.body.new_password },
        originOf(request),
      );
      return reply.code(204).send(null);
    },
  );
}
