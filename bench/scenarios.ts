import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';

export type PreparedScenario = {
  /** The request generator handed to autocannon; called once per request. */
  requests: autocannon.Request[];
  /** Counters the scenario kept while running, reported alongside the numbers (e.g. replays seen). */
  observations: () => Record<string, number>;
};

export type Scenario = {
  name: string;
  description: string;
  /** Seeds what the scenario needs through the public API and returns its request generator. */
  prepare: (baseUrl: string) => Promise<PreparedScenario>;
};

const SEEDED_USERS = 1000;
const SEED_CONCURRENCY = 20;

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

/** A run-unique prefix so emails and keys never collide with an earlier run on the same database. */
function runPrefix(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

function newUserBody(prefix: string, sequence: number): string {
  return JSON.stringify({
    name: `Bench User ${sequence}`,
    email: `bench-${prefix}-${sequence}@example.com`,
    // Every +1 415 555 xxxx number passes the service's libphonenumber check; phones need not be unique.
    phone: `+1415555${String(sequence % 10_000).padStart(4, '0')}`,
  });
}

const userMetadataCreate: Scenario = {
  name: 'user-metadata-create',
  description:
    'POST /user with a unique email and a unique Idempotency-Key on every request: claims the key, then ' +
    'inserts the user and completes the key in one transaction.',
  async prepare() {
    const prefix = runPrefix();
    let sequence = 0;
    let replays = 0;
    return {
      requests: [
        {
          method: 'POST',
          path: '/user',
          setupRequest: (request) => {
            sequence += 1;
            return {
              ...request,
              method: 'POST',
              path: '/user',
              headers: { ...JSON_HEADERS, 'idempotency-key': `bench-${prefix}-${sequence}` },
              body: newUserBody(prefix, sequence),
            };
          },
          // A replay would mean two requests shared a key, and the run would
          // measure cached responses instead of inserts; count them to prove otherwise.
          onResponse: (_status, _body, _context, headers) => {
            if (
              headers?.['idempotent-replayed'] !== undefined ||
              headers?.['Idempotent-Replayed'] !== undefined
            )
              replays += 1;
          },
        },
      ],
      observations: () => ({ requestsGenerated: sequence, idempotentReplays: replays }),
    };
  },
};

const userMetadataGet: Scenario = {
  name: 'user-metadata-get',
  description: `Seeds ${SEEDED_USERS} users through POST /user, then GET /user/{id} over ids chosen uniformly at random.`,
  async prepare(baseUrl) {
    const ids = await seedUsers(baseUrl, SEEDED_USERS);
    return {
      requests: [
        {
          method: 'GET',
          path: `/user/${ids[0]}`,
          setupRequest: (request) => ({
            ...request,
            method: 'GET',
            path: `/user/${ids[Math.floor(Math.random() * ids.length)]}`,
            headers: { accept: 'application/json' },
          }),
        },
      ],
      observations: () => ({ seededUsers: ids.length }),
    };
  },
};

export const scenarios: readonly Scenario[] = [userMetadataCreate, userMetadataGet];

async function seedUsers(baseUrl: string, count: number): Promise<string[]> {
  const prefix = runPrefix();
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const sequence = next;
      const response = await fetch(`${baseUrl}/user`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: newUserBody(`seed-${prefix}`, sequence),
      });
      const body = (await response.json()) as { user_id?: string; code?: string };
      if (response.status !== 201 || typeof body.user_id !== 'string') {
        throw new Error(`seeding user ${sequence} failed: ${response.status} ${body.code ?? ''}`.trim());
      }
      ids.push(body.user_id);
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  return ids;
}
