/** A platform account: who signs in. Services keep their own profile data. */
export type Account = {
  id: string;
  email: string;
  passwordHash: string;
  status: 'active' | 'disabled';
  /** Envelope-encrypted TOTP secret (pending until `mfaEnabledAt`). */
  mfaSecret: string | null;
  mfaEnabledAt: Date | null;
  mfaLastTimeStep: number | null;
  createdAt: Date;
};

/** What admins see in a listing: no hashes, no secrets. */
export type AccountSummary = {
  id: string;
  email: string;
  status: 'active' | 'disabled';
  isMfaEnabled: boolean;
  roles: string[];
  createdAt: Date;
};

/** The AAD an account's TOTP secret is encrypted with: binds the ciphertext to its row and column. */
export function mfaSecretAad(accountId: string): string {
  return `platform.accounts:mfa_secret:${accountId}`;
}

/** Emails are compared case-insensitively and stored trimmed as given. */
export function normaliseEmailInput(email: string): string {
  return email.trim();
}

/** The encrypted column the key-rotation task re-wraps. */
export const mfaSecretColumn = {
  table: 'platform.accounts',
  idColumn: 'id',
  column: 'mfa_secret',
  aad: mfaSecretAad,
} as const;
