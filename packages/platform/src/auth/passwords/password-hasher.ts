import { randomBytes } from 'node:crypto';
import { type Algorithm, hash, type Options, parseOptions, type Version, verify } from '@node-rs/argon2';

/**
 * Argon2id cost parameters: memory in KiB, passes, lanes.
 *
 * @example
 * const parameters: Argon2idParameters = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
 */
export type Argon2idParameters = {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
};

/**
 * The OWASP Password Storage Cheat Sheet's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
 *
 * @example
 * const hasher = createPasswordHasher(OWASP_ARGON2ID);
 */
export const OWASP_ARGON2ID = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/**
 * Hashes and verifies passwords with argon2id (PHC strings, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
 *
 * @example
 * const passwordHash = await hasher.hash(password);
 * if (await hasher.verify(passwordHash, attempt) && hasher.needsRehash(passwordHash)) {
 *   await saveNewHash(await hasher.hash(attempt));
 * }
 */
export type PasswordHasher = {
  /** Returns an argon2id PHC string with a fresh random salt. */
  hash(password: string): Promise<string>;
  /** False (never throws) for a mismatch or a malformed hash. */
  verify(hash: string, password: string): Promise<boolean>;
  /**
   * Does the same work as verify against a fixed dummy hash and returns false: login calls it
   * when the email is unknown so both paths cost the same.
   */
  verifyDummy(password: string): Promise<false>;
  /** True when the hash was made with weaker/different parameters than current ones (rehash on next login). */
  needsRehash(hash: string): boolean;
};

// `Algorithm` and `Version` are `const enum`s in @node-rs/argon2's d.ts. Const enums are not
// erasable: Node's type stripping cannot inline them and isolatedModules forbids reading ambient
// ones, so we use their numeric values (checked against the enum types).
const ARGON2ID: Algorithm = 2; // Algorithm.Argon2id
const VERSION_0X13: Version = 1; // Version.V0x13 (argon2 v=19), the library default
const OUTPUT_LENGTH_BYTES = 32; // the library default; pinned so needsRehash can compare it

/**
 * Builds a password hasher with argon2id and the OWASP parameters, or overrides of them
 * (tests may lower the cost; production should not go below the defaults).
 *
 * @example
 * const hasher = createPasswordHasher();
 * const passwordHash = await hasher.hash('correct horse battery staple');
 * await hasher.verify(passwordHash, 'correct horse battery staple'); // true
 */
export function createPasswordHasher(parameters: Partial<Argon2idParameters> = {}): PasswordHasher {
  const options: Options = {
    algorithm: ARGON2ID,
    version: VERSION_0X13,
    memoryCost: parameters.memoryCost ?? OWASP_ARGON2ID.memoryCost,
    timeCost: parameters.timeCost ?? OWASP_ARGON2ID.timeCost,
    parallelism: parameters.parallelism ?? OWASP_ARGON2ID.parallelism,
    outputLen: OUTPUT_LENGTH_BYTES,
  };

  // Made on first use with the current parameters, so verifyDummy costs what verify costs for a
  // real account. Its password is random and discarded: nothing can ever match it, and
  // verifyDummy returns false regardless.
  let dummyHash: Promise<string> | undefined;
  const getDummyHash = (): Promise<string> => {
    if (dummyHash === undefined) {
      const pending = hash(randomBytes(32).toString('base64url'), options);
      dummyHash = pending;
      // A failed attempt must not be cached for the life of the process.
      pending.catch(() => {
        if (dummyHash === pending) dummyHash = undefined;
      });
    }
    return dummyHash;
  };

  const verifyNormalised = async (passwordHash: string, password: string): Promise<boolean> => {
    try {
      return await verify(passwordHash, normalisePassword(password));
    } catch {
      // Malformed or unsupported hash: treated as a mismatch, and the error (which could echo
      // the stored hash) goes nowhere.
      return false;
    }
  };

  return {
    hash: (password) => hash(normalisePassword(password), options),
    verify: verifyNormalised,
    verifyDummy: async (password) => {
      await verifyNormalised(await getDummyHash(), password);
      return false;
    },
    needsRehash: (passwordHash) => {
      let used: ReturnType<typeof parseOptions>;
      try {
        used = parseOptions(passwordHash);
      } catch {
        return true;
      }
      return (
        used.algorithm !== options.algorithm ||
        used.version !== options.version ||
        used.memoryCost !== options.memoryCost ||
        used.timeCost !== options.timeCost ||
        used.parallelism !== options.parallelism ||
        used.outputLen !== options.outputLen
      );
    },
  };
}

// The same password typed on different keyboards or input methods can arrive as different code
// point sequences ("é" precomposed, or "e" + combining acute); NFC makes them one byte string
// before argon2 sees it, so the user who set it can always log in with it.
function normalisePassword(password: string): string {
  return password.normalize('NFC');
}
