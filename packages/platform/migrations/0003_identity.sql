-- Identity: accounts, role grants, sessions with rotating refresh tokens,
-- password reset tokens, MFA (TOTP + recovery codes + login challenges),
-- login throttling and API keys. Every secret a client presents (refresh
-- token, reset token, MFA challenge, API key) is stored only as its SHA-256:
-- each carries 256 random bits, so a fast hash is as strong as a slow one
-- and a database leak reveals nothing usable.

create table platform.accounts (
  id uuid primary key,
  email text not null check (length(email) between 3 and 254),
  password_hash text not null,
  status text not null default 'active' check (status in ('active', 'disabled')),
  -- Envelope-encrypted (kv1) TOTP secret: pending until mfa_enabled_at is set.
  mfa_secret text,
  mfa_enabled_at timestamptz,
  -- The last TOTP time step accepted: a code at or before it is a replay.
  mfa_last_time_step bigint,
  password_changed_at timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  constraint accounts_mfa_enabled_has_secret check (mfa_enabled_at is null or mfa_secret is not null)
);
-- Case-insensitive uniqueness is the guarantee; the service check is the friendly message.
create unique index accounts_email_key on platform.accounts (lower(email));

create table platform.role_grants (
  account_id uuid not null references platform.accounts (id) on delete cascade,
  role text not null check (role ~ '^[a-z][a-z0-9-]*:[a-z][a-z0-9_.-]*$'),
  granted_by uuid references platform.accounts (id) on delete set null,
  granted_at timestamptz not null,
  primary key (account_id, role)
);
create index role_grants_role_idx on platform.role_grants (role);

-- A session is one login on one device and one refresh-token family.
create table platform.sessions (
  id uuid primary key,
  account_id uuid not null references platform.accounts (id) on delete cascade,
  authentication_methods text[] not null,
  is_mfa_authenticated boolean not null,
  created_at timestamptz not null,
  last_refreshed_at timestamptz not null,
  idle_expires_at timestamptz not null,
  absolute_expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text check (
    revoked_reason in (
      'logout', 'logout_all', 'refresh_token_reuse', 'password_changed', 'password_reset',
      'account_disabled', 'mfa_changed'
    )
  ),
  ip inet,
  user_agent text,
  constraint sessions_revoked_has_reason check ((revoked_at is null) = (revoked_reason is null)),
  constraint sessions_idle_within_absolute check (idle_expires_at <= absolute_expires_at)
);
create index sessions_active_by_account_idx on platform.sessions (account_id) where revoked_at is null;

create table platform.refresh_tokens (
  token_hash bytea primary key check (length(token_hash) = 32),
  session_id uuid not null references platform.sessions (id) on delete cascade,
  issued_at timestamptz not null,
  -- Set once, by a conditional update: a second use is reuse and revokes the family.
  used_at timestamptz
);
create index refresh_tokens_session_idx on platform.refresh_tokens (session_id);

create table platform.password_reset_tokens (
  token_hash bytea primary key check (length(token_hash) = 32),
  account_id uuid not null references platform.accounts (id) on delete cascade,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  used_at timestamptz
);
create index password_reset_tokens_account_idx on platform.password_reset_tokens (account_id);

create table platform.mfa_recovery_codes (
  account_id uuid not null references platform.accounts (id) on delete cascade,
  code_hash text not null,
  created_at timestamptz not null,
  used_at timestamptz,
  primary key (account_id, code_hash)
);

-- The step between a correct password and a session for an account that needs MFA.
create table platform.mfa_challenges (
  token_hash bytea primary key check (length(token_hash) = 32),
  account_id uuid not null references platform.accounts (id) on delete cascade,
  -- 'verify': the account has MFA; 'enroll': it must set MFA up before it gets a session.
  purpose text not null check (purpose in ('verify', 'enroll')),
  created_at timestamptz not null,
  expires_at timestamptz not null,
  failed_attempts integer not null default 0 check (failed_attempts >= 0),
  consumed_at timestamptz
);
create index mfa_challenges_expires_idx on platform.mfa_challenges (expires_at);

-- Failed logins per email, whether or not an account has it: locking only real
-- accounts would tell an attacker which emails exist.
create table platform.login_throttle (
  email_hash bytea primary key check (length(email_hash) = 32),
  consecutive_failures integer not null check (consecutive_failures >= 0),
  locked_until timestamptz,
  updated_at timestamptz not null
);

create table platform.api_keys (
  id uuid primary key,
  name text not null check (length(name) between 1 and 100),
  secret_hash bytea not null check (length(secret_hash) = 32),
  permissions text[] not null check (cardinality(permissions) > 0),
  created_by uuid references platform.accounts (id) on delete set null,
  created_at timestamptz not null,
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz
);
