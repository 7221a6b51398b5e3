import { AppError, type ErrorKind } from '../../errors/index.ts';

/**
 * Every failure the MFA primitives report. A wrong TOTP code is not an error
 * (`verify` answers `{ isValid: false }`); these are the cases where a caller
 * handed over something that cannot be used at all. Messages never contain a
 * secret, a TOTP code or a recovery code.
 */
export type MfaErrorCode =
  /** A stored TOTP secret is not base32 of 16-64 bytes (a server fault: the value came from our database). */
  | 'mfa.invalid_secret'
  /** An option or argument the code controls is out of range (window, count, issuer, afterTimeStep). */
  | 'mfa.invalid_option'
  /** `hashRecoveryCode` was given text that cannot be a recovery code (user input that skipped `normaliseRecoveryCode`). */
  | 'mfa.malformed_recovery_code';

const KIND_BY_CODE: Record<MfaErrorCode, ErrorKind> = {
  'mfa.invalid_secret': 'internal',
  'mfa.invalid_option': 'internal',
  'mfa.malformed_recovery_code': 'invalid',
};

/**
 * A typed MFA failure; an `AppError` whose kind follows from its code.
 *
 * @example
 * try {
 *   await totp.verify({ secret, code });
 * } catch (error) {
 *   if (isMfaError(error) && error.code === 'mfa.invalid_secret') alertOperator(error);
 *   throw error;
 * }
 */
export class MfaError extends AppError {
  declare readonly code: MfaErrorCode;

  constructor(code: MfaErrorCode, detail: string) {
    super(KIND_BY_CODE[code], code, detail);
    this.name = 'MfaError';
  }
}

/**
 * Narrows an unknown failure to an `MfaError`.
 *
 * @example
 * if (isMfaError(error) && error.code === 'mfa.malformed_recovery_code') return refuseCode();
 */
export function isMfaError(error: unknown): error is MfaError {
  return error instanceof MfaError;
}
