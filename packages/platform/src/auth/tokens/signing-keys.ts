import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { exportJWK, type JWTPayload, SignJWT } from 'jose';
import { isTokensError, TokensError } from './tokens.errors.ts';

/** Key ids travel in every token header and the JWKS, so they are short and plain. */
export const SIGNING_KEY_ID_PATTERN = /^[a-z0-9_-]{1,32}$/;

/** The one JWS algorithm Keel signs and accepts: Ed25519 (RFC 8037). */
export const SIGNING_ALGORITHM = 'EdDSA';

/** Where `loadOrCreateSigningKeys` keeps a generated development key, under the data directory. */
export const SIGNING_KEYS_FILE_NAME = 'auth-signing-keys';

// Standard or URL-safe base64; the DER decoder does the real validation.
const BASE64_PATTERN = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** A published verification key: only public members, by construction. */
export type PublicSigningJwk = {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: typeof SIGNING_ALGORITHM;
  use: 'sig';
};

/** What a key set shows of itself in logs and JSON: ids only. */
export type SigningKeySetDescription = { activeKid: string; kids: string[] };

/** Header members a caller may choose; `alg` and `kid` are always the set's own. */
export type SigningHeader = { typ?: string };

/**
 * Ed25519 signing keys by id. The first is active (signs); every key verifies
 * and is published. Private keys live only in closures: the object has no
 * property that holds them, so logging, `JSON.stringify`, spreading or
 * `structuredClone` cannot reach them.
 */
export type SigningKeySet = {
  readonly activeKid: string;
  /** Every id, active first. */
  readonly kids: readonly string[];
  /** Signs `payload` as a compact JWT with `alg: EdDSA` and the active `kid`. */
  sign(payload: JWTPayload, header?: SigningHeader): Promise<string>;
  /** The public verification key for `kid`, or undefined when no configured key has it. */
  publicKeyFor(kid: string): KeyObject | undefined;
  /** The JWKS document: every configured key's public JWK, active first. A fresh copy per call. */
  jwks(): { keys: PublicSigningJwk[] };
  toJSON(): SigningKeySetDescription;
  toString(): string;
  [inspect.custom](): string;
};

export type LoadOrCreateSigningKeysOptions = {
  /** `AUTH_SIGNING_KEYS`, when set. */
  configured?: string | undefined;
  /** `KEEL_DATA_DIR`: where a generated development key is kept. */
  dataDirectory: string;
  /** False in production: without configured keys, start-up fails instead of inventing a key. */
  allowGenerate: boolean;
};

type SigningKey = { kid: string; privateKey: KeyObject; publicKey: KeyObject; jwk: PublicSigningJwk };

/**
 * Parses `AUTH_SIGNING_KEYS`: comma-separated `kid:<base64 PKCS#8 DER Ed25519
 * private key>` entries, the active signer first. Every entry verifies and is
 * published in the JWKS, so a rotation is: add the new key second (published,
 * not signing), promote it to first, and remove the old one once the access
 * token TTL has passed. Errors name the entry's position or kid, never key
 * material.
 *
 * @example
 * const keys = await parseSigningKeys(process.env.AUTH_SIGNING_KEYS ?? '');
 * keys.activeKid; // 'k2'
 */
export async function parseSigningKeys(value: string): Promise<SigningKeySet> {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) {
    throw new TokensError(
      'auth.invalid_signing_keys',
      'The signing key list is empty; expected kid:base64pkcs8[,kid:base64pkcs8]',
    );
  }
  const keys: SigningKey[] = [];
  for (const [index, entry] of entries.entries()) {
    const position = index + 1;
    const separator = entry.indexOf(':');
    if (separator === -1) {
      throw new TokensError(
        'auth.invalid_signing_keys',
        `Signing key entry ${position} is not in the form kid:base64pkcs8`,
        { entry: position },
      );
    }
    const kid = entry.slice(0, separator).trim();
    if (!SIGNING_KEY_ID_PATTERN.test(kid)) {
      // The kid is not echoed: a swapped or mistyped entry may hold key material here.
      throw new TokensError(
        'auth.invalid_signing_keys',
        `Signing key entry ${position} has an invalid kid; kids are 1-32 characters of a-z, 0-9, _ and -`,
        { entry: position },
      );
    }
    if (keys.some((key) => key.kid === kid)) {
      throw new TokensError('auth.invalid_signing_keys', `Signing key ${kid} appears more than once`, {
        kid,
      });
    }
    const privateKey = decodePrivateKey(entry.slice(separator + 1).trim(), kid);
    const publicKey = createPublicKey(privateKey);
    // The same key under two kids is a copy-paste slip: "rotating" to it would
    // change nothing while looking done.
    const twin = keys.find((key) => key.publicKey.equals(publicKey));
    if (twin !== undefined) {
      throw new TokensError(
        'auth.invalid_signing_keys',
        `Signing keys ${twin.kid} and ${kid} are identical`,
        {
          kid,
        },
      );
    }
    keys.push({ kid, privateKey, publicKey, jwk: await toPublicJwk(publicKey, kid) });
  }
  return createSigningKeySet(keys);
}

/**
 * A fresh `kid:<base64 PKCS#8 DER>` Ed25519 entry for `AUTH_SIGNING_KEYS`.
 *
 * @example
 * const value = `${generateSigningKeyEntry('k2')},${process.env.AUTH_SIGNING_KEYS}`; // pre-publish k2
 */
export function generateSigningKeyEntry(kid: string): string {
  if (!SIGNING_KEY_ID_PATTERN.test(kid)) {
    throw new TokensError('auth.invalid_token_input', 'A kid is 1-32 characters of a-z, 0-9, _ and -');
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  return `${kid}:${privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64')}`;
}

/**
 * The configured keys when `configured` is set. Otherwise, when generating is
 * allowed (development, tests), the key kept in `<dataDirectory>/auth-signing-keys`,
 * created on first use (mode 0600) and reused across restarts so tokens survive
 * them. Otherwise `auth.signing_keys_required`: production must not invent a key
 * that other instances do not share.
 *
 * @example
 * const keys = await loadOrCreateSigningKeys({
 *   configured: config.AUTH_SIGNING_KEYS,
 *   dataDirectory: config.KEEL_DATA_DIR,
 *   allowGenerate: config.NODE_ENV !== 'production',
 * });
 */
export async function loadOrCreateSigningKeys(
  options: LoadOrCreateSigningKeysOptions,
): Promise<SigningKeySet> {
  if (options.configured !== undefined) return parseSigningKeys(options.configured);
  if (!options.allowGenerate) {
    throw new TokensError(
      'auth.signing_keys_required',
      'AUTH_SIGNING_KEYS is not set and generating a signing key is not allowed here; ' +
        'set AUTH_SIGNING_KEYS to kid:base64pkcs8 (see generateSigningKeyEntry)',
    );
  }
  const path = join(options.dataDirectory, SIGNING_KEYS_FILE_NAME);
  const existing = await readIfExists(path);
  if (existing !== undefined) return parseKeyFile(existing, path);

  await mkdir(options.dataDirectory, { recursive: true });
  const content = `${generateSigningKeyEntry(`dev-${randomBytes(4).toString('hex')}`)}\n`;
  // Write aside, then link into place: link fails if the file exists, so two
  // processes starting together agree on one key, and neither can read a
  // half-written file.
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, content, { mode: 0o600, flag: 'wx' });
    try {
      await link(temporary, path);
    } catch (error) {
      if (!isErrorCode(error, 'EEXIST')) throw error;
      return parseKeyFile(await readFile(path, 'utf8'), path);
    }
  } finally {
    await rm(temporary, { force: true });
  }
  return parseSigningKeys(content);
}

function createSigningKeySet(keys: readonly SigningKey[]): SigningKeySet {
  const active = keys[0];
  if (active === undefined) {
    throw new TokensError('auth.invalid_signing_keys', 'A signing key set needs at least one key');
  }
  const byKid = new Map(keys.map((key) => [key.kid, key]));
  const kids = Object.freeze(keys.map((key) => key.kid));
  const description = (): SigningKeySetDescription => ({ activeKid: active.kid, kids: [...kids] });
  return Object.freeze({
    activeKid: active.kid,
    kids,
    sign: (payload: JWTPayload, header: SigningHeader = {}) =>
      new SignJWT(payload)
        .setProtectedHeader({
          ...(header.typ === undefined ? {} : { typ: header.typ }),
          alg: SIGNING_ALGORITHM,
          kid: active.kid,
        })
        .sign(active.privateKey),
    publicKeyFor: (kid: string) => byKid.get(kid)?.publicKey,
    jwks: () => ({ keys: keys.map((key) => ({ ...key.jwk })) }),
    toJSON: description,
    toString: () => `SigningKeySet(active=${active.kid}, kids=${kids.join(',')})`,
    [inspect.custom]: () => `SigningKeySet ${JSON.stringify(description())}`,
  });
}

function decodePrivateKey(encoded: string, kid: string): KeyObject {
  const invalid = () =>
    new TokensError(
      'auth.invalid_signing_keys',
      `Signing key ${kid} is not a base64 PKCS#8 DER Ed25519 private key`,
      { kid },
    );
  if (!BASE64_PATTERN.test(encoded)) throw invalid();
  const der = Buffer.from(encoded.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  try {
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    // PKCS#8 also carries RSA and EC keys; only Ed25519 may sign as EdDSA here.
    if (key.asymmetricKeyType !== 'ed25519') throw invalid();
    return key;
  } catch {
    // The decoder's own message is dropped: it describes the bytes, which are secret.
    throw invalid();
  } finally {
    // Best effort: the KeyObject holds its own copy.
    der.fill(0);
  }
}

async function toPublicJwk(publicKey: KeyObject, kid: string): Promise<PublicSigningJwk> {
  const jwk = await exportJWK(publicKey);
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new TokensError('auth.invalid_signing_keys', `Signing key ${kid} is not an Ed25519 key`, { kid });
  }
  // Members are picked, not copied, so nothing private can ride along.
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg: SIGNING_ALGORITHM, use: 'sig' };
}

async function parseKeyFile(content: string, path: string): Promise<SigningKeySet> {
  try {
    return await parseSigningKeys(content);
  } catch (error) {
    if (!isTokensError(error)) throw error;
    throw new TokensError('auth.invalid_signing_keys', `${error.detail} (in ${path})`, {
      ...error.extensions,
      file: path,
    });
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

function isErrorCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
