/** What a masked value is replaced with; the key stays, so the record still shows that it changed. */
export const REDACTED = '[redacted]';

// Sensitive wherever they appear in a key: `passwordHash`, `mfa_secret`, `x-api-key` → `xapikey`.
const SENSITIVE_FRAGMENTS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'credential',
  'apikey',
  'privatekey',
  'authorization',
  'cookie',
];
// Sensitive as a whole word only: `key` must not catch `monkey`, nor `otp` `hotpot`.
const SENSITIVE_WORDS = new Set(['key', 'otp', 'totp', 'mfa', 'ssn', 'pin', 'cvv', 'cvc']);

const MAX_DEPTH = 16;

export type RedactOptions = {
  /** More keys to mask, matched ignoring case and separators (`dateOfBirth` masks `date_of_birth`). */
  keys?: readonly string[];
};

/**
 * Returns a JSON-safe copy of a change summary with every sensitive value
 * masked as `[redacted]`, at any depth, arrays included. Masks keys that
 * contain password, passwd, passphrase, secret, token, credential, apikey,
 * privatekey, authorization or cookie; keys with a word key, otp, totp, mfa,
 * ssn, pin, cvv or cvc (`apiKey`, `otp_code`, `mfaEnabled`); and the keys the
 * caller lists. Dates become ISO strings, bigints strings; undefined and
 * functions are dropped; cycles and nesting deeper than 16 become `[truncated]`.
 *
 * @example
 * redactChanges({ email: { from: 'a@x.io', to: 'b@x.io' }, password: 'hunter2' }, { keys: ['dateOfBirth'] });
 * // → { email: { from: 'a@x.io', to: 'b@x.io' }, password: '[redacted]' }
 */
export function redactChanges(
  changes: Record<string, unknown>,
  options: RedactOptions = {},
): Record<string, unknown> {
  const extra = new Set((options.keys ?? []).map(normaliseKey));
  const isSensitive = (key: string) => {
    const normalised = normaliseKey(key);
    return (
      extra.has(normalised) ||
      SENSITIVE_FRAGMENTS.some((fragment) => normalised.includes(fragment)) ||
      wordsOf(key).some((word) => SENSITIVE_WORDS.has(word))
    );
  };
  const seen = new WeakSet<object>();

  const visit = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') {
      return typeof value === 'string' ? value.replaceAll('\u0000', '\uFFFD') : value;
    }
    if (typeof value === 'number') return Number.isFinite(value) ? value : null;
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
    if (typeof value !== 'object') return undefined;
    if (depth >= MAX_DEPTH || seen.has(value)) return '[truncated]';
    seen.add(value);
    try {
      if (Array.isArray(value)) return value.map((item) => visit(item, depth + 1) ?? null);
      const result: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        const safeKey = key.replaceAll('\u0000', '\uFFFD');
        result[safeKey] = isSensitive(key) ? REDACTED : visit(item, depth + 1);
      }
      return result;
    } finally {
      // Only the current path counts as a cycle; the same object twice side by side is fine.
      seen.delete(value);
    }
  };

  return visit(changes, 0) as Record<string, unknown>;
}

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** `apiKey` → api, key; `otp_code` → otp, code; `X-MFA-Token` → x, mfa, token. */
function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}
