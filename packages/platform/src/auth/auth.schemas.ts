import { Type } from 'typebox';

const Email = Type.String({ format: 'email', maxLength: 254, description: 'Case-insensitive' });
// Bounded well above the policy's 128 so the policy, not the schema, explains a long password,
// and so nobody can make argon2 hash megabytes.
const Password = Type.String({ minLength: 1, maxLength: 1024, description: '12-128 characters' });
const OpaqueToken = Type.String({ minLength: 20, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' });
const Uuid = Type.String({ format: 'uuid' });
const Role = Type.String({
  pattern: '^[a-z][a-z0-9-]*:[a-z][a-z0-9_.-]*$',
  maxLength: 100,
  examples: ['orders:admin'],
});

export const RegisterBody = Type.Object(
  {
    email: Email,
    password: Password,
    service: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'The service to sign up for; the account gets that service’s registration role',
        examples: ['telemedicine'],
      }),
    ),
  },
  { additionalProperties: false },
);

export const LoginBody = Type.Object({ email: Email, password: Password }, { additionalProperties: false });

export const VerifyMfaBody = Type.Object(
  {
    mfa_token: OpaqueToken,
    code: Type.String({ minLength: 6, maxLength: 32, description: 'A 6-digit TOTP code or a recovery code' }),
  },
  { additionalProperties: false },
);

export const MfaChallengeBody = Type.Object({ mfa_token: OpaqueToken }, { additionalProperties: false });

export const ConfirmMfaBody = Type.Object(
  { code: Type.String({ pattern: '^\\s*\\d{6}\\s*$', description: 'A 6-digit TOTP code' }) },
  { additionalProperties: false },
);

export const RefreshBody = Type.Object({ refresh_token: OpaqueToken }, { additionalProperties: false });

export const ChangePasswordBody = Type.Object(
  { current_password: Password, new_password: Password },
  { additionalProperties: false },
);

export const PasswordResetRequestBody = Type.Object({ email: Email }, { additionalProperties: false });

export const PasswordResetBody = Type.Object(
  { token: OpaqueToken, new_password: Password },
  { additionalProperties: false },
);

export const SessionTokensResponse = Type.Object(
  {
    status: Type.Literal('authenticated'),
    token_type: Type.Literal('Bearer'),
    access_token: Type.String({ description: 'EdDSA-signed JWT; send as `Authorization: Bearer …`' }),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
    refresh_token: Type.String({ description: 'Opaque; single use; exchange at refreshToken' }),
    refresh_token_expires_at: Type.String({ format: 'date-time' }),
    session_id: Uuid,
    recovery_codes: Type.Optional(
      Type.Array(Type.String(), { description: 'Only after MFA enrolment: shown once, store them safely' }),
    ),
  },
  { additionalProperties: false },
);

export const MfaRequiredResponse = Type.Object(
  {
    status: Type.Literal('mfa_required'),
    mfa_token: Type.String({ description: 'Short-lived; send with verifyMfa' }),
    mfa_token_expires_at: Type.String({ format: 'date-time' }),
    enrollment_required: Type.Boolean({
      description: 'True when the account must set up TOTP first (enrollMfaWithChallenge, then verifyMfa)',
    }),
  },
  { additionalProperties: false },
);

export const LoginResponse = Type.Union([SessionTokensResponse, MfaRequiredResponse]);

export const AccountResponse = Type.Object(
  {
    id: Uuid,
    email: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    mfa_enabled: Type.Boolean(),
    roles: Type.Array(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

export const MeResponse = Type.Object(
  {
    id: Uuid,
    kind: Type.Union([Type.Literal('user'), Type.Literal('api_key')]),
    email: Type.Optional(Type.String()),
    roles: Type.Array(Type.String()),
    permissions: Type.Array(Type.String()),
    mfa_enabled: Type.Optional(Type.Boolean()),
    mfa_authenticated: Type.Boolean(),
    session_id: Type.Optional(Uuid),
  },
  { additionalProperties: false },
);

export const MfaEnrolmentResponse = Type.Object(
  {
    secret: Type.String({ description: 'Base32 TOTP secret, for manual entry' }),
    otpauth_uri: Type.String(),
    qr_code_svg: Type.String({ description: 'The otpauth URI as an SVG QR code' }),
  },
  { additionalProperties: false },
);

export const RecoveryCodesResponse = Type.Object(
  { recovery_codes: Type.Array(Type.String(), { description: 'Shown once; each works once' }) },
  { additionalProperties: false },
);

export const SessionsRevokedResponse = Type.Object(
  { sessions_revoked: Type.Integer() },
  { additionalProperties: false },
);

export const AcceptedResponse = Type.Object(
  { status: Type.Literal('accepted') },
  { additionalProperties: false },
);

export const JwksResponse = Type.Object(
  {
    keys: Type.Array(
      Type.Object(
        {
          kty: Type.String(),
          crv: Type.Optional(Type.String()),
          x: Type.Optional(Type.String()),
          y: Type.Optional(Type.String()),
          kid: Type.String(),
          alg: Type.String(),
          use: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

// Admin ------------------------------------------------------------------------

const Limit = Type.Integer({ minimum: 1, maximum: 200, default: 50 });
const Cursor = Type.String({ maxLength: 200 });

export const ListUsersQuery = Type.Object(
  {
    email_prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
    role: Type.Optional(Role),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Uuid),
  },
  { additionalProperties: false },
);

export const UserListResponse = Type.Object(
  { users: Type.Array(AccountResponse), next_cursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

export const AccountIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const AccountRoleParams = Type.Object({ id: Uuid, role: Role }, { additionalProperties: false });
export const GrantRoleBody = Type.Object({ role: Role }, { additionalProperties: false });

export const AccountRolesResponse = Type.Object(
  { id: Uuid, roles: Type.Array(Type.String()) },
  { additionalProperties: false },
);

export const CreateApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$' }),
    permissions: Type.Array(Role, {
      minItems: 1,
      maxItems: 50,
      description: 'Permissions, e.g. user-metadata:read',
    }),
    expires_at: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const ApiKeyResponse = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    permissions: Type.Array(Type.String()),
    created_by: Type.Union([Uuid, Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { additionalProperties: false },
);

export const CreatedApiKeyResponse = Type.Object(
  {
    ...ApiKeyResponse.properties,
    key: Type.String({ description: 'Shown once: `Authorization: Bearer keel_…`' }),
  },
  { additionalProperties: false },
);

export const ApiKeyListResponse = Type.Object(
  { api_keys: Type.Array(ApiKeyResponse), next_cursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

export const ListApiKeysQuery = Type.Object(
  { limit: Type.Optional(Limit), cursor: Type.Optional(Uuid) },
  { additionalProperties: false },
);

export const ApiKeyIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const ListAuditEventsQuery = Type.Object(
  {
    actor_id: Type.Optional(Type.String({ maxLength: 200 })),
    resource_type: Type.Optional(Type.String({ maxLength: 100 })),
    resource_id: Type.Optional(Type.String({ maxLength: 200 })),
    action: Type.Optional(Type.String({ maxLength: 100 })),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

export const AuditEventResponse = Type.Object(
  {
    id: Type.String(),
    occurred_at: Type.String({ format: 'date-time' }),
    actor_type: Type.String(),
    actor_id: Type.Union([Type.String(), Type.Null()]),
    action: Type.String(),
    resource_type: Type.String(),
    resource_id: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.String(),
    request_id: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    changes: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  },
  { additionalProperties: false },
);

export const AuditEventListResponse = Type.Object(
  { events: Type.Array(AuditEventResponse), next_cursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

export const AuditVerificationResponse = Type.Object(
  {
    is_intact: Type.Boolean(),
    sealed: Type.Optional(Type.Integer()),
    unsealed: Type.Optional(Type.Integer()),
    first_broken_position: Type.Optional(Type.Integer()),
    event_id: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
