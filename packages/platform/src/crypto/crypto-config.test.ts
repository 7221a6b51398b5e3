import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../config/index.ts';
import { createBlindIndex } from './blind-index.ts';
import { GENERATED_KEYS_FILE, loadFieldCrypto } from './crypto-config.ts';
import { createFieldEncryption } from './field-encryption.ts';
import { generateEncryptionKey, parseKeyring } from './keyring.ts';

const k1 = generateEncryptionKey();
const k2 = generateEncryptionKey();
const blindKey = generateEncryptionKey();
const aad = 'crypto_test.secrets:value:1';

const directories: string[] = [];

afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function freshDirectory(): string {
  const directory = mkdtempSync(path.join(tmpdir(), 'keel-crypto-config-'));
  directories.push(directory);
  return directory;
}

function catchConfigError(work: () => unknown): ConfigError {
  try {
    work();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** Everything an error could show an operator or a log. */
function rendered(error: ConfigError): string {
  return `${error.message}\n${JSON.stringify(error)}\n${error.problems.join('\n')}`;
}

describe('loadFieldCrypto from the environment', () => {
  it('uses KEEL_ENCRYPTION_KEYS with the first key active and returns the blind index key', () => {
    const fieldCrypto = loadFieldCrypto({
      encryptionKeys: `k2:${k2},k1:${k1}`,
      blindIndexKey: blindKey,
      dataDirectory: freshDirectory(),
      allowGenerate: false,
    });

    expect(fieldCrypto.source).toBe('environment');
    expect(fieldCrypto.keyring.keyIds).toEqual(['k2', 'k1']);
    expect(fieldCrypto.encryption.activeKeyId).toBe('k2');
    expect(fieldCrypto.blindIndexKey).toBe(blindKey);
    const underK1 = createFieldEncryption(parseKeyring(`k1:${k1}`)).encrypt('old', aad);
    expect(fieldCrypto.encryption.decrypt(underK1, aad)).toBe('old');
  });

  it('writes no key file when the keys come from the environment', () => {
    const dataDirectory = freshDirectory();
    loadFieldCrypto({
      encryptionKeys: `k1:${k1}`,
      blindIndexKey: blindKey,
      dataDirectory,
      allowGenerate: true,
    });
    expect(readdirSync(dataDirectory)).toEqual([]);
  });

  it('rejects naming both variables and how to generate them when both are unset in production', () => {
    const error = catchConfigError(() =>
      loadFieldCrypto({ dataDirectory: freshDirectory(), allowGenerate: false }),
    );
    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toMatch(
      /^KEEL_ENCRYPTION_KEYS: required in production.*keys generate encryption/,
    );
    expect(error.problems[1]).toMatch(
      /^KEEL_BLIND_INDEX_KEY: required in production.*keys generate blind-index/,
    );
  });

  it('treats empty and blank values as unset', () => {
    const error = catchConfigError(() =>
      loadFieldCrypto({
        encryptionKeys: '',
        blindIndexKey: '  ',
        dataDirectory: freshDirectory(),
        allowGenerate: false,
      }),
    );
    expect(error.problems).toHaveLength(2);
  });

  it.each([
    ['production', false],
    ['development', true],
  ])(
    'rejects in %s when only KEEL_ENCRYPTION_KEYS is set, naming the missing variable and no key',
    (_, allowGenerate) => {
      const dataDirectory = freshDirectory();
      const error = catchConfigError(() =>
        loadFieldCrypto({ encryptionKeys: `k1:${k1}`, dataDirectory, allowGenerate }),
      );
      expect(error.problems).toEqual([
        expect.stringMatching(/^KEEL_BLIND_INDEX_KEY: must be set because KEEL_ENCRYPTION_KEYS is/),
      ]);
      expect(rendered(error)).not.toContain(k1);
      expect(readdirSync(dataDirectory)).toEqual([]);
    },
  );

  it.each([
    ['production', false],
    ['development', true],
  ])(
    'rejects in %s when only KEEL_BLIND_INDEX_KEY is set, naming the missing variable and no key',
    (_, allowGenerate) => {
      const error = catchConfigError(() =>
        loadFieldCrypto({ blindIndexKey: blindKey, dataDirectory: freshDirectory(), allowGenerate }),
      );
      expect(error.problems).toEqual([
        expect.stringMatching(/^KEEL_ENCRYPTION_KEYS: must be set because KEEL_BLIND_INDEX_KEY is/),
      ]);
      expect(rendered(error)).not.toContain(blindKey);
    },
  );

  it('reports a malformed keyring and a malformed blind index key together without echoing either', () => {
    const shortKey = Buffer.alloc(16, 7).toString('base64');
    const error = catchConfigError(() =>
      loadFieldCrypto({
        encryptionKeys: `k1:${shortKey}`,
        blindIndexKey: 'not-a-key',
        dataDirectory: freshDirectory(),
        allowGenerate: false,
      }),
    );
    expect(error.problems).toEqual([
      expect.stringMatching(/^KEEL_ENCRYPTION_KEYS: Key k1 must be 32 bytes/),
      expect.stringMatching(/^KEEL_BLIND_INDEX_KEY: The blind index key must be 32 bytes/),
    ]);
    expect(rendered(error)).not.toContain(shortKey);
    expect(rendered(error)).not.toContain('not-a-key');
  });

  it('rejects a blind index key equal to one of the encryption keys, naming the key id only', () => {
    const error = catchConfigError(() =>
      loadFieldCrypto({
        encryptionKeys: `k2:${k2},k1:${k1}`,
        blindIndexKey: k1,
        dataDirectory: freshDirectory(),
        allowGenerate: false,
      }),
    );
    expect(error.problems).toEqual([
      'KEEL_BLIND_INDEX_KEY: must differ from every encryption key (it equals key k1)',
    ]);
    expect(rendered(error)).not.toContain(k1);
  });
});

describe('loadFieldCrypto with generated keys', () => {
  it('creates the data directory and a 0600 key file on first start, and the keys work', () => {
    const dataDirectory = path.join(freshDirectory(), 'nested', '.keel');

    const fieldCrypto = loadFieldCrypto({ dataDirectory, allowGenerate: true });

    expect(fieldCrypto.source).toBe('generated');
    expect(fieldCrypto.keyring.keyIds).toEqual(['k1']);
    const file = path.join(dataDirectory, GENERATED_KEYS_FILE);
    expect(readdirSync(dataDirectory)).toEqual([GENERATED_KEYS_FILE]);
    if (process.platform !== 'win32') expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    expect(stored).toEqual({
      version: 1,
      encryptionKeys: expect.stringMatching(/^k1:[A-Za-z0-9+/]{43}=$/),
      blindIndexKey: fieldCrypto.blindIndexKey,
    });
    expect(stored.blindIndexKey).not.toBe(stored.encryptionKeys.slice(3));
    const ciphertext = fieldCrypto.encryption.encrypt('secret', aad);
    expect(fieldCrypto.encryption.decrypt(ciphertext, aad)).toBe('secret');
    expect(() =>
      createBlindIndex({
        key: fieldCrypto.blindIndexKey,
        context: 'crypto_test.email',
        normalise: (value) => value,
      }),
    ).not.toThrow();
  });

  it('reads the same keys on the next start, so values written before a restart still decrypt', () => {
    const dataDirectory = freshDirectory();
    const first = loadFieldCrypto({ dataDirectory, allowGenerate: true });
    const ciphertext = first.encryption.encrypt('kept across restarts', aad);
    const token = createBlindIndex({
      key: first.blindIndexKey,
      context: 'crypto_test.email',
      normalise: (value) => value,
    });

    const second = loadFieldCrypto({ dataDirectory, allowGenerate: true });

    expect(second.source).toBe('generated');
    expect(second.encryption.decrypt(ciphertext, aad)).toBe('kept across restarts');
    expect(second.blindIndexKey).toBe(first.blindIndexKey);
    expect(
      createBlindIndex({
        key: second.blindIndexKey,
        context: 'crypto_test.email',
        normalise: (value) => value,
      }).compute('a'),
    ).toBe(token.compute('a'));
  });

  it('takes group and other access away from a key file that was copied with loose permissions', () => {
    if (process.platform === 'win32') return;
    const dataDirectory = freshDirectory();
    const file = path.join(dataDirectory, GENERATED_KEYS_FILE);
    writeFileSync(file, JSON.stringify({ version: 1, encryptionKeys: `k1:${k1}`, blindIndexKey: blindKey }), {
      mode: 0o644,
    });

    const fieldCrypto = loadFieldCrypto({ dataDirectory, allowGenerate: true });

    expect(fieldCrypto.blindIndexKey).toBe(blindKey);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['not JSON', '{ nope'],
    ['another version', JSON.stringify({ version: 2, encryptionKeys: `k1:${k1}`, blindIndexKey: blindKey })],
    ['a field missing', JSON.stringify({ version: 1, encryptionKeys: `k1:${k1}` })],
  ])('refuses a key file that is %s, naming the file and never suggesting to delete it', (_, content) => {
    const dataDirectory = freshDirectory();
    const file = path.join(dataDirectory, GENERATED_KEYS_FILE);
    writeFileSync(file, content, { mode: 0o600 });

    const error = catchConfigError(() => loadFieldCrypto({ dataDirectory, allowGenerate: true }));

    expect(error.problems).toEqual([expect.stringContaining(`${file}: not a Keel key file`)]);
    expect(error.problems[0]).toContain('restore it from a backup');
    expect(rendered(error)).not.toContain(k1);
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it('refuses a key file holding a malformed key, naming the file and not the key', () => {
    const dataDirectory = freshDirectory();
    const file = path.join(dataDirectory, GENERATED_KEYS_FILE);
    const shortKey = Buffer.alloc(16, 9).toString('base64');
    writeFileSync(file, JSON.stringify({ version: 1, encryptionKeys: `k1:${k1}`, blindIndexKey: shortKey }));

    const error = catchConfigError(() => loadFieldCrypto({ dataDirectory, allowGenerate: true }));

    expect(error.problems).toEqual([
      expect.stringMatching(new RegExp(`^${escapeRegExp(file)}: The blind index key`)),
    ]);
    expect(rendered(error)).not.toContain(shortKey);
    expect(rendered(error)).not.toContain(k1);
  });
});

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
