import { type CryptoError, isCryptoError } from './crypto.errors.ts';

/** Runs `work` and returns the CryptoError it throws; fails the test if it throws nothing or something else. */
export function catchCryptoError(work: () => unknown): CryptoError {
  try {
    work();
  } catch (error) {
    return asCryptoError(error);
  }
  throw new Error('expected a CryptoError');
}

/** `catchCryptoError` for asynchronous work. */
export async function catchCryptoErrorAsync(work: () => Promise<unknown>): Promise<CryptoError> {
  try {
    await work();
  } catch (error) {
    return asCryptoError(error);
  }
  throw new Error('expected a CryptoError');
}

function asCryptoError(error: unknown): CryptoError {
  if (isCryptoError(error)) return error;
  throw error;
}
