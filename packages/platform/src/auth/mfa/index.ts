export { isMfaError, MfaError, type MfaErrorCode } from './mfa.errors.ts';
export {
  generateRecoveryCodes,
  hashRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODE_COUNT,
} from './recovery-codes.ts';
export {
  createTotp,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
  type Totp,
  type TotpVerification,
} from './totp.ts';
