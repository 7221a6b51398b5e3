import { AppError, type FieldError } from '../errors/index.ts';

/** Every code the identity core answers with. */
export type AuthErrorCode =
  | 'auth.unauthenticated'
  | 'auth.forbidden'
  | 'auth.invalid_token'
  | 'auth.session_revoked'
  | 'auth.invalid_api_key'
  | 'auth.invalid_credentials'
  | 'auth.login_locked'
  | 'auth.email_taken'
  | 'auth.weak_password'
  | 'auth.invalid_refresh_token'
  | 'auth.refresh_token_reused'
  | 'auth.invalid_reset_token'
  | 'auth.invalid_mfa_challenge'
  | 'auth.invalid_mfa_code'
  | 'auth.mfa_attempts_exceeded'
  | 'auth.mfa_already_enabled'
  | 'auth.mfa_not_pending'
  | 'auth.unknown_service'
  | 'auth.unknown_role'
  | 'auth.unknown_permission'
  | 'auth.account_not_found'
  | 'auth.api_key_not_found'
  | 'auth.cannot_change_own_access';

const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer error="invalid_token"' };

export function sessionRevoked(): AppError {
  return new AppError('unauthenticated', 'auth.session_revoked', 'The session has ended; sign in again', {
    headers: BEARER_CHALLENGE,
  });
}

export function invalidApiKey(): AppError {
  return new AppError('unauthenticated', 'auth.invalid_api_key', 'The API key is not valid', {
    headers: BEARER_CHALLENGE,
  });
}

// One answer for unknown email, wrong password and disabled account alike.
export function invalidCredentials(): AppError {
  return new AppError('unauthenticated', 'auth.invalid_credentials', 'The email or password is not correct');
}

export function loginLocked(retryAfterSeconds: number): AppError {
  return new AppError(
    'rate_limited',
    'auth.login_locked',
    'Too many failed sign-in attempts; try again later',
    { retryAfterSeconds },
  );
}

export function emailTaken(): AppError {
  return new AppError('conflict', 'auth.email_taken', 'An account with this email already exists');
}

export function weakPassword(pointer: string, detail: string): AppError {
  const errors: FieldError[] = [{ pointer, detail }];
  return new AppError('invalid', 'auth.weak_password', detail, { errors });
}

export function invalidRefreshToken(): AppError {
  return new AppError('unauthenticated', 'auth.invalid_refresh_token', 'The refresh token is not valid');
}

export function refreshTokenReused(): AppError {
  return new AppError(
    'unauthenticated',
    'auth.refresh_token_reused',
    'The refresh token was already used; the session has been ended',
  );
}

export function invalidResetToken(): AppError {
  return new AppError('invalid', 'auth.invalid_reset_token', 'The reset link is invalid or has expired');
}

export function invalidMfaChallenge(): AppError {
  return new AppError(
    'unauthenticated',
    'auth.invalid_mfa_challenge',
    'The MFA step has expired or is not valid; sign in again',
  );
}

export function invalidMfaCode(): AppError {
  return new AppError('unauthenticated', 'auth.invalid_mfa_code', 'The code is not correct');
}

export function mfaAttemptsExceeded(): AppError {
  return new AppError('unauthenticated', 'auth.mfa_attempts_exceeded', 'Too many wrong codes; sign in again');
}

export function mfaAlreadyEnabled(): AppError {
  return new AppError('conflict', 'auth.mfa_already_enabled', 'Two-factor authentication is already on');
}

export function mfaNotPending(): AppError {
  return new AppError('conflict', 'auth.mfa_not_pending', 'Start enrolment before confirming it');
}

export function unknownService(service: string): AppError {
  return new AppError('invalid', 'auth.unknown_service', `No service ${service} offers self-registration`, {
    errors: [{ pointer: '/body/service', detail: 'not a service that offers self-registration' }],
  });
}

export function unknownRole(role: string): AppError {
  return new AppError('invalid', 'auth.unknown_role', `No role ${role} is declared`, {
    errors: [{ pointer: '/body/role', detail: 'not a declared role' }],
  });
}

export function unknownPermission(permission: string): AppError {
  return new AppError(
    'invalid',
    'auth.unknown_permission',
    `Permission ${permission} cannot be given to an API key`,
    { errors: [{ pointer: '/body/permissions', detail: 'unknown or platform permission' }] },
  );
}

export function accountNotFound(): AppError {
  return new AppError('not_found', 'auth.account_not_found', 'No such account');
}

export function apiKeyNotFound(): AppError {
  return new AppError('not_found', 'auth.api_key_not_found', 'No such API key');
}

export function cannotChangeOwnAccess(): AppError {
  return new AppError(
    'conflict',
    'auth.cannot_change_own_access',
    'Admins cannot disable themselves or revoke their own admin role',
  );
}
