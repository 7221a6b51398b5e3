import type { AuditEvent } from '../audit/index.ts';
import { listAuditEvents, verifyAuditChain } from '../audit/index.ts';
import type { Database } from '../db/index.ts';
import { type KeelApp, problemResponses } from '../http/index.ts';
import type { ApiKeyRecord } from './api-keys/api-key.repository.ts';
import { toAccountResponse } from './auth.routes.ts';
import {
  AccountIdParams,
  AccountRoleParams,
  AccountRolesResponse,
  ApiKeyIdParams,
  ApiKeyListResponse,
  ApiKeyResponse,
  AuditEventListResponse,
  AuditVerificationResponse,
  CreateApiKeyBody,
  CreatedApiKeyResponse,
  GrantRoleBody,
  ListApiKeysQuery,
  ListAuditEventsQuery,
  ListUsersQuery,
  UserListResponse,
} from './auth.schemas.ts';
import { type Identity, originOf } from './identity.ts';

const TAGS = ['admin'];
const SECURITY = [{ bearerAuth: [] }];
const DEFAULT_LIMIT = 50;

function toApiKeyResponse(key: ApiKeyRecord) {
  return {
    id: key.id,
    name: key.name,
    permissions: key.permissions,
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    expires_at: key.expiresAt?.toISOString() ?? null,
    revoked_at: key.revokedAt?.toISOString() ?? null,
    last_used_at: key.lastUsedAt?.toISOString() ?? null,
  };
}

function toAuditEventResponse(event: AuditEvent) {
  return {
    id: event.id,
    occurred_at: event.occurredAt.toISOString(),
    actor_type: event.actorType,
    actor_id: event.actorId,
    action: event.action,
    resource_type: event.resourceType,
    resource_id: event.resourceId,
    outcome: event.outcome,
    request_id: event.requestId,
    ip: event.ip,
    user_agent: event.userAgent,
    changes: event.changes,
  };
}

/**
 * `/admin/*`: accounts and roles, API keys, the audit trail. Every permission
 * here belongs to `platform:admin`, which requires MFA, so a session without
 * a second factor never holds them.
 */
export function registerAdminRoutes(app: KeelApp, deps: { identity: Identity; database: Database }): void {
  const { accounts, apiKeys } = deps.identity;
  const actorOf = (request: { principal?: { id: string } }) => ({ id: request.principal?.id ?? '' });

  app.get(
    '/admin/users',
    {
      config: { access: 'platform:manage_users' },
      schema: {
        operationId: 'listUsers',
        tags: TAGS,
        summary: 'List accounts',
        security: SECURITY,
        querystring: ListUsersQuery,
        response: { 200: UserListResponse, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await accounts.listAccounts({
        ...(query.email_prefix === undefined ? {} : { emailPrefix: query.email_prefix }),
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.role === undefined ? {} : { role: query.role }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
        limit: query.limit ?? DEFAULT_LIMIT,
      });
      return { users: page.accounts.map(toAccountResponse), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/admin/users/:id/roles',
    {
      config: { access: 'platform:manage_users' },
      schema: {
        operationId: 'grantRole',
        tags: TAGS,
        summary: 'Grant a role',
        security: SECURITY,
        params: AccountIdParams,
        body: GrantRoleBody,
        response: { 200: AccountRolesResponse, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({
      id: request.params.id,
      roles: await accounts.grantRole(
        actorOf(request),
        request.params.id,
        request.body.role,
        originOf(request),
      ),
    }),
  );

  app.delete(
    '/admin/users/:id/roles/:role',
    {
      config: { access: 'platform:manage_users' },
      schema: {
        operationId: 'revokeRole',
        tags: TAGS,
        summary: 'Revoke a role',
        security: SECURITY,
        params: AccountRoleParams,
        response: { 200: AccountRolesResponse, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => ({
      id: request.params.id,
      roles: await accounts.revokeRole(
        actorOf(request),
        request.params.id,
        request.params.role,
        originOf(request),
      ),
    }),
  );

  for (const [path, status, operationId, summary] of [
    ['disable', 'disabled', 'disableUser', 'Disable an account and end its sessions'],
    ['enable', 'active', 'enableUser', 'Enable a disabled account'],
  ] as const) {
    app.post(
      `/admin/users/:id/${path}`,
      {
        config: { access: 'platform:manage_users' },
        schema: {
          operationId,
          tags: TAGS,
          summary,
          security: SECURITY,
          params: AccountIdParams,
          response: {
            204: { type: 'null', description: 'Done' },
            ...problemResponses(400, 401, 403, 404, 409),
          },
        },
      },
      async (request, reply) => {
        await accounts.setAccountStatus(actorOf(request), request.params.id, status, originOf(request));
        return reply.code(204).send(null);
      },
    );
  }

  app.post(
    '/admin/api-keys',
    {
      config: { access: 'platform:manage_api_keys' },
      schema: {
        operationId: 'createApiKey',
        tags: TAGS,
        summary: 'Create a scoped API key (shown once)',
        security: SECURITY,
        body: CreateApiKeyBody,
        response: { 201: CreatedApiKeyResponse, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const created = await apiKeys.createApiKey(
        actorOf(request),
        {
          name: request.body.name,
          permissions: request.body.permissions,
          ...(request.body.expires_at === undefined ? {} : { expiresAt: new Date(request.body.expires_at) }),
        },
        originOf(request),
      );
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({ ...toApiKeyResponse(created), key: created.key });
    },
  );

  app.get(
    '/admin/api-keys',
    {
      config: { access: 'platform:manage_api_keys' },
      schema: {
        operationId: 'listApiKeys',
        tags: TAGS,
        summary: 'List API keys (never their secrets)',
        security: SECURITY,
        querystring: ListApiKeysQuery,
        response: { 200: ApiKeyListResponse, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await apiKeys.listApiKeys({
        limit: query.limit ?? DEFAULT_LIMIT,
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return { api_keys: page.apiKeys.map(toApiKeyResponse), next_cursor: page.nextCursor };
    },
  );

  app.delete(
    '/admin/api-keys/:id',
    {
      config: { access: 'platform:manage_api_keys' },
      schema: {
        operationId: 'revokeApiKey',
        tags: TAGS,
        summary: 'Revoke an API key',
        security: SECURITY,
        params: ApiKeyIdParams,
        response: { 200: ApiKeyResponse, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) =>
      toApiKeyResponse(await apiKeys.revokeApiKey(actorOf(request), request.params.id, originOf(request))),
  );

  app.get(
    '/admin/audit-events',
    {
      config: { access: 'platform:read_audit' },
      schema: {
        operationId: 'listAuditEvents',
        tags: TAGS,
        summary: 'List audit events, newest first',
        security: SECURITY,
        querystring: ListAuditEventsQuery,
        response: { 200: AuditEventListResponse, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await listAuditEvents(deps.database, {
        ...(query.actor_id === undefined ? {} : { actorId: query.actor_id }),
        ...(query.resource_type === undefined ? {} : { resourceType: query.resource_type }),
        ...(query.resource_id === undefined ? {} : { resourceId: query.resource_id }),
        ...(query.action === undefined ? {} : { action: query.action }),
        ...(query.from === undefined ? {} : { from: new Date(query.from) }),
        ...(query.to === undefined ? {} : { to: new Date(query.to) }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
        limit: query.limit ?? DEFAULT_LIMIT,
      });
      return { events: page.events.map(toAuditEventResponse), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/admin/audit/verify',
    {
      config: { access: 'platform:read_audit' },
      schema: {
        operationId: 'verifyAuditChain',
        tags: TAGS,
        summary: 'Verify the audit hash chain; reports the first broken link',
        security: SECURITY,
        response: { 200: AuditVerificationResponse, ...problemResponses(401, 403) },
      },
    },
    async () => {
      const result = await verifyAuditChain(deps.database);
      return result.ok
        ? { is_intact: true, sealed: result.sealed, unsealed: result.unsealed }
        : {
            is_intact: false,
            first_broken_position: result.firstBrokenPosition,
            event_id: result.eventId,
            reason: result.reason,
          };
    },
  );
}
