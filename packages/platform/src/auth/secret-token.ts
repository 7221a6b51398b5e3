import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A fresh secret for a client to present later (refresh token, reset token,
 * MFA challenge): 256 random bits, base64url. Only its hash is stored.
 */
export function generateSecretToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * SHA-256 of a presented secret. A fast hash is right here: the secrets carry
 * 256 random bits, so there is nothing to brute-force that a slow hash would protect.
 */
export function hashSecretToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Constant-time comparison of two hashes of equal length. */
export function isSameHash(left: Buffer, right: Buffer): boolean {
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The key login throttling uses for an email: it exists whether or not an account does. */
export function hashEmailForThrottle(email: string): Buffer {
  return createHash('sha256').update(email.trim().toLowerCase(), 'utf8').digest();
}
