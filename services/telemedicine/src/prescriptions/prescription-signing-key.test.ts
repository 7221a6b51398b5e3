import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError } from '@keel/platform/config';
import { describe, expect, it } from 'vitest';
import {
  GENERATED_SIGNING_KEY_FILE,
  keyIdOf,
  loadPrescriptionSigningKey,
  loadRetiredVerificationKeys,
} from './prescription-signing-key.ts';

function freshDirectory(): string {
  return mkdtempSync(path.join(tmpdir(), 'keel-signing-key-'));
}

function pkcs8Base64(type: 'ed25519' | 'ed448' = 'ed25519'): string {
  const { privateKey } = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ed448');
  return privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64');
}

function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadPrescriptionSigningKey', () => {
  it('uses the configured key, naming it by the SHA-256 of its public key', () => {
    const base64 = pkcs8Base64();
    const key = loadPrescriptionSigningKey({
      signingKey: base64,
      dataDirectory: freshDirectory(),
      allowGenerate: false,
    });
    expect(key.source).toBe('environment');
    expect(key.kid).toMatch(/^[0-9a-f]{16}$/);
    expect(key.publicJwk).toEqual({ kid: key.kid, kty: 'OKP', crv: 'Ed25519', x: expect.any(String) });
    const message = Buffer.from('{"a":1}');
    expect(key.verify(message, key.sign(message))).toBe(true);
    expect(key.verify(Buffer.from('{"a":2}'), key.sign(message))).toBe(false);
  });

  it('generates a key file (mode 0600) once outside production and reads it back on the next start', () => {
    const directory = path.join(freshDirectory(), 'nested');
    const first = loadPrescriptionSigningKey({ dataDirectory: directory, allowGenerate: true });
    const second = loadPrescriptionSigningKey({ dataDirectory: directory, allowGenerate: true });
    expect(first.source).toBe('generated');
    expect(second.kid).toBe(first.kid);
    const file = path.join(directory, GENERATED_SIGNING_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, privateKey: expect.any(String) });
  });

  it('gives processes that start together one key: the first link wins, the others read it', async () => {
    const directory = freshDirectory();
    const module = fileURLToPath(new URL('./prescription-signing-key.ts', import.meta.url));
    const script =
      `const { loadPrescriptionSigningKey } = await import(${JSON.stringify(module)});` +
      `console.log(loadPrescriptionSigningKey({ dataDirectory: ${JSON.stringify(directory)}, allowGenerate: true }).kid);`;
    const run = promisify(execFile);
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () => run(process.execPath, ['--input-type=module', '--eval', script])),
    );
    const kids = new Set(outputs.map((output) => output.stdout.trim()));
    expect(kids.size).toBe(1);
    expect(loadPrescriptionSigningKey({ dataDirectory: directory, allowGenerate: true }).kid).toBe(
      [...kids][0],
    );
    // Node processes start slowly on a busy machine; the race itself is over in microseconds.
  }, 60_000);

  it('refuses to start in production without the variable', () => {
    const error = configErrorOf(() =>
      loadPrescriptionSigningKey({ dataDirectory: freshDirectory(), allowGenerate: false }),
    );
    expect(error.problems.join('\n')).toContain('TELEMEDICINE_PRESCRIPTION_SIGNING_KEY');
  });

  it('refuses a key that is not Ed25519, or not a key, without echoing it', () => {
    for (const value of [
      pkcs8Base64('ed448'),
      Buffer.from('not a key at all, just text').toString('base64'),
    ]) {
      const error = configErrorOf(() =>
        loadPrescriptionSigningKey({
          signingKey: value,
          dataDirectory: freshDirectory(),
          allowGenerate: true,
        }),
      );
      expect(error.problems.join('\n')).toContain('TELEMEDICINE_PRESCRIPTION_SIGNING_KEY');
      expect(error.message).not.toContain(value);
    }
  });

  it('refuses a damaged key file instead of replacing it', () => {
    const directory = freshDirectory();
    writeFileSync(path.join(directory, GENERATED_SIGNING_KEY_FILE), '{"version":1}', { mode: 0o600 });
    const error = configErrorOf(() =>
      loadPrescriptionSigningKey({ dataDirectory: directory, allowGenerate: true }),
    );
    expect(error.problems.join('\n')).toContain(GENERATED_SIGNING_KEY_FILE);
  });

  it('derives the kid from the public key alone', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(keyIdOf(publicKey)).toBe(keyIdOf(publicKey));
    expect(keyIdOf(publicKey)).not.toBe(keyIdOf(generateKeyPairSync('ed25519').publicKey));
  });
});

describe('loadRetiredVerificationKeys', () => {
  function currentKey() {
    return loadPrescriptionSigningKey({
      signingKey: pkcs8Base64(),
      dataDirectory: freshDirectory(),
      allowGenerate: false,
    });
  }

  function spkiBase64(type: 'ed25519' | 'ed448' = 'ed25519'): {
    base64: string;
    sign: (message: Buffer) => Buffer;
  } {
    const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ed448');
    return {
      base64: pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      sign: (message) => sign(null, message, pair.privateKey),
    };
  }

  it('has none when the variable is unset or blank', () => {
    const current = currentKey();
    expect(loadRetiredVerificationKeys(undefined, current)).toEqual([]);
    expect(loadRetiredVerificationKeys(' , ', current)).toEqual([]);
  });

  it('reads comma-separated public keys that verify what their private halves signed, and nothing else', () => {
    const first = spkiBase64();
    const second = spkiBase64();
    const keys = loadRetiredVerificationKeys(` ${first.base64},${second.base64} `, currentKey());
    expect(keys.map((key) => key.publicJwk.kty)).toEqual(['OKP', 'OKP']);
    const message = Buffer.from('{"a":1}');
    const signature = first.sign(message).toString('base64url');
    expect(keys[0]?.verify(message, signature)).toBe(true);
    expect(keys[1]?.verify(message, signature)).toBe(false);
    expect(keys[0]?.verify(Buffer.from('{"a":2}'), signature)).toBe(false);
    expect(keys[0]?.kid).not.toBe(keys[1]?.kid);
    expect('sign' in (keys[0] ?? {})).toBe(false);
  });

  it('refuses garbage, another curve, the current key and a key listed twice, naming each entry', () => {
    const current = currentKey();
    const currentPublic = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: current.publicJwk.x },
      format: 'jwk',
    })
      .export({ type: 'spki', format: 'der' })
      .toString('base64');
    const twice = spkiBase64().base64;
    const error = configErrorOf(() =>
      loadRetiredVerificationKeys(
        ['not-a-key', spkiBase64('ed448').base64, currentPublic, twice, twice].join(','),
        current,
      ),
    );
    expect(error.message).toContain(
      'TELEMEDICINE_PRESCRIPTION_RETIRED_PUBLIC_KEYS[0]: not a base64 SPKI DER public key',
    );
    expect(error.message).toContain('[1]: must be an Ed25519 key (it is ed448)');
    expect(error.message).toContain('[2]: key');
    expect(error.message).toContain('is the current signing key');
    expect(error.message).toContain('[4]: key');
    expect(error.message).toContain('is listed twice');
  });
});
