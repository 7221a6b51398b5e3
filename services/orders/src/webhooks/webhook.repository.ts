import { type Generated, type Kysely, sql } from '@keel/platform/db';
import type {
  WebhookAttemptError,
  WebhookDelivery,
  WebhookDeliveryStatus,
  WebhookEndpoint,
  WebhookEventType,
} from './webhook.ts';

// Tables of migrations/0004_webhooks.sql owned by this feature.

export type WebhookEndpointsTable = {
  id: string;
  url: string;
  description: Generated<string>;
  secret_encrypted: string;
  event_types: WebhookEventType[];
  is_active: Generated<boolean>;
  created_by: string;
  created_at: Date;
  deactivated_at: Date | null;
};

export type WebhookDeliveriesTable = {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  body: string;
  status: Generated<WebhookDeliveryStatus>;
  attempts: Generated<number>;
  last_status_code: number | null;
  last_error: WebhookAttemptError | null;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  dead_at: Date | null;
  created_at: Date;
};

export type WebhooksSchema = {
  'orders.webhook_endpoints': WebhookEndpointsTable;
  'orders.webhook_deliveries': WebhookDeliveriesTable;
};

export type WebhooksDb = Kysely<WebhooksSchema>;

const ENDPOINT_COLUMNS = [
  'id',
  'url',
  'description',
  'event_types',
  'is_active',
  'created_by',
  'created_at',
  'deactivated_at',
] as const;

type EndpointRow = {
  id: string;
  url: string;
  description: string;
  event_types: WebhookEventType[];
  is_active: boolean;
  created_by: string;
  created_at: Date;
  deactivated_at: Date | null;
};

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    isActive: row.is_active,
    createdBy: row.created_by,
    createdAt: row.created_at,
    deactivatedAt: row.deactivated_at,
  };
}

export async function insertEndpoint(
  db: WebhooksDb,
  endpoint: WebhookEndpoint,
  secretEncrypted: string,
): Promise<void> {
  await db
    .insertInto('orders.webhook_endpoints')
    .values({
      id: endpoint.id,
      url: endpoint.url,
      description: endpoint.description,
      secret_encrypted: secretEncrypted,
      event_types: endpoint.eventTypes,
      is_active: endpoint.isActive,
      created_by: endpoint.createdBy,
      created_at: endpoint.createdAt,
      deactivated_at: endpoint.deactivatedAt,
    })
    .execute();
}

/** Every endpoint, newest first: a chain has a handful, not thousands. */
export async function findEndpoints(db: WebhooksDb): Promise<WebhookEndpoint[]> {
  const rows = await db
    .selectFrom('orders.webhook_endpoints')
    .select(ENDPOINT_COLUMNS)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toEndpoint);
}

export async function findEndpoint(db: WebhooksDb, id: string): Promise<WebhookEndpoint | undefined> {
  const row = await db
    .selectFrom('orders.webhook_endpoints')
    .select(ENDPOINT_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toEndpoint(row);
}

/** Deactivates an active endpoint; undefined when it is unknown or was already inactive. */
export async function updateEndpointDeactivated(
  db: WebhooksDb,
  id: string,
  at: Date,
): Promise<WebhookEndpoint | undefined> {
  const row = await db
    .updateTable('orders.webhook_endpoints')
    .set({ is_active: false, deactivated_at: at })
    .where('id', '=', id)
    .where('is_active', '=', true)
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirst();
  return row === undefined ? undefined : toEndpoint(row);
}

/**
 * The active endpoints of several event types in one query: by type,
 * the ids of the active endpoints subscribed to it, ordered by id; a type
 * none subscribed to is absent.
 */
export async function findActiveEndpointIdsByType(
  db: WebhooksDb,
  eventTypes: readonly string[],
): Promise<Map<string, string[]>> {
  const byType = new Map<string, string[]>();
  if (eventTypes.length === 0) return byType;
  const rows = await db
    .selectFrom('orders.webhook_endpoints')
    .select(['id', 'event_types'])
    .where('is_active', '=', true)
    .where(sql<boolean>`event_types && ${[...new Set(eventTypes)]}::text[]`)
    .orderBy('id')
    .execute();
  for (const row of rows)
    for (const eventType of new Set<string>(row.event_types)) {
      if (!eventTypes.includes(eventType)) continue;
      const endpointIds = byType.get(eventType);
      if (endpointIds === undefined) byType.set(eventType, [row.id]);
      else endpointIds.push(row.id);
    }
  return byType;
}

/**
 * Inserts the deliveries not recorded yet, in one statement; returns the ids
 * it inserted, in the order given (none on a redelivered event).
 */
export async function insertDeliveries(
  db: WebhooksDb,
  deliveries: readonly {
    id: string;
    endpointId: string;
    eventId: string;
    eventType: string;
    body: string;
    createdAt: Date;
  }[],
): Promise<string[]> {
  if (deliveries.length === 0) return [];
  const rows = await db
    .insertInto('orders.webhook_deliveries')
    .values(
      deliveries.map((delivery) => ({
        id: delivery.id,
        endpoint_id: delivery.endpointId,
        event_id: delivery.eventId,
        event_type: delivery.eventType,
        body: delivery.body,
        created_at: delivery.createdAt,
      })),
    )
    .onConflict((conflict) => conflict.columns(['event_id', 'endpoint_id']).doNothing())
    .returning('id')
    .execute();
  const inserted = new Set(rows.map((row) => row.id));
  return deliveries.map((delivery) => delivery.id).filter((id) => inserted.has(id));
}

const DELIVERY_COLUMNS = [
  'id',
  'endpoint_id',
  'event_id',
  'event_type',
  'status',
  'attempts',
  'last_status_code',
  'last_error',
  'last_attempt_at',
  'delivered_at',
  'dead_at',
  'created_at',
] as const;

type DeliveryRow = {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  last_error: WebhookAttemptError | null;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  dead_at: Date | null;
  created_at: Date;
};

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    eventType: row.event_type,
    status: row.status,
    attempts: row.attempts,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    lastAttemptAt: row.last_attempt_at,
    deliveredAt: row.delivered_at,
    deadAt: row.dead_at,
    createdAt: row.created_at,
  };
}

export async function findDeliveriesOfEndpoint(
  db: WebhooksDb,
  endpointId: string,
  limit: number,
): Promise<WebhookDelivery[]> {
  const rows = await db
    .selectFrom('orders.webhook_deliveries')
    .select(DELIVERY_COLUMNS)
    .where('endpoint_id', '=', endpointId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toDelivery);
}

export async function findDelivery(db: WebhooksDb, id: string): Promise<WebhookDelivery | undefined> {
  const row = await db
    .selectFrom('orders.webhook_deliveries')
    .select(DELIVERY_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : toDelivery(row);
}

/** A delivery with what sending it needs: its body and its endpoint's address and secret. */
export type DeliveryToSend = WebhookDelivery & {
  body: string;
  url: string;
  secretEncrypted: string;
  isEndpointActive: boolean;
};

export async function findDeliveryToSend(db: WebhooksDb, id: string): Promise<DeliveryToSend | undefined> {
  const row = await db
    .selectFrom('orders.webhook_deliveries as d')
    .innerJoin('orders.webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .select([
      'd.id',
      'd.endpoint_id',
      'd.event_id',
      'd.event_type',
      'd.status',
      'd.attempts',
      'd.last_status_code',
      'd.last_error',
      'd.last_attempt_at',
      'd.delivered_at',
      'd.dead_at',
      'd.created_at',
      'd.body',
      'e.url',
      'e.secret_encrypted',
      'e.is_active',
    ])
    .where('d.id', '=', id)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    ...toDelivery(row),
    body: row.body,
    url: row.url,
    secretEncrypted: row.secret_encrypted,
    isEndpointActive: row.is_active,
  };
}

/**
 * Records one attempt on an unsettled delivery (pending, or dead and being
 * replayed) and moves it to `status`. Conditional: a late duplicate run
 * cannot undo a delivered or cancelled one.
 */
export async function updateDeliveryAttempt(
  db: WebhooksDb,
  id: string,
  attempt: {
    status: WebhookDeliveryStatus;
    statusCode: number | null;
    error: WebhookAttemptError | null;
    at: Date;
    isAttempt: boolean;
  },
): Promise<void> {
  await db
    .updateTable('orders.webhook_deliveries')
    .set((eb) => ({
      status: attempt.status,
      attempts: attempt.isAttempt ? eb('attempts', '+', 1) : eb.ref('attempts'),
      last_status_code: attempt.isAttempt ? attempt.statusCode : eb.ref('last_status_code'),
      last_error: attempt.error,
      last_attempt_at: attempt.isAttempt ? attempt.at : eb.ref('last_attempt_at'),
      delivered_at: attempt.status === 'delivered' ? attempt.at : null,
      dead_at: attempt.status === 'dead' ? attempt.at : null,
    }))
    .where('id', '=', id)
    .where('status', 'in', ['pending', 'dead'])
    .execute();
}
