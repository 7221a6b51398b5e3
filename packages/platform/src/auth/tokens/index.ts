export {
  ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS,
  ACCESS_TOKEN_TYPE,
  type AccessTokenClaims,
  type AccessTokens,
  type AccessTokensOptions,
  AUTHENTICATION_METHODS,
  type AuthenticationMethod,
  createAccessTokens,
  DEFAULT_ACCESS_TOKEN_CACHE_SIZE,
  type IssueAccessTokenInput,
} from './access-tokens.ts';
export {
  generateSigningKeyEntry,
  type LoadOrCreateSigningKeysOptions,
  loadOrCreateSigningKeys,
  type PublicSigningJwk,
  parseSigningKeys,
  SIGNING_ALGORITHM,
  SIGNING_KEY_ID_PATTERN,
  SIGNING_KEYS_FILE_NAME,
  type SigningHeader,
  type SigningKeySet,
  type SigningKeySetDescription,
} from './signing-keys.ts';
export {
  AccessTokenError,
  type AccessTokenFailureReason,
  isAccessTokenError,
  isTokensError,
  TokensError,
  type TokensErrorCode,
} from './tokens.errors.ts';
