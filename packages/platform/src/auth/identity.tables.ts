import type { ColumnType, Kysely } from 'kysely';

/** Kysely table types for the identity tables (migrations/0003_identity.sql). */
export type AccountsTable = {
  id: string;
  email: string;
  password_hash: string;
  status: 'active' | 'disabled';
  mfa_secret: string | null;
  mfa_enabled_at: Date | null;
  mfa_last_time_step: ColumnType<string | null, number | null, number | null>;
  password_changed_at: Date;
  created_at: Date;
  updated_at: Date;
};

export type RoleGrantsTable = {
  account_id: string;
  role: string;
  granted_by: string | null;
  granted_at: Date;
};

export type SessionRevocationReason =
  | 'logout'
  | 'logout_all'
  | 'refresh_token_reuse'
  | 'password_changed'
  | 'password_reset'
  | 'account_disabled'
  | 'mfa_changed';

export type SessionsTable = {
  id: string;
  account_id: string;
  authentication_methods: string[];
  is_mfa_authenticated: boolean;
  created_at: Date;
  last_refreshed_at: Date;
  idle_expires_at: Date;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: SessionRevocationReason | null;
  ip: string | null;
  user_agent: string | null;
};

export type RefreshTokensTable = {
  token_hash: Buffer;
  session_id: string;
  issued_at: Date;
  used_at: Date | null;
};

export type PasswordResetTokensTable = {
  token_hash: Buffer;
  account_id: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
};

export type MfaRecoveryCodesTable = {
  account_id: string;
  code_hash: string;
  created_at: Date;
  used_at: Date | null;
};

export type MfaChallengePurpose = 'verify' | 'enroll';

export type MfaChallengesTable = {
  token_hash: Buffer;
  account_id: string;
  purpose: MfaChallengePurpose;
  created_at: Date;
  expires_at: Date;
  failed_attempts: ColumnType<number, number | undefined, number>;
  consumed_at: Date | null;
};

export type LoginThrottleTable = {
  email_hash: Buffer;
  consecutive_failures: number;
  locked_until: Date | null;
  updated_at: Date;
};

export type ApiKeysTable = {
  id: string;
  name: string;
  secret_hash: Buffer;
  permissions: string[];
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
};

export type IdentityTables = {
  'platform.accounts': AccountsTable;
  'platform.role_grants': RoleGrantsTable;
  'platform.sessions': SessionsTable;
  'platform.refresh_tokens': RefreshTokensTable;
  'platform.password_reset_tokens': PasswordResetTokensTable;
  'platform.mfa_recovery_codes': MfaRecoveryCodesTable;
  'platform.mfa_challenges': MfaChallengesTable;
  'platform.login_throttle': LoginThrottleTable;
  'platform.api_keys': ApiKeysTable;
};

/** A handle on the identity tables: the pool-backed Kysely or a transaction. */
export type IdentityDb = Kysely<IdentityTables>;
