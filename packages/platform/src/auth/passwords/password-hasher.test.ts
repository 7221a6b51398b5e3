import { parseOptions } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { createPasswordHasher, OWASP_ARGON2ID } from './password-hasher.ts';

// Each argon2 call at OWASP cost takes tens of milliseconds, so tests share a few hashes.
const hasher = createPasswordHasher();
const password = 'correct horse battery staple';
const storedHash = await hasher.hash(password);

// The cheapest parameters argon2 accepts for one lane; only the parameters matter here.
const cheapParameters = { memoryCost: 8, timeCost: 1, parallelism: 1 };

describe('createPasswordHasher', () => {
  it('produces an argon2id v=19 PHC string with m=19456, t=2, p=1 by default', () => {
    expect(storedHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(parseOptions(storedHash)).toMatchObject({ ...OWASP_ARGON2ID, outputLen: 32, saltLen: 16 });
  });

  it('accepts the password it hashed when verifying', async () => {
    expect(await hasher.verify(storedHash, password)).toBe(true);
  });

  it('rejects a different password when verifying', async () => {
    expect(await hasher.verify(storedHash, 'correct horse battery stapler')).toBe(false);
  });

  it('returns false instead of throwing when the hash is malformed', async () => {
    expect(await hasher.verify('not-a-phc-string', password)).toBe(false);
    expect(await hasher.verify('', password)).toBe(false);
    expect(await hasher.verify('$argon2id$v=19$m=19456,t=2,p=1$AAAA', password)).toBe(false);
  });

  it('returns false from verifyDummy even when given a password', async () => {
    expect(await hasher.verifyDummy(password)).toBe(false);
  });

  it('gives a different hash for the same password each time because the salt is random', async () => {
    const cheap = createPasswordHasher(cheapParameters);
    expect(await cheap.hash(password)).not.toBe(await cheap.hash(password));
  });

  it('matches the composed and decomposed forms of "café" against each other when verifying', async () => {
    const cheap = createPasswordHasher(cheapParameters);
    const composed = 'caf\u00e9 au lait';
    const decomposed = 'cafe\u0301 au lait';
    expect(composed).not.toBe(decomposed);
    expect(await cheap.verify(await cheap.hash(composed), decomposed)).toBe(true);
    expect(await cheap.verify(await cheap.hash(decomposed), composed)).toBe(true);
  });
});

describe('needsRehash', () => {
  it('returns false for a hash made with the current parameters', () => {
    expect(hasher.needsRehash(storedHash)).toBe(false);
  });

  it('returns true for a hash made with other parameters', async () => {
    const older = createPasswordHasher(cheapParameters);
    const olderHash = await older.hash(password);
    expect(hasher.needsRehash(olderHash)).toBe(true);
    expect(older.needsRehash(olderHash)).toBe(false);
    expect(older.needsRehash(storedHash)).toBe(true);
  });

  it('returns true when only one parameter differs', () => {
    expect(createPasswordHasher({ timeCost: 3 }).needsRehash(storedHash)).toBe(true);
    expect(createPasswordHasher({ memoryCost: 47104, timeCost: 1 }).needsRehash(storedHash)).toBe(true);
    expect(createPasswordHasher({ parallelism: 2 }).needsRehash(storedHash)).toBe(true);
  });

  it('returns true for an argon2i hash with the current costs', () => {
    const argon2iHash = storedHash.replace(/^\$argon2id\$/, '$argon2i$');
    expect(hasher.needsRehash(argon2iHash)).toBe(true);
  });

  it('returns true when the hash cannot be parsed', () => {
    expect(hasher.needsRehash('not-a-phc-string')).toBe(true);
  });
});
