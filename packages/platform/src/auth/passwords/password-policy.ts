import { readFileSync } from 'node:fs';

/** Fewest Unicode code points (after NFC) a new password may have. ASVS 5.0 V6 asks for at least 8; we ask 12. */
export const PASSWORD_MIN_LENGTH = 12;
/** Most Unicode code points (after NFC) a new password may have. ASVS 5.0 V6 asks that at least 64 be allowed. */
export const PASSWORD_MAX_LENGTH = 128;

/** Why a new password was refused; the first rule broken, checked in this order. */
export type PasswordPolicyViolation = 'too_short' | 'too_long' | 'too_common' | 'contains_email';

const MIN_EMAIL_LOCAL_PART_LENGTH = 4;

/**
 * Checks a new password (registration, change, reset) against length, the shipped list of the
 * 10,000 most common passwords, and the account's email. No composition rules (ASVS 5.0 V6 says
 * not to require character classes). Returns the first violation, or undefined when it passes.
 *
 * @example
 * checkPasswordPolicy('Tr0ub4dor&3'); // 'too_short' (11 code points)
 * checkPasswordPolicy('ada.lovelace-1815', { email: 'Ada.Lovelace@example.com' }); // 'contains_email'
 * checkPasswordPolicy('correct horse battery staple', { email: 'ada@example.com' }); // undefined
 */
export function checkPasswordPolicy(
  password: string,
  context: { email?: string } = {},
): PasswordPolicyViolation | undefined {
  // Counted as the hasher will see it: NFC, in code points, so an accented letter or an emoji is one.
  const normalised = password.normalize('NFC');
  const length = countCodePoints(normalised, PASSWORD_MAX_LENGTH + 1);
  if (length < PASSWORD_MIN_LENGTH) return 'too_short';
  if (length > PASSWORD_MAX_LENGTH) return 'too_long';

  const lowered = normalised.toLowerCase();
  if (loadCommonPasswords().has(lowered)) return 'too_common';

  const localPart = extractEmailLocalPart(context.email);
  if (
    localPart !== undefined &&
    countCodePoints(localPart, MIN_EMAIL_LOCAL_PART_LENGTH) >= MIN_EMAIL_LOCAL_PART_LENGTH &&
    lowered.includes(localPart)
  ) {
    return 'contains_email';
  }
  return undefined;
}

let commonPasswords: ReadonlySet<string> | undefined;

// Read once, on the first check, so importing the module costs nothing; ~80 KB.
function loadCommonPasswords(): ReadonlySet<string> {
  if (commonPasswords === undefined) {
    const text = readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8');
    commonPasswords = new Set(text.split('\n').filter((line) => line !== ''));
  }
  return commonPasswords;
}

// Stops at `limit` so a multi-megabyte input is not walked in full just to be refused.
function countCodePoints(value: string, limit: number): number {
  let count = 0;
  for (const _codePoint of value) {
    count += 1;
    if (count >= limit) break;
  }
  return count;
}

function extractEmailLocalPart(email: string | undefined): string | undefined {
  if (email === undefined) return undefined;
  const at = email.lastIndexOf('@');
  const localPart = (at === -1 ? email : email.slice(0, at)).trim().normalize('NFC').toLowerCase();
  return localPart === '' ? undefined : localPart;
}
