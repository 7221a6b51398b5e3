import { createHash, randomInt } from 'node:crypto';
import { MfaError } from './mfa.errors.ts';

export const RECOVERY_CODE_COUNT = 10;

/**
 * Digits and lower-case letters without the look-alikes 0/o, 1/l/i: 31 symbols.
 * 31 is not a power of two, so each symbol carries log2(31) ≈ 4.95 bits and
 * twelve of them (59.4 bits) would fall short of 60; sixteen carry ≈ 79.3 bits.
 */
const ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
const GROUP_COUNT = 4;
const GROUP_LENGTH = 4;
const CODE_LENGTH = GROUP_COUNT * GROUP_LENGTH;
const CANONICAL_PATTERN = new RegExp(`^[${ALPHABET}]{${CODE_LENGTH}}$`);
const MAX_COUNT = 100;
/** Generous room for separators; anything longer is not a code and is not worth scanning. */
const MAX_INPUT_LENGTH = 64;
/** Whitespace, ASCII hyphen and the Unicode dashes that phone keyboards and word processors substitute. */
const SEPARATORS = /[\s\-\u2010-\u2015\u2212]/g;

/**
 * Single-use recovery codes like `k7qm-2x9f-hc4t-p8wn` (16 symbols in groups
 * of four, ≈ 79 bits each), drawn uniformly with `node:crypto.randomInt`.
 * Show them once; store only `hashRecoveryCode` of each.
 *
 * @example
 * const codes = generateRecoveryCodes(); // ten distinct codes for the user to write down
 * const hashes = codes.map(hashRecoveryCode); // insert these, never the codes
 */
export function generateRecoveryCodes(count: number = RECOVERY_CODE_COUNT): string[] {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new MfaError(
      'mfa.invalid_option',
      `The recovery code count must be an integer from 1 to ${MAX_COUNT}`,
    );
  }
  // A repeat is a 2^-79 event, but a set makes "distinct" a guarantee rather than a probability.
  const codes = new Set<string>();
  while (codes.size < count) codes.add(generateRecoveryCode());
  return [...codes];
}

/**
 * What the user typed → the canonical form (16 lower-case symbols, no
 * separators): lower-cases and strips whitespace and dashes. Returns
 * `undefined` when the result cannot be a code (wrong length, a character
 * outside the alphabet such as `0`, `o`, `1`, `l` or `i`).
 *
 * @example
 * normaliseRecoveryCode(' K7QM 2X9F-HC4T-P8WN '); // 'k7qm2x9fhc4tp8wn'
 * normaliseRecoveryCode('k7qm-2x9f'); // undefined
 */
export function normaliseRecoveryCode(input: string): string | undefined {
  if (input.length > MAX_INPUT_LENGTH) return undefined;
  const canonical = input.toLowerCase().replace(SEPARATORS, '');
  return CANONICAL_PATTERN.test(canonical) ? canonical : undefined;
}

/**
 * SHA-256 hex of the code's canonical form, so a code as generated
 * (`k7qm-2x9f-hc4t-p8wn`) and as typed (`K7QM 2X9F HC4T P8WN`) hash alike.
 * Throws `mfa.malformed_recovery_code` (kind `invalid`) for text that cannot be
 * a code; call `normaliseRecoveryCode` first to refuse such input quietly.
 *
 * Plain, unkeyed SHA-256 is enough: each code carries ≈ 79 bits of entropy, so
 * a stolen hash table cannot be reversed by search, and a slow hash (argon2)
 * would add nothing against brute force of a 2^79 space while costing ten
 * argon2 runs at enrolment and a scan of every stored hash per redemption
 * (an equality lookup on the hash needs a deterministic, unsalted function).
 *
 * @example
 * const hash = hashRecoveryCode(normaliseRecoveryCode(typed) ?? refuse());
 * // update ... set used_at = now() where user_id = $1 and code_hash = $2 and used_at is null
 */
export function hashRecoveryCode(code: string): string {
  const canonical = normaliseRecoveryCode(code);
  if (canonical === undefined) {
    throw new MfaError('mfa.malformed_recovery_code', 'This is not a recovery code');
  }
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

function generateRecoveryCode(): string {
  const groups: string[] = [];
  for (let group = 0; group < GROUP_COUNT; group++) {
    let symbols = '';
    // randomInt rejects out-of-range draws itself, so every symbol is equally likely.
    for (let index = 0; index < GROUP_LENGTH; index++) symbols += ALPHABET[randomInt(ALPHABET.length)];
    groups.push(symbols);
  }
  return groups.join('-');
}
