import { type CompactJWSHeaderParameters, errors, type JWTPayload, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { SIGNING_ALGORITHM, type SigningKeySet } from './signing-keys.ts';
import { AccessTokenError, type AccessTokenFailureReason, TokensError } from './tokens.errors.ts';

/** How a session was authenticated, as the `amr` claim (RFC 8176 values where one exists). */
export const AUTHENTICATION_METHODS = ['pwd', 'otp', 'recovery_code'] as const;
export type AuthenticationMethod = (typeof AUTHENTICATION_METHODS)[number];

/** The JWT `typ` of access tokens (RFC 9068), so no other JWT Keel signs can pass as one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/**
 * Seconds by which `exp` (and `nbf`) may be off. Instances issue and verify each
 * other's tokens, and their clocks (NTP-synced) can differ by a second or two; a
 * request sent just before expiry must not fail on a clock that runs slightly
 * ahead. 5 s against a 15-minute TTL extends a token's life negligibly, and
 * revocation does not rely on expiry anyway (the session check does it).
 */
export const ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS = 5;

/** Default number of verified tokens remembered per process. */
export const DEFAULT_ACCESS_TOKEN_CACHE_SIZE = 10_000;

// Keel's tokens are ~350 characters; anything far longer is not one of ours and
// is refused before it costs a parse, a verify or a cache key.
const MAX_TOKEN_LENGTH = 4096;

const AUTHENTICATION_METHOD_SET: ReadonlySet<string> = new Set(AUTHENTICATION_METHODS);

/** What a verified access token says. */
export type AccessTokenClaims = {
  subject: string;
  sessionId: string;
  authenticationMethods: readonly AuthenticationMethod[];
  issuedAt: Date;
  expiresAt: Date;
  tokenId: string;
};

export type IssueAccessTokenInput = {
  subject: string;
  sessionId: string;
  /** At least one of `AUTHENTICATION_METHODS`; anything else is refused at issue time. */
  authenticationMethods: readonly string[];
};

export type AccessTokens = {
  issue(input: IssueAccessTokenInput): Promise<{ token: string; expiresAt: Date }>;
  /** Throws AccessTokenError on any failure. */
  verify(token: string): Promise<AccessTokenClaims>;
};

export type AccessTokensOptions = {
  keys: SigningKeySet;
  /** `AUTH_ISSUER`. */
  issuer: string;
  /** `AUTH_AUDIENCE`. */
  audience: string;
  /** `AUTH_ACCESS_TOKEN_TTL_SECONDS`. */
  ttlSeconds: number;
  clock: { now(): Date };
  /** Source of `jti` values. */
  ids: { uuid(): string };
  /** Verified tokens to remember; 0 disables the cache. Default 10,000. */
  cacheSize?: number;
};

// Stored in the cache; turned into fresh `AccessTokenClaims` on every return so
// no caller can mutate what the next request sees (Dates are mutable).
type VerifiedToken = {
  subject: string;
  sessionId: string;
  authenticationMethods: readonly AuthenticationMethod[];
  issuedAtMs: number;
  expiresAtMs: number;
  tokenId: string;
};

/**
 * Issues and verifies Keel's access tokens: EdDSA-signed JWTs with
 * `typ: at+jwt`, `iss`, `aud`, `sub`, `sid` (session id), `amr`, `iat`, `exp`
 * and `jti`. Verification accepts only EdDSA, only a `kid` from the key set,
 * only this issuer and audience, and remembers verified tokens (see `verify`).
 *
 * Verification does not check revocation: callers must still check that the
 * session (`sid`) is live.
 *
 * @example
 * const accessTokens = createAccessTokens({
 *   keys,
 *   issuer: config.AUTH_ISSUER,
 *   audience: config.AUTH_AUDIENCE,
 *   ttlSeconds: config.AUTH_ACCESS_TOKEN_TTL_SECONDS,
 *   clock: { now: () => new Date() },
 *   ids: { uuid: randomUUID },
 * });
 * const { token } = await accessTokens.issue({ subject: userId, sessionId, authenticationMethods: ['pwd'] });
 * const claims = await accessTokens.verify(token); // claims.sessionId === sessionId
 */
export function createAccessTokens(options: AccessTokensOptions): AccessTokens {
  const { keys, issuer, audience, ttlSeconds, clock, ids } = options;
  const cacheSize = options.cacheSize ?? DEFAULT_ACCESS_TOKEN_CACHE_SIZE;
  if (issuer === '' || audience === '') {
    throw new TokensError('auth.invalid_token_input', 'Access tokens need a non-empty issuer and audience');
  }
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new TokensError(
      'auth.invalid_token_input',
      'The access token TTL must be a positive whole number of seconds',
    );
  }
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
    throw new TokensError(
      'auth.invalid_token_input',
      'The access token cache size must be a whole number, 0 or more',
    );
  }

  // Why caching verified tokens is sound: a JWT is immutable. The cache key is
  // the exact token string, so a hit means these very bytes (header, claims and
  // signature) verified before; nothing about them can have changed since. The
  // key set is fixed for the life of the process (removing a key is a restart,
  // which empties the cache). What does change with time is checked on every
  // hit: the token's expiry. Revocation (logout, password change) is not this
  // cache's job: the per-request session-state check refuses a revoked `sid`
  // whether the token came from the cache or not. Only successful verifications
  // are stored, so a refused token is re-checked (and refused) every time.
  // Bounded LRU: at ~1 KB per entry, 10,000 tokens are ~10 MB.
  const cache = cacheSize > 0 ? new LRUCache<string, VerifiedToken>({ max: cacheSize }) : undefined;

  const resolveKey = (header: CompactJWSHeaderParameters) => {
    // jose checks `alg` against the allow-list before calling this, so only an
    // EdDSA header reaches a key lookup; a missing kid is never "try every key".
    const key = typeof header.kid === 'string' ? keys.publicKeyFor(header.kid) : undefined;
    if (key === undefined) throw new AccessTokenError('unknown_kid');
    return key;
  };

  return {
    async issue(input) {
      const authenticationMethods = checkIssueInput(input);
      const issuedAtSeconds = Math.floor(clock.now().getTime() / 1000);
      const expiresAtSeconds = issuedAtSeconds + ttlSeconds;
      const token = await keys.sign(
        {
          iss: issuer,
          aud: audience,
          sub: input.subject,
          sid: input.sessionId,
          amr: authenticationMethods,
          iat: issuedAtSeconds,
          exp: expiresAtSeconds,
          jti: ids.uuid(),
        },
        { typ: ACCESS_TOKEN_TYPE },
      );
      return { token, expiresAt: new Date(expiresAtSeconds * 1000) };
    },

    async verify(token) {
      if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH) {
        throw new AccessTokenError('malformed');
      }
      const now = clock.now();
      const cached = cache?.get(token);
      if (cached !== undefined) {
        // Never serve an expired token from the cache; past expiry it takes the
        // full path below, which applies the clock tolerance and then refuses.
        if (now.getTime() < cached.expiresAtMs) return toClaims(cached);
        cache?.delete(token);
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, resolveKey, {
          // The allow-list is the defence against `alg: none` and against
          // HS256 "signed" with the public key as an HMAC secret.
          algorithms: [SIGNING_ALGORITHM],
          issuer,
          audience,
          typ: ACCESS_TOKEN_TYPE,
          requiredClaims: ['sub', 'sid', 'amr', 'exp', 'iat', 'jti'],
          currentDate: now,
          clockTolerance: ACCESS_TOKEN_CLOCK_TOLERANCE_SECONDS,
        }));
      } catch (error) {
        throw toAccessTokenError(error);
      }
      const verified = toVerifiedToken(payload);
      // A token verified only thanks to the clock tolerance is not worth caching.
      if (cache !== undefined && now.getTime() < verified.expiresAtMs) cache.set(token, verified);
      return toClaims(verified);
    },
  };
}

function checkIssueInput(input: IssueAccessTokenInput): AuthenticationMethod[] {
  if (input.subject === '' || input.sessionId === '') {
    throw new TokensError('auth.invalid_token_input', 'An access token needs a subject and a session id');
  }
  const methods = [...new Set(input.authenticationMethods)];
  if (methods.length === 0 || !methods.every(isAuthenticationMethod)) {
    // Issuing a token that verify would refuse is a bug; say so here, not at the next request.
    throw new TokensError(
      'auth.invalid_token_input',
      `Authentication methods must be one or more of ${AUTHENTICATION_METHODS.join(', ')}`,
    );
  }
  return methods;
}

function isAuthenticationMethod(value: unknown): value is AuthenticationMethod {
  return typeof value === 'string' && AUTHENTICATION_METHOD_SET.has(value);
}

/** Our own claims, typed. jose has checked presence, iss, aud, exp/nbf and that iat/exp are numbers. */
function toVerifiedToken(payload: JWTPayload): VerifiedToken {
  const { sub, sid, amr, iat, exp, jti } = payload;
  if (
    !isNonEmptyString(sub) ||
    !isNonEmptyString(sid) ||
    !isNonEmptyString(jti) ||
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    !Array.isArray(amr) ||
    amr.length === 0 ||
    !amr.every(isAuthenticationMethod)
  ) {
    throw new AccessTokenError('claims');
  }
  return {
    subject: sub,
    sessionId: sid,
    authenticationMethods: Object.freeze([...amr]),
    issuedAtMs: iat * 1000,
    expiresAtMs: exp * 1000,
    tokenId: jti,
  };
}

function toClaims(verified: VerifiedToken): AccessTokenClaims {
  return {
    subject: verified.subject,
    sessionId: verified.sessionId,
    authenticationMethods: verified.authenticationMethods,
    issuedAt: new Date(verified.issuedAtMs),
    expiresAt: new Date(verified.expiresAtMs),
    tokenId: verified.tokenId,
  };
}

function toAccessTokenError(error: unknown): AccessTokenError {
  if (error instanceof AccessTokenError) return error;
  const reason = reasonFor(error);
  // jose's own errors are fully described by the reason (and a claims failure
  // carries the token's payload, which does not belong in logs). Anything else
  // is unexpected: keep it as the cause so a bug is not silently a 401.
  return error instanceof errors.JOSEError
    ? new AccessTokenError(reason)
    : new AccessTokenError(reason, { cause: error });
}

function reasonFor(error: unknown): AccessTokenFailureReason {
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) return 'claims';
  // JWSInvalid, JWTInvalid, JOSENotSupported: not a well-formed EdDSA JWT.
  return 'malformed';
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}
