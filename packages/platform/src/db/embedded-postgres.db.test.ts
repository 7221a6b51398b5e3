import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/index.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './index.ts';

let dataDir: string;
let embedded: EmbeddedDatabase | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'keel-embedded-'));
  // As root, Postgres runs as the `postgres` OS user, which must reach the directory.
  await chmod(dataDir, 0o755);
});

afterAll(async () => {
  await embedded?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('startEmbeddedPostgres', () => {
  it('initialises a fresh data directory, serves queries and is adopted by a second start', async () => {
    const logger = createLogger({ level: 'silent' });
    embedded = await startEmbeddedPostgres({ dataDir, logger });

    const client = new pg.Client({ connectionString: embedded.url });
    await client.connect();
    try {
      const result = await client.query<{ answer: number; database: string }>(
        'select 1 as answer, current_database() as database',
      );
      expect(result.rows).toEqual([{ answer: 1, database: 'keel' }]);
    } finally {
      await client.end();
    }

    // A process restarted after a crash finds the server still running and reuses it.
    const again = await startEmbeddedPostgres({ dataDir, logger });
    expect(again.url).toBe(embedded.url);
  }, 60_000);
});
