import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';
import { ceilingScenarios } from './ceiling-scenarios.ts';
import { type BenchCredentials, benchUser } from './credentials.ts';
import { orderScenarios } from './orders-scenarios.ts';
import { telemedicineScenarios } from './telemedicine-scenarios.ts';

export type PreparedScenario = {
  /** The request generator handed to autocannon; called once per request. */
  requests: autocannon.Request[];
  /** Counters the scenario kept while running, reported alongside the numbers (e.g. replays seen, event lag). */
  observations: () => Record<string, number> | Promise<Record<string, number>>;
};

export type ScenarioContext = {
  /** A service API key (user-metadata read+write), created once per run through the admin API. */
  credentials: () => Promise<BenchCredentials>;
  adminFile: string;
};

export type Scenario = {
  name: string;
  description: string;
  /**
   * Which server: Keel as shipped, or `keel-unauthenticated` (bench/unauthenticated-server.ts), the same
   * app with user-metadata's routes made public, to measure what authentication costs; or `ceiling`
   * (bench/ceiling-server.ts), each route's database work alone, the best any implementation can do here.
   */
  server?: 'keel' | 'keel-unauthenticated' | 'ceiling';
  /**
   * Paces the load to this many requests per second across all connections (a sustained-rate run)
   * instead of sending as fast as the server answers.
   */
  overallRate?: number;
  /**
   * Runs the simulated payment gateway (bench/payment-gateway.ts) as a process of its own and points Keel
   * at it (PAYMENTS_GATEWAY_URL), as production points at a real gateway.
   */
  hasPaymentGateway?: boolean;
  /** Seeds what the scenario needs through the public API and returns its request generator. */
  prepare: (baseUrl: string, context: ScenarioContext) => Promise<PreparedScenario>;
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
    'POST /user with a service API key, a unique email and a unique Idempotency-Key on every request: claims ' +
    'the key, then inserts the user and completes the key in one transaction.',
  async prepare(_baseUrl, context) {
    const { serviceKey } = await context.credentials();
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
              headers: {
                ...JSON_HEADERS,
                authorization: serviceKey,
                'idempotency-key': `bench-${prefix}-${sequence}`,
              },
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

function userMetadataGetRequests(ids: string[], authorization: string | undefined): autocannon.Request[] {
  const headers = authorization
    ? { accept: 'application/json', authorization }
    : { accept: 'application/json' };
  return [
    {
      method: 'GET',
      path: `/user/${ids[0]}`,
      setupRequest: (request) => ({
        ...request,
        method: 'GET',
        path: `/user/${ids[Math.floor(Math.random() * ids.length)]}`,
        headers,
      }),
    },
  ];
}

const userMetadataGet: Scenario = {
  name: 'user-metadata-get',
  description:
    `Seeds ${SEEDED_USERS} users through POST /user, then GET /user/{id} over ids chosen uniformly at random, ` +
    'as a signed-in user with user-metadata:reader (EdDSA access token + session check on every request).',
  async prepare(baseUrl, context) {
    const { serviceKey } = await context.credentials();
    const ids = await seedUsers(baseUrl, SEEDED_USERS, serviceKey);
    const reader = { email: `bench-reader-${runPrefix()}@example.com`, password: BENCH_PASSWORD };
    await benchUser(baseUrl, context.adminFile, { ...reader, roles: ['user-metadata:reader'] });
    const token = await loginAccessToken(baseUrl, reader);
    return {
      requests: userMetadataGetRequests(ids, `Bearer ${token}`),
      observations: () => ({ seededUsers: ids.length }),
    };
  },
};

const userMetadataGetUnauthenticated: Scenario = {
  name: 'user-metadata-get-unauthenticated',
  description:
    'user-metadata-get against the same app with its routes made public (bench/unauthenticated-server.ts): ' +
    'the baseline that shows what authentication costs.',
  server: 'keel-unauthenticated',
  async prepare(baseUrl) {
    const ids = await seedUsers(baseUrl, SEEDED_USERS, undefined);
    return {
      requests: userMetadataGetRequests(ids, undefined),
      observations: () => ({ seededUsers: ids.length }),
    };
  },
};

const LOGIN_ACCOUNTS = 50;

const authLogin: Scenario = {
  name: 'auth-login',
  description:
    `Registers ${LOGIN_ACCOUNTS} accounts, then POST /auth/login over them in turn: one argon2id verification ` +
    '(m=19 MiB, t=2), a session, a refresh token and an audit event per request. Limits are lifted.',
  async prepare(baseUrl) {
    const prefix = runPrefix();
    const accounts = Array.from({ length: LOGIN_ACCOUNTS }, (_, index) => ({
      email: `bench-login-${prefix}-${index}@example.com`,
      password: BENCH_PASSWORD,
    }));
    for (const account of accounts) {
      const response = await fetch(`${baseUrl}/auth/register`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: JSON.stringify(account),
      });
      if (response.status !== 201) throw new Error(`registering ${account.email} failed: ${response.status}`);
    }
    let sequence = 0;
    let failures = 0;
    return {
      requests: [
        {
          method: 'POST',
          path: '/auth/login',
          setupRequest: (request) => {
            sequence += 1;
            return {
              ...request,
              method: 'POST',
              path: '/auth/login',
              headers: JSON_HEADERS,
              body: JSON.stringify(accounts[sequence % accounts.length]),
            };
          },
          onResponse: (status) => {
            if (status !== 200) failures += 1;
          },
        },
      ],
      observations: () => ({ accounts: accounts.length, loginFailures: failures }),
    };
  },
};

const BENCH_PASSWORD = 'bench password that is long enough';

async function loginAccessToken(
  baseUrl: string,
  account: { email: string; password: string },
): Promise<string> {
  const response = await fetch(`${baseUrl}/auth/login`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(account),
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || body.access_token === undefined)
    throw new Error(`login failed: ${response.status}`);
  return body.access_token;
}

export const scenarios: readonly Scenario[] = [
  userMetadataCreate,
  userMetadataGet,
  userMetadataGetUnauthenticated,
  authLogin,
  ...orderScenarios,
  ...telemedicineScenarios,
  ...ceilingScenarios,
];

async function seedUsers(
  baseUrl: string,
  count: number,
  authorization: string | undefined,
): Promise<string[]> {
  const prefix = runPrefix();
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const sequence = next;
      const response = await fetch(`${baseUrl}/user`, {
        method: 'POST',
        headers: authorization ? { ...JSON_HEADERS, authorization } : JSON_HEADERS,
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
