import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { recordAuditEvent, sealAuditEvents } from '@keel/platform/audit';
import { createTestDatabase, type TestDatabase } from '@keel/platform/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from './cli.ts';

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

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(args, {
    env: { DATABASE_URL: testDb.url, NODE_ENV: 'test' },
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
