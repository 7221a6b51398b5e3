import { createHmac, timingSafeEqual } from 'node:crypto';

// The gateway's webhook signature (Stripe's scheme):
//   Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
// with several `v1=` entries while the gateway rolls its secret; any one
// matching is enough. The HMAC key is the secret string's UTF-8 bytes.

export const GATEWAY_SIGNATURE_HEADER = 'gateway-signature';
export const GATEWAY_SIGNATURE_SCHEME = 'v1';

function computeSignature(secret: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret)
    .update(`${timestamp}.`)
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest();
}

/** The header value for one delivery attempt (the sender's side). */
export function signGatewayPayload(secret: string, timestamp: number, body: string): string {
  const signature = computeSignature(secret, String(timestamp), body).toString('hex');
  return `t=${timestamp},${GATEWAY_SIGNATURE_SCHEME}=${signature}`;
}

export type GatewaySignatureVerdict =
  | { isValid: true; timestamp: number }
  | {
      isValid: false;
      reason: 'missing_header' | 'malformed_header' | 'signature_mismatch' | 'timestamp_out_of_tolerance';
    };

type ParsedHeader = { timestampText: string; signatures: Buffer[] };

function parseHeader(value: string): ParsedHeader | undefined {
  let timestampText: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of value.split(',')) {
    const separator = part.indexOf('=');
    if (separator < 0) return undefined;
    const key = part.slice(0, separator).trim();
    const entry = part.slice(separator + 1).trim();
    if (key === 't') {
      // Two timestamps would let a forger pick which one is checked.
      if (timestampText !== undefined || !/^\d{1,12}$/.test(entry)) return undefined;
      timestampText = entry;
    } else if (key === GATEWAY_SIGNATURE_SCHEME) {
      if (/^[0-9a-fA-F]{64}$/.test(entry)) signatures.push(Buffer.from(entry, 'hex'));
    }
    // Other schemes (a test-mode `v0`, a future `v2`) are not ours to check.
  }
  if (timestampText === undefined) return undefined;
  return { timestampText, signatures };
}

/**
 * Verifies a received webhook against the raw body exactly as received. The
 * signature is checked before the timestamp, so "stale" is only ever said of
 * a message the gateway really signed.
 */
export function verifyGatewaySignature(
  secret: string,
  header: string | undefined,
  body: string | Uint8Array,
  options: { now: Date; toleranceSeconds: number },
): GatewaySignatureVerdict {
  if (header === undefined || header === '') return { isValid: false, reason: 'missing_header' };
  const parsed = parseHeader(header);
  if (parsed === undefined) return { isValid: false, reason: 'malformed_header' };
  const expected = computeSignature(secret, parsed.timestampText, body);
  const isMatch = parsed.signatures.some(
    (candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected),
  );
  if (!isMatch) return { isValid: false, reason: 'signature_mismatch' };
  const timestamp = Number(parsed.timestampText);
  const nowSeconds = Math.floor(options.now.getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > options.toleranceSeconds)
    return { isValid: false, reason: 'timestamp_out_of_tolerance' };
  return { isValid: true, timestamp };
}
