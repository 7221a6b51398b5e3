export {
  type Argon2idParameters,
  createPasswordHasher,
  OWASP_ARGON2ID,
  type PasswordHasher,
} from './password-hasher.ts';
export {
  checkPasswordPolicy,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  type PasswordPolicyViolation,
} from './password-policy.ts';
