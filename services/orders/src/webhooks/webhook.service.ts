import { recordAuditEvent } from '@keel/platform/audit';
import type { EncryptedColumnSpec, FieldEncryption } from '@keel/platform/crypto';
import type { Db } from '@keel/platform/db';
import type { Principal } from '@keel/platform/http';
import type { Clock, IdGenerator } from '@keel/platform/module';
import { webhookEndpointNotFound, webhookUrlInvalid } from './webhook.errors.ts';
import {
  findDeliveriesOfEndpoint,
  findEndpoint,
  findEndpoints,
  insertEndpoint,
  updateEndpointDeactivated,
  type WebhooksSchema,
} from './webhook.repository.ts';
import {
  checkWebhookUrl,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEventType,
} from './webhook.ts';
import { formatWebhookSecret } from './webhook-signature.ts';

/** Who is asking, for the audit trail. */
export type WebhookActor = {
  principal: Principal;
  requestId: string;
  ip: string;
  userAgent: string | undefined;
};

export type CreateWebhookEndpointInput = {
  url: string;
  eventTypes: WebhookEventType[];
  description: string | undefined;
};

export type WebhookService = {
  /** The secret is returned here and never again: only its ciphertext is stored. */
  createEndpoint(
    actor: WebhookActor,
    input: CreateWebhookEndpointInput,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }>;
  listEndpoints(): Promise<WebhookEndpoint[]>;
  /** Idempotent: an inactive endpoint is returned as it is. */
  deactivateEndpoint(actor: WebhookActor, id: string): Promise<WebhookEndpoint>;
  listDeliveries(endpointId: string, limit: number): Promise<WebhookDelivery[]>;
};

export type WebhookServiceDeps = {
  db: Db<WebhooksSchema>;
  clock: Clock;
  ids: IdGenerator;
  encryption: FieldEncryption;
  randomBytes: (size: number) => Uint8Array;
  isProduction: boolean;
};

/** Binds a secret to its row: a ciphertext copied to another endpoint does not decrypt. */
export function webhookSecretAad(endpointId: string): string {
  return `orders.webhook_endpoints:secret:${endpointId}`;
}

/** For the key-rotation task's column list (apps/server/src/key-rotation.ts). */
export const webhookSecretColumn: EncryptedColumnSpec = {
  table: 'orders.webhook_endpoints',
  idColumn: 'id',
  column: 'secret_encrypted',
  aad: webhookSecretAad,
};

const SECRET_BYTES = 32;

export function createWebhookService(deps: WebhookServiceDeps): WebhookService {
  const auditFields = (actor: WebhookActor) => ({
    actorType: actor.principal.kind,
    actorId: actor.principal.id,
    requestId: actor.requestId,
    ip: actor.ip,
    userAgent: actor.userAgent ?? null,
  });

  return {
    async createEndpoint(actor, input) {
      const checked = checkWebhookUrl(input.url, { isProduction: deps.isProduction });
      if ('problem' in checked) throw webhookUrlInvalid(checked.problem);
      const endpoint: WebhookEndpoint = {
        id: deps.ids.uuid(),
        url: checked.url,
        description: input.description?.trim() ?? '',
        eventTypes: input.eventTypes,
        isActive: true,
        createdBy: actor.principal.id,
        createdAt: deps.clock.now(),
        deactivatedAt: null,
      };
      const secret = formatWebhookSecret(deps.randomBytes(SECRET_BYTES));
      const secretEncrypted = deps.encryption.encrypt(secret, webhookSecretAad(endpoint.id));
      await deps.db.transaction(async (trx) => {
        await insertEndpoint(trx, endpoint, secretEncrypted);
        await recordAuditEvent(trx, {
          ...auditFields(actor),
          action: 'orders.webhook_endpoint_created',
          resourceType: 'webhook_endpoint',
          resourceId: endpoint.id,
          outcome: 'success',
          changes: { url: endpoint.url, eventTypes: endpoint.eventTypes },
          occurredAt: endpoint.createdAt,
        });
      });
      return { endpoint, secret };
    },

    listEndpoints() {
      return deps.db.run((db) => findEndpoints(db));
    },

    async deactivateEndpoint(actor, id) {
      const now = deps.clock.now();
      return deps.db.transaction(async (trx) => {
        const deactivated = await updateEndpointDeactivated(trx, id, now);
        if (deactivated === undefined) {
          const existing = await findEndpoint(trx, id);
          if (existing === undefined) throw webhookEndpointNotFound(id);
          return existing;
        }
        await recordAuditEvent(trx, {
          ...auditFields(actor),
          action: 'orders.webhook_endpoint_deactivated',
          resourceType: 'webhook_endpoint',
          resourceId: id,
          outcome: 'success',
          occurredAt: now,
        });
        return deactivated;
      });
    },

    async listDeliveries(endpointId, limit) {
      return deps.db.run(async (db) => {
        if ((await findEndpoint(db, endpointId)) === undefined) throw webhookEndpointNotFound(endpointId);
        return findDeliveriesOfEndpoint(db, endpointId, limit);
      });
    },
  };
}
