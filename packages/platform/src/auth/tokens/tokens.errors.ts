import { AppError } from '../../errors/index.ts';

/**
 * Every code the tokens module reports. Only `auth.invalid_token` is the
 * client's fault; the others are server faults (kind `internal`, a generic 500
 * over HTTP). Messages never include tokens or key material.
 */
export type TokensErrorCode =
  /** An access token failed verification; `reason` says why (for logs, not clients). */
  | 'auth.invalid_token'
  /** `AUTH_SIGNING_KEYS` (or the development key file) is malformed. */
  | 'auth.invalid_signing_keys'
  /** No signing keys are configured and generating them is not allowed (production). */
  | 'auth.signing_keys_required'
  /** A caller passed options or issue input the module cannot use (a programming error). */
  | 'auth.invalid_token_input';

/**
 * Why an access token was refused. Logged and asserted in tests; never sent to
 * the client, so a forger learns nothing about which check failed.
 */
export type AccessTokenFailureReason =
  /** Not a compact JWS/JWT, too long, or not parseable. */
  | 'malformed'
  /** No `kid` header, or a `kid` that no configured key has. */
  | 'unknown_kid'
  /** The signature does not verify under the key the `kid` names. */
  | 'bad_signature'
  /** `exp` is past, beyond the clock tolerance. */
  | 'expired'
  /** Wrong `typ`, `iss` or `aud`, a missing or ill-typed claim, or `nbf` in the future. */
  | 'claims'
  /** An `alg` other than EdDSA (`none`, HS256 key confusion, ...). */
  | 'algorithm';

const ACCESS_TOKEN_DETAIL = 'The access token is invalid or has expired';

/**
 * A refused access token: 401 with `WWW-Authenticate: Bearer error="invalid_token"`
 * (RFC 6750 section 3.1). The detail is the same for every reason so responses
 * are no oracle; `reason` is a plain property, not an extension, so it reaches
 * logs but not the problem document.
 *
 * @example
 * try {
 *   return await accessTokens.verify(token);
 * } catch (error) {
 *   if (isAccessTokenError(error)) request.log.info({ reason: error.reason }, 'access token refused');
 *   throw error;
 * }
 */
export class AccessTokenError extends AppError {
  declare readonly code: 'auth.invalid_token';
  readonly reason: AccessTokenFailureReason;

  constructor(reason: AccessTokenFailureReason, options: { cause?: unknown } = {}) {
    super('unauthenticated', 'auth.invalid_token', ACCESS_TOKEN_DETAIL, {
      headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      cause: options.cause,
    });
    this.name = 'AccessTokenError';
    this.reason = reason;
  }
}

/**
 * A server-side failure of the tokens module (bad key configuration, misuse).
 *
 * @example
 * throw new TokensError('auth.signing_keys_required', 'Set AUTH_SIGNING_KEYS');
 */
export class TokensError extends AppError {
  declare readonly code: Exclude<TokensErrorCode, 'auth.invalid_token'>;

  constructor(
    code: Exclude<TokensErrorCode, 'auth.invalid_token'>,
    detail: string,
    extensions: Record<string, unknown> = {},
  ) {
    super('internal', code, detail, { extensions });
    this.name = 'TokensError';
  }
}

/**
 * Narrows an unknown failure to an `AccessTokenError`.
 *
 * @example
 * if (isAccessTokenError(error) && error.reason === 'expired') metrics.expiredTokens.inc();
 */
export function isAccessTokenError(error: unknown): error is AccessTokenError {
  return error instanceof AccessTokenError;
}

/**
 * Narrows an unknown failure to a `TokensError`.
 *
 * @example
 * if (isTokensError(error) && error.code === 'auth.signing_keys_required') process.exitCode = 78;
 */
export function isTokensError(error: unknown): error is TokensError {
  return error instanceof TokensError;
}
