import { execFile } from 'node:child_process';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { recordAuditEvent, sealAuditEvents } from '@keel/platform/audit';
import { mfaSecretColumn } from '@keel/platform/auth';
import {
  createBlindIndex,
  createFieldEncryption,
  generateEncryptionKey,
  parseKeyring,
} from '@keel/platform/crypto';
import { AppError } from '@keel/platform/errors';
import { systemClock } from '@keel/platform/module';
import { createLogger } from '@keel/platform/observability';
import { createEventBus, emitEvent } from '@keel/platform/outbox';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from './cli.ts';
import { ENCRYPTED_COLUMNS } from './key-rotation.ts';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('keelTestDatabase'));
  await testDb.database.typed<unknown>().transaction(async (trx) => {
    for (const resourceId of ['a', 'b', 'c']) {
      await recordAuditEvent(trx, {
        actorType: 'system',
        action: 'tests.cli_checked',
        resourceType: 'test',
        resourceId,
        outcome: 'success',
      });
    }
  });
  await sealAuditEvents(testDb.database, 10);
});

afterAll(async () => {
  await testDb?.drop();
});

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { stream, text: () => chunks.join('') };
}

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(args, {
    env: { DATABASE_URL: testDb.url, NODE_ENV: 'test', ...env },
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('keel audit verify', () => {
  it('exits 0 and reports the sealed count when the chain is intact', async () => {
    const result = await run(['audit', 'verify']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^audit chain intact: 3 events sealed, 0 awaiting the sealer; head position 3 hash [0-9a-f]{64}\n$/,
    );
  });

  it('prints the verification as JSON with --json', async () => {
    const result = await run(['audit', 'verify', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: true,
      sealed: 3,
      unsealed: 0,
      head: { position: 3 },
    });
  });

  it('exits 2 with the usage on an unknown command or option', async () => {
    for (const args of [[], ['audit', 'rewrite'], ['audit', 'verify', '--fix']]) {
      const result = await run(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('Usage: keel');
    }
  });

  it('exits 2 when the configuration is invalid', async () => {
    const stderr = capture();
    const code = await runCli(['audit', 'verify'], {
      env: { DATABASE_URL: 'mysql://nope' },
      stdout: capture().stream,
      stderr: stderr.stream,
    });
    expect(code).toBe(2);
    expect(stderr.text()).toContain('DATABASE_URL');
  });

  it('runs as a process and exits 1 naming the broken link when an event was edited', async () => {
    const client = await testDb.database.pool.connect();
    try {
      await client.query('begin');
      await client.query('set local session_replication_role = replica');
      await client.query(`update platform.audit_events set outcome = 'denied' where resource_id = 'b'`);
      await client.query('commit');
    } finally {
      client.release();
    }
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const running = promisify(execFile)(process.execPath, [cli, 'audit', 'verify'], {
      env: { ...process.env, DATABASE_URL: testDb.url, LOG_LEVEL: '' },
    });
    await expect(running).rejects.toMatchObject({
      code: 1,
      stdout: expect.stringMatching(/^audit chain BROKEN at position 2 \(event \d+\): hash_mismatch/),
    });
  });
});

describe('keel keys generate', () => {
  it('prints only a kid:key entry that parses as a one-key keyring and encrypts', async () => {
    const result = await run(['keys', 'generate', 'encryption', 'k2']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^k2:[A-Za-z0-9+/]{43}=\n$/);
    const keyring = parseKeyring(result.stdout.trim());
    expect(keyring.keyIds).toEqual(['k2']);
    expect(Buffer.from(result.stdout.trim().slice(3), 'base64')).toHaveLength(32);
    const encryption = createFieldEncryption(keyring);
    expect(encryption.decrypt(encryption.encrypt('secret', 'tests:value:1'), 'tests:value:1')).toBe('secret');
  });

  it('names the encryption key after the UTC date when no kid is given, and never repeats a key', async () => {
    const first = await run(['keys', 'generate', 'encryption']);
    const second = await run(['keys', 'generate', 'encryption']);

    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^k\d{8}:[A-Za-z0-9+/]{43}=\n$/);
    expect(second.stdout).not.toBe(first.stdout);
    // Two of them make a valid rotation keyring: distinct keys (ids renamed, as an operator would).
    const [, firstKey] = first.stdout.trim().split(':');
    const [, secondKey] = second.stdout.trim().split(':');
    expect(parseKeyring(`k2:${secondKey},k1:${firstKey}`).keyIds).toEqual(['k2', 'k1']);
  });

  it('exits 2 without printing a key when the kid is not a valid key id', async () => {
    const result = await run(['keys', 'generate', 'encryption', 'Bad Kid!']);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^keys generate encryption failed: .*invalid key id/);
  });

  it('prints only a base64 32-byte blind index key that createBlindIndex accepts', async () => {
    const result = await run(['keys', 'generate', 'blind-index']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const key = result.stdout.trim();
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(() =>
      createBlindIndex({ key, context: 'tests.email', normalise: (value) => value }),
    ).not.toThrow();
  });

  it('prints only a kid:key entry holding a PKCS#8 Ed25519 private key for AUTH_SIGNING_KEYS', async () => {
    const result = await run(['keys', 'generate', 'signing', 'sig-2']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^sig-2:[A-Za-z0-9+/]+=*\n$/);
    const der = Buffer.from(result.stdout.trim().slice('sig-2:'.length), 'base64');
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    expect(privateKey.asymmetricKeyType).toBe('ed25519');
  });

  it('exits 2 with the usage on an unknown kind or extra arguments', async () => {
    for (const args of [
      ['keys', 'generate'],
      ['keys', 'generate', 'rsa'],
      ['keys', 'generate', 'blind-index', 'k1'],
      ['keys', 'generate', 'encryption', 'k1', 'k2'],
      ['keys', 'rotate-everything'],
    ]) {
      const result = await run(args);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('Usage: keel');
    }
  });

  it('runs as a process and writes just the key to stdout', async () => {
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [cli, 'keys', 'generate', 'blind-index'],
      {
        env: { ...process.env, LOG_LEVEL: '' },
      },
    );
    expect(stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(stderr).toBe('');
  });
});

describe('keel keys status and keys rotate', () => {
  const k1 = generateEncryptionKey();
  const k2 = generateEncryptionKey();
  const blindIndexKey = generateEncryptionKey();
  const oldKeys = {
    KEEL_ENCRYPTION_KEYS: `k1:${k1}`,
    KEEL_BLIND_INDEX_KEY: blindIndexKey,
    NODE_ENV: 'production',
  };
  const newKeys = { ...oldKeys, KEEL_ENCRYPTION_KEYS: `k2:${k2},k1:${k1}` };
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    // Accounts whose MFA secrets were written before k2 existed.
    const beforeRotation = createFieldEncryption(parseKeyring(`k1:${k1}`));
    for (let index = 0; index < 3; index += 1) {
      const id = randomUUID();
      secrets.set(id, `JBSWY3DPEHPK3PX${index}`);
      await testDb.database.pool.query(
        `insert into platform.accounts (id, email, password_hash, mfa_secret, password_changed_at, created_at, updated_at)
         values ($1, $2, 'not-a-real-hash', $3, now(), now(), now())`,
        [
          id,
          `rotation-${index}@example.com`,
          beforeRotation.encrypt(secrets.get(id) ?? '', mfaSecretColumn.aad(id)),
        ],
      );
    }
  });

  async function readSecrets(): Promise<{ id: string; mfa_secret: string }[]> {
    const result = await testDb.database.pool.query<{ id: string; mfa_secret: string }>(
      'select id, mfa_secret from platform.accounts where mfa_secret is not null',
    );
    return result.rows;
  }

  // Every encrypted column but the MFA secrets these tests write: empty, so nothing to rotate.
  const otherColumns = ENCRYPTED_COLUMNS.filter((spec) => spec !== mfaSecretColumn);

  it('exits 0 reporting nothing to rotate while the keyring has not changed', async () => {
    const result = await run(['keys', 'status', '--json'], oldKeys);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      activeKeyId: 'k1',
      keyIds: ['k1'],
      isDone: true,
      columns: ENCRYPTED_COLUMNS.map(({ table, column }) => ({ table, column, pending: 0 })),
    });
  });

  it('exits 1 counting the values under the old key once a new key is first, then rotate moves them and status exits 0', async () => {
    const before = await run(['keys', 'status'], newKeys);
    expect(before.code).toBe(1);
    expect(before.stdout).toBe(
      'active key k2 (keyring: k2, k1)\n' +
        'platform.accounts.mfa_secret: 3 values under an older key\n' +
        otherColumns.map((spec) => `${spec.table}.${spec.column}: 0 values under an older key\n`).join('') +
        'values remain under older keys: keep every key until this reaches 0\n',
    );

    const rotation = await run(['keys', 'rotate'], newKeys);

    expect(rotation).toMatchObject({ code: 0, stderr: '' });
    expect(rotation.stdout).toBe(
      'platform.accounts.mfa_secret: 3 of 3 re-wrapped under k2, 0 changed meanwhile, 0 failed\n' +
        otherColumns.map((spec) => `${spec.table}.${spec.column}: nothing to rotate\n`).join('') +
        'done: every value is under k2\n',
    );
    const afterRotation = createFieldEncryption(parseKeyring(`k2:${k2}`));
    const rows = await readSecrets();
    expect(rows).toHaveLength(3);
    for (const row of rows)
      expect(afterRotation.decrypt(row.mfa_secret, mfaSecretColumn.aad(row.id))).toBe(secrets.get(row.id));

    const after = await run(['keys', 'status'], newKeys);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('nothing left to rotate');
    // Output names key ids and counts, never keys or values.
    for (const output of [before.stdout, rotation.stdout, after.stdout]) {
      for (const secret of [k1, k2, blindIndexKey, ...secrets.values()]) expect(output).not.toContain(secret);
    }
  });

  it('exits 1 listing row ids and codes when a value cannot be rotated, and --json carries the report', async () => {
    const [first, second] = await readSecrets();
    const misplaced = createFieldEncryption(parseKeyring(`k1:${k1}`)).encrypt(
      'x',
      mfaSecretColumn.aad(second?.id ?? ''),
    );
    await testDb.database.pool.query('update platform.accounts set mfa_secret = $1 where id = $2', [
      misplaced,
      first?.id,
    ]);

    const rotation = await run(['keys', 'rotate', '--json'], newKeys);

    expect(rotation.code).toBe(1);
    expect(JSON.parse(rotation.stdout)).toMatchObject({
      activeKeyId: 'k2',
      outcome: 'completed',
      hasWorkLeft: true,
      columns: [
        {
          table: 'platform.accounts',
          pending: 1,
          result: { rotated: 0, failed: 1, failures: [{ id: first?.id, code: 'crypto.decrypt_failed' }] },
        },
        ...otherColumns.map(({ table }) => ({ table, pending: 0 })),
      ],
    });
    const text = await run(['keys', 'rotate'], newKeys);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`  row ${first?.id}: crypto.decrypt_failed\n`);
    expect(text.stdout).not.toContain(misplaced);
  });

  it('exits 2 naming the missing variable, and no key, when only one of the pair is set in production', async () => {
    const result = await run(['keys', 'status'], {
      KEEL_ENCRYPTION_KEYS: `k1:${k1}`,
      NODE_ENV: 'production',
    });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('keys status could not run');
    expect(result.stderr).toContain('KEEL_BLIND_INDEX_KEY: must be set because KEEL_ENCRYPTION_KEYS is');
    expect(result.stderr).not.toContain(k1);
  });
});

describe('keel events dead-letters and events replay', () => {
  const subscriber = 'tests.cli-dead-letters';
  let eventId: string;

  beforeAll(async () => {
    const bus = createEventBus({
      database: testDb.database,
      logger: createLogger({ level: 'silent' }),
      clock: systemClock,
      pollIntervalMs: 1000,
      batchSize: 10,
      isListening: false,
      subscriptions: [
        {
          name: subscriber,
          eventTypes: ['tests.cli_checked.v1'],
          isOrderedPerAggregate: false,
          maxAttempts: 1,
          handler: async () => {
            throw new AppError('invalid', 'tests.rejected', 'this handler refuses everything');
          },
        },
      ],
    });
    await bus.register();
    const envelope = await testDb.database.typed<unknown>().transaction((trx) =>
      emitEvent(trx, {
        type: 'tests.cli_checked.v1',
        aggregateType: 'test',
        aggregateId: 'cli',
        payload: {},
      }),
    );
    eventId = envelope.id;
    await bus.runOnce();
  });

  it('exits 1 listing the dead letter with its subscriber, event and error code, without the payload', async () => {
    const result = await run(['events', 'dead-letters', `--subscriber=${subscriber}`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `${subscriber} ${eventId} tests.cli_checked.v1 test/cli attempts=1 error=tests.rejected`,
    );
  });

  it('prints the dead letters as JSON with --json', async () => {
    const result = await run(['events', 'dead-letters', `--subscriber=${subscriber}`, '--json']);
    expect(JSON.parse(result.stdout)).toEqual([
      expect.objectContaining({
        subscriber,
        eventId,
        eventType: 'tests.cli_checked.v1',
        lastErrorCode: 'tests.rejected',
      }),
    ]);
  });

  it('replays a dead letter once: exit 0, then the list is empty and a second replay exits 1', async () => {
    expect((await run(['events', 'replay', subscriber, eventId])).code).toBe(0);
    const after = await run(['events', 'dead-letters', `--subscriber=${subscriber}`]);
    expect(after).toMatchObject({ code: 0, stdout: 'no dead-lettered deliveries\n' });
    const again = await run(['events', 'replay', subscriber, eventId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no dead letter of ${eventId}`);
  });

  it('exits 2 with the usage when the event id is missing', async () => {
    const result = await run(['events', 'replay', subscriber]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: keel');
  });
});
