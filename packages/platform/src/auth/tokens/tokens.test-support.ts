import { createPrivateKey, type KeyObject } from 'node:crypto';
import {
  type AccessTokenError,
  isAccessTokenError,
  isTokensError,
  type TokensError,
} from './tokens.errors.ts';

/** A clock tests move by hand. Starts at a fixed instant on a whole second. */
export function createFakeClock(start = new Date('2030-01-01T00:00:00.000Z')) {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    advanceSeconds(seconds: number) {
      current += seconds * 1000;
    },
  };
}

/** Predictable `jti` values: ...-000000000001, ...-000000000002, ... */
export function createSequentialIds() {
  let counter = 0;
  return {
    uuid: () => {
      counter += 1;
      return `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`;
    },
  };
}

/** The private key inside a `kid:base64pkcs8` entry, for crafting tokens the way an attacker with the key could. */
export function privateKeyOf(entry: string): KeyObject {
  const encoded = entry.slice(entry.indexOf(':') + 1);
  return createPrivateKey({ key: Buffer.from(encoded, 'base64'), format: 'der', type: 'pkcs8' });
}

/** Only the base64 key part of a `kid:base64pkcs8` entry. */
export function keyMaterialOf(entry: string): string {
  return entry.slice(entry.indexOf(':') + 1);
}

/** Runs `work` and returns the AccessTokenError it rejects with; fails if it resolves or rejects with something else. */
export async function catchAccessTokenError(work: () => Promise<unknown>): Promise<AccessTokenError> {
  try {
    await work();
  } catch (error) {
    if (isAccessTokenError(error)) return error;
    throw error;
  }
  throw new Error('expected an AccessTokenError');
}

/** Runs `work` and returns the TokensError it throws or rejects with. */
export async function catchTokensError(work: () => unknown): Promise<TokensError> {
  try {
    await work();
  } catch (error) {
    if (isTokensError(error)) return error;
    throw error;
  }
  throw new Error('expected a TokensError');
}
