import { describe, expect, it } from 'vitest';
import { catchCryptoErrorAsync } from './crypto.test-support.ts';
import { createFieldEncryption } from './field-encryption.ts';
import { generateEncryptionKey, parseKeyring } from './keyring.ts';
import type { RotationDatabase } from './rotation.ts';
import { countValuesToRotate, rotateEncryptedColumn, toEncryptedColumn } from './rotation.ts';

const encryption = createFieldEncryption(parseKeyring(`k1:${generateEncryptionKey()}`));

// Validation must fail before any query: this handle throws if it is ever used.
const untouchable = {
  run: () => Promise.reject(new Error('the database must not be reached')),
  transaction: () => Promise.reject(new Error('the database must not be reached')),
} satisfies RotationDatabase;

function rotationOptions(overrides: Partial<Parameters<typeof rotateEncryptedColumn>[0]> = {}) {
  return {
    db: untouchable,
    table: 'crypto_test.secrets',
    idColumn: 'id',
    column: 'value',
    aad: (id: string) => `crypto_test.secrets:value:${id}`,
    batchSize: 500,
    encryption,
    ...overrides,
  };
}

describe('toEncryptedColumn', () => {
  it('splits a schema-qualified table', () => {
    expect(toEncryptedColumn({ table: 'user_metadata.users', idColumn: 'id', column: 'phone' })).toEqual({
      schema: 'user_metadata',
      table: 'users',
      idColumn: 'id',
      column: 'phone',
    });
  });

  it('accepts a table without a schema', () => {
    expect(toEncryptedColumn({ table: 'users', idColumn: 'id', column: 'phone' }).schema).toBeUndefined();
  });
});

describe('rotateEncryptedColumn validation', () => {
  it.each([
    ['table', { table: 'users; drop table users' }],
    ['table', { table: 'a.b.c' }],
    ['table', { table: '"users"' }],
    ['table', { table: 'Users' }],
    ['table', { table: '.users' }],
    ['idColumn', { idColumn: 'id--' }],
    ['idColumn', { idColumn: '1id' }],
    ['column', { column: 'value" = 1; --' }],
    ['column', { column: 'x'.repeat(64) }],
  ])('rejects with crypto.invalid_identifier naming %s before touching the database', async (option, bad) => {
    const error = await catchCryptoErrorAsync(() => rotateEncryptedColumn(rotationOptions(bad)));
    expect(error.code).toBe('crypto.invalid_identifier');
    expect(error.extensions).toEqual({ option });
  });

  it.each([0, -1, 1.5, 10_001, Number.NaN])(
    'rejects with crypto.invalid_input when batchSize is %s',
    async (batchSize) => {
      const error = await catchCryptoErrorAsync(() => rotateEncryptedColumn(rotationOptions({ batchSize })));
      expect(error.code).toBe('crypto.invalid_input');
    },
  );

  it('rejects with crypto.invalid_identifier when counting with a bad column name', async () => {
    const error = await catchCryptoErrorAsync(() =>
      countValuesToRotate({ db: untouchable, table: 'crypto_test.secrets', column: 'a b', encryption }),
    );
    expect(error.code).toBe('crypto.invalid_identifier');
  });
});
