import { BlockList, isIP } from 'node:net';
import { type EventEnvelope, InventoryLowStockV1, ORDER_EVENT_TYPES } from '@keel/contracts';

// Webhook rules free of I/O: which events can be subscribed, which URLs are
// acceptable, what is sent and how a receiver's answer is judged.

export const WEBHOOK_EVENT_TYPES = [...ORDER_EVENT_TYPES, InventoryLowStockV1.type] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export type WebhookEndpoint = {
  id: string;
  url: string;
  description: string;
  eventTypes: WebhookEventType[];
  isActive: boolean;
  createdBy: string;
  createdAt: Date;
  deactivatedAt: Date | null;
};

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'dead' | 'cancelled';

export type WebhookDelivery = {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: WebhookAttemptError | null;
  lastAttemptAt: Date | null;
  deliveredAt: Date | null;
  deadAt: Date | null;
  createdAt: Date;
};

/** What a failed attempt records in `last_error` (the status code goes to `last_status_code`). */
export type WebhookAttemptError =
  | 'orders.webhook_rejected'
  | 'orders.webhook_server_error'
  | 'orders.webhook_timeout'
  | 'orders.webhook_network_error'
  | 'orders.webhook_circuit_open'
  | 'orders.webhook_endpoint_inactive';

/** How long one POST may take, connection to last response header. */
export const WEBHOOK_TIMEOUT_MS = 5000;
/**
 * Retries after the first attempt. With the queue's 5 s first delay doubling
 * (jittered, capped at 15 min) the last retry runs some 20-36 minutes after
 * the first attempt: long enough to ride out a deploy or a short outage.
 */
export const WEBHOOK_RETRY_LIMIT = 8;

// Loopback, private, link-local, CGNAT and unspecified ranges: a webhook
// there would let an admin make the server probe its own network (SSRF).
const INTERNAL_ADDRESSES = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  INTERNAL_ADDRESSES.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  INTERNAL_ADDRESSES.addSubnet(network, prefix, 'ipv6');

const LOOPBACK_ADDRESSES = new BlockList();
LOOPBACK_ADDRESSES.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK_ADDRESSES.addAddress('::1', 'ipv6');

function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function isLocalName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

function isInternalAddress(host: string): boolean {
  const family = isIP(host);
  if (family === 0) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  // IPv4-mapped IPv6 (::ffff:10.0.0.1) is checked as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped?.[1] !== undefined) return INTERNAL_ADDRESSES.check(mapped[1], 'ipv4');
  return INTERNAL_ADDRESSES.check(host, type);
}

function isLoopback(host: string): boolean {
  if (isLocalName(host)) return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK_ADDRESSES.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Checks an endpoint URL. Production: `https` only, and no loopback,
 * private or link-local address literal nor `localhost` (a first line
 * against SSRF; a name that resolves to an internal address is the egress
 * firewall's to stop). Elsewhere `http` is also accepted, for loopback hosts
 * only, so tests and local development can run a receiver on 127.0.0.1.
 */
export function checkWebhookUrl(
  raw: string,
  options: { isProduction: boolean },
): { url: string } | { problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'url must be an absolute URL' };
  }
  if (url.username !== '' || url.password !== '') return { problem: 'url must not carry credentials' };
  if (url.hash !== '') return { problem: 'url must not have a fragment' };
  const host = bareHost(url.hostname);
  if (url.protocol === 'http:') {
    if (options.isProduction) return { problem: 'url must use https' };
    if (!isLoopback(host)) return { problem: 'http is only accepted for loopback hosts outside production' };
    return { url: url.toString() };
  }
  if (url.protocol !== 'https:') return { problem: 'url must use https' };
  if (options.isProduction && (isLocalName(host) || isInternalAddress(host)))
    return { problem: 'url must not point at a loopback, private or link-local address' };
  return { url: url.toString() };
}

/** How a receiver's HTTP status is judged. */
export type ResponseVerdict = 'delivered' | 'retryable' | 'permanent';

/**
 * 2xx delivered. 408, 429 and 5xx are the receiver's temporary trouble:
 * retried with backoff. Anything else (a 4xx, a redirect, which is never
 * followed) is a refusal another attempt would get again: dead at once.
 */
export function judgeResponseStatus(status: number): ResponseVerdict {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retryable';
  return 'permanent';
}

/**
 * The body POSTed for an event: its envelope without the internal trace
 * context. Serialised once, when the delivery is recorded, so every attempt
 * signs the same bytes.
 */
export function toWebhookBody(event: EventEnvelope): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    occurredAt: event.occurredAt,
    schemaVersion: event.schemaVersion,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    payload: event.payload,
  });
}
