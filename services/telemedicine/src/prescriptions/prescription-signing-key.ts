import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import path from 'node:path';
import { ConfigError } from '@keel/platform/config';
import { readOrCreateKeyFile } from '@keel/platform/crypto';

// The Ed25519 key prescriptions are signed with. Key material stays in
// KeyObjects: errors name the variable or the file, never the key.

export const SIGNING_KEY_VARIABLE = 'TELEMEDICINE_PRESCRIPTION_SIGNING_KEY';
export const RETIRED_KEYS_VARIABLE = 'TELEMEDICINE_PRESCRIPTION_RETIRED_PUBLIC_KEYS';
/** Name of the development key file inside the data directory. */
export const GENERATED_SIGNING_KEY_FILE = 'prescription-signing-key.json';

const KEY_FILE_VERSION = 1;

/** The public half as a JSON Web Key (RFC 8037), with its id. */
export type SigningPublicJwk = { kid: string; kty: 'OKP'; crv: 'Ed25519'; x: string };

/** A public key prescriptions were signed with: the current one, or one retired by a rotation. */
export type PrescriptionVerificationKey = {
  /** First 16 hex characters of SHA-256 over the public key's SPKI DER. */
  kid: string;
  publicJwk: SigningPublicJwk;
  /** Whether `signature` (base64url) is this key's signature of `message`. */
  verify(message: Buffer, signature: string): boolean;
};

export type PrescriptionSigningKey = PrescriptionVerificationKey & {
  /** Ed25519 signature of `message`, base64url. */
  sign(message: Buffer): string;
  source: 'environment' | 'generated';
};

type KeyFile = { version: number; privateKey: string };

export type LoadSigningKeyOptions = {
  /** `TELEMEDICINE_PRESCRIPTION_SIGNING_KEY`: base64 of the PKCS#8 DER private key; empty means unset. */
  signingKey?: string;
  /** `KEEL_DATA_DIR`: where the development key file lives. */
  dataDirectory: string;
  /** True outside production: with the variable unset, use (or create) the development key file. */
  allowGenerate: boolean;
};

/**
 * The prescription signing key from `TELEMEDICINE_PRESCRIPTION_SIGNING_KEY`;
 * outside production, with the variable unset, from
 * `<dataDirectory>/prescription-signing-key.json`, created (mode 0600) on
 * first start. In production the variable is required: a generated key would
 * live on one machine, and prescriptions signed there could not be verified
 * against the key the other instances publish.
 */
export function loadPrescriptionSigningKey(options: LoadSigningKeyOptions): PrescriptionSigningKey {
  const configured = options.signingKey?.trim();
  if (configured !== undefined && configured !== '') {
    return buildSigningKey(parsePrivateKey(configured, SIGNING_KEY_VARIABLE), 'environment');
  }
  if (!options.allowGenerate) {
    throw new ConfigError([
      `${SIGNING_KEY_VARIABLE}: required in production (base64 of an Ed25519 private key in PKCS#8 DER, e.g. ` +
        '`openssl genpkey -algorithm ed25519 -outform DER | base64 -w0`)',
    ]);
  }
  const file = path.resolve(options.dataDirectory, GENERATED_SIGNING_KEY_FILE);
  const stored = readOrCreateKeyFileFor(file);
  return buildSigningKey(parsePrivateKey(stored.privateKey, file), 'generated');
}

/**
 * The public keys of signing keys retired by a rotation, from
 * `TELEMEDICINE_PRESCRIPTION_RETIRED_PUBLIC_KEYS`: comma-separated base64 of
 * Ed25519 public keys in SPKI DER (`openssl pkey -in old.pem -pubout -outform
 * DER | base64 -w0`). Prescriptions signed before the rotation keep
 * verifying against them. A retired key equal to the current one, or listed
 * twice, is a configuration error: it hides a rotation that did not happen.
 */
export function loadRetiredVerificationKeys(
  configured: string | undefined,
  current: PrescriptionVerificationKey,
): PrescriptionVerificationKey[] {
  const entries = (configured ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const problems: string[] = [];
  const keys: PrescriptionVerificationKey[] = [];
  const seen = new Set([current.kid]);
  entries.forEach((entry, index) => {
    const where = `${RETIRED_KEYS_VARIABLE}[${index}]`;
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: Buffer.from(entry, 'base64'), format: 'der', type: 'spki' });
    } catch {
      problems.push(`${where}: not a base64 SPKI DER public key`);
      return;
    }
    if (publicKey.asymmetricKeyType !== 'ed25519') {
      problems.push(`${where}: must be an Ed25519 key (it is ${publicKey.asymmetricKeyType ?? 'unknown'})`);
      return;
    }
    const key = buildVerificationKey(publicKey);
    if (seen.has(key.kid)) {
      problems.push(
        `${where}: key ${key.kid} is ${key.kid === current.kid ? 'the current signing key' : 'listed twice'}`,
      );
      return;
    }
    seen.add(key.kid);
    keys.push(key);
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return keys;
}

/** The key id of an Ed25519 public key: it names the key in stored prescriptions and the JWK set. */
export function keyIdOf(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex').slice(0, 16);
}

function parsePrivateKey(base64: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(base64, 'base64'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new ConfigError([`${where}: not a base64 PKCS#8 DER private key`]);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError([`${where}: must be an Ed25519 key (it is ${key.asymmetricKeyType ?? 'unknown'})`]);
  }
  return key;
}

function buildSigningKey(
  privateKey: KeyObject,
  source: PrescriptionSigningKey['source'],
): PrescriptionSigningKey {
  return {
    ...buildVerificationKey(createPublicKey(privateKey)),
    sign: (message) => sign(null, message, privateKey).toString('base64url'),
    source,
  };
}

function buildVerificationKey(publicKey: KeyObject): PrescriptionVerificationKey {
  const kid = keyIdOf(publicKey);
  const { x } = publicKey.export({ format: 'jwk' });
  if (x === undefined) throw new Error('an Ed25519 public key exported no x coordinate');
  return {
    kid,
    publicJwk: { kid, kty: 'OKP', crv: 'Ed25519', x },
    verify: (message, signature) => {
      const bytes = Buffer.from(signature, 'base64url');
      // Buffer.from skips characters outside the alphabet: only a canonical encoding counts.
      if (bytes.toString('base64url') !== signature) return false;
      return verify(null, message, publicKey, bytes);
    },
  };
}

function readOrCreateKeyFileFor(file: string): KeyFile {
  return readOrCreateKeyFile(file, {
    create: () => ({
      version: KEY_FILE_VERSION,
      privateKey: generateKeyPairSync('ed25519')
        .privateKey.export({ type: 'pkcs8', format: 'der' })
        .toString('base64'),
    }),
    isValid: isKeyFile,
    // Never suggest deleting it: prescriptions signed with it could no longer be verified.
    invalidProblem: (keyFile) =>
      `${keyFile}: not a prescription signing key file (expected version ${KEY_FILE_VERSION} with privateKey); ` +
      `restore it from a backup, or set ${SIGNING_KEY_VARIABLE}`,
  });
}

function isKeyFile(value: unknown): value is KeyFile {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return candidate.version === KEY_FILE_VERSION && typeof candidate.privateKey === 'string';
}
