import { createHmac, timingSafeEqual } from 'node:crypto';

// Standard Webhooks signing (https://www.standardwebhooks.com):
//   webhook-id:        the event id (receivers deduplicate on it)
//   webhook-timestamp: unix seconds of this attempt
//   webhook-signature: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`,
//                      several space-separated while a secret is being rotated
// The secret is `whsec_<base64 of 32 random bytes>`; the HMAC key is those bytes.

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const WEBHOOK_SIGNATURE_VERSION = 'v1';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** Formats 32 random bytes as a secret. */
export function formatWebhookSecret(bytes: Uint8Array): string {
  return `${WEBHOOK_SECRET_PREFIX}${Buffer.from(bytes).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  const encoded = secret.startsWith(WEBHOOK_SECRET_PREFIX)
    ? secret.slice(WEBHOOK_SECRET_PREFIX.length)
    : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length < 16)
    throw new Error('The webhook secret must be whsec_ followed by base64 of at least 16 bytes');
  return key;
}

function computeSignature(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key)
    .update(`${id}.${timestamp}.`)
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest();
}

/**
 * The three headers of one attempt, for the sender.
 *
 * @example
 * const headers = signWebhook(secret, { id: event.id, timestamp: Math.floor(Date.now() / 1000), body });
 */
export function signWebhook(
  secret: string,
  message: { id: string; timestamp: number; body: string },
): Record<(typeof WEBHOOK_HEADERS)[keyof typeof WEBHOOK_HEADERS], string> {
  const timestamp = String(message.timestamp);
  const signature = computeSignature(keyOf(secret), message.id, timestamp, message.body).toString('base64');
  return {
    [WEBHOOK_HEADERS.id]: message.id,
    [WEBHOOK_HEADERS.timestamp]: timestamp,
    [WEBHOOK_HEADERS.signature]: `${WEBHOOK_SIGNATURE_VERSION},${signature}`,
  };
}

export type WebhookVerification =
  | { isValid: true; id: string; timestamp: number }
  | { isValid: false; reason: 'missing_headers' | 'timestamp_out_of_tolerance' | 'signature_mismatch' };

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function headerOf(headers: HeaderBag, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const value = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Verifies a received webhook: for receivers (and our own tests). Pass the
 * raw body exactly as received, before any JSON parsing. Rejects a timestamp
 * more than `toleranceSeconds` (default 300) from `now` either way, which
 * bounds replays; deduplicate on the returned `id` for the rest.
 *
 * @example
 * const verdict = verifyWebhookSignature(secret, request.headers, rawBody);
 * if (!verdict.isValid) return reply.code(400).send();
 */
export function verifyWebhookSignature(
  secret: string,
  headers: HeaderBag,
  body: string | Uint8Array,
  options: { toleranceSeconds?: number; now?: Date } = {},
): WebhookVerification {
  const id = headerOf(headers, WEBHOOK_HEADERS.id);
  const timestampText = headerOf(headers, WEBHOOK_HEADERS.timestamp);
  const signatures = headerOf(headers, WEBHOOK_HEADERS.signature);
  if (id === undefined || timestampText === undefined || signatures === undefined)
    return { isValid: false, reason: 'missing_headers' };
  if (!/^\d{1,12}$/.test(timestampText)) return { isValid: false, reason: 'timestamp_out_of_tolerance' };
  const timestamp = Number(timestampText);
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS))
    return { isValid: false, reason: 'timestamp_out_of_tolerance' };
  const expected = computeSignature(keyOf(secret), id, timestampText, body);
  for (const candidate of signatures.split(' ')) {
    const [version, encoded] = candidate.split(',', 2);
    if (version !== WEBHOOK_SIGNATURE_VERSION || encoded === undefined) continue;
    const received = Buffer.from(encoded, 'base64');
    if (received.length === expected.length && timingSafeEqual(received, expected))
      return { isValid: true, id, timestamp };
  }
  return { isValid: false, reason: 'signature_mismatch' };
}
