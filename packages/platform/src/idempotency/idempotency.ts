import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { AnyTransaction, Database } from '../db/database.ts';
import { asPlatformTables } from '../db/database.ts';
import { AppError } from '../errors/index.ts';
import type { KeelApp } from '../http/app.ts';
import type { Logger } from '../observability/logger.ts';
import {
  type ClaimCompletionSql,
  claimCompletionSql,
  deleteClaim,
  deleteExpiredKeys,
  findKey,
  type IdempotencyTables,
  insertClaim,
  type KeyIdentity,
  type StoredResponse,
  updateCompleted,
  updateExpiredClaim,
} from './idempotency.repository.ts';

export type { ClaimCompletionSql, StoredResponse };

/** The right to run a request once for its key; held by the request that inserted it. */
export type IdempotencyClaim = {
  /**
   * Stores the response in the caller's transaction, so the domain write and
   * the completed key commit together or not at all. Throws 409
   * `idempotency.in_progress` (rolling the transaction back) if the claim
   * expired and another request took the key over meanwhile.
   */
  complete(trx: AnyTransaction, response: StoredResponse): Promise<void>;
  /**
   * For a unit of work that is one write statement: SQL fragments to embed as
   * CTEs so the write and the completed key commit in that statement (see
   * `ClaimCompletionSql`). Call `markCompleted` once the statement reports
   * that it wrote; otherwise the response is settled after it is sent.
   */
  completionSql(response: StoredResponse): ClaimCompletionSql;
  markCompleted(): void;
};

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: IdempotencyClaim;
  }
}

export type IdempotencySettings = {
  database: Database;
  lockTimeoutMs: number;
  logger: Logger;
};

const HEADER = 'idempotency-key';
// Printable ASCII only: keys end up in logs and in a btree index.
const VALID_KEY = /^[\x21-\x7e]{1,255}$/;
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Response headers worth replaying; everything else is recomputed per response. */
const REPLAYED_HEADERS = ['location', 'etag', 'content-type'];

type ClaimState = {
  identity: KeyIdentity;
  lockToken: string;
  isCompleted: boolean;
};

const claims = new WeakMap<FastifyRequest, ClaimState>();

/**
 * Idempotency-Key support for routes with `config.idempotency`. Runs after
 * validation (invalid requests never claim a key) and before the handler.
 *
 * - first request with a key: claims it, runs, stores its response;
 * - same key, same body, finished: replays the stored response with `Idempotent-Replayed: true`;
 * - same key, different body: 422 `idempotency.key_reused`;
 * - same key while the first is running: 409 `idempotency.in_progress`;
 * - a 5xx or a 400 (failed validation) releases the claim so the client's retry runs again.
 *
 * @example
 * app.post('/user', { config: { access: 'public', idempotency: { required: false } } }, handler);
 * // in the handler's service transaction:
 * await request.idempotency?.complete(trx, { statusCode: 201, headers: { location }, body });
 */
export function installIdempotency(app: KeelApp, settings: IdempotencySettings): void {
  const db = settings.database.typed<IdempotencyTables>();

  app.addHook('preHandler', async (request, reply) => {
    const options = request.routeOptions.config.idempotency;
    if (options === undefined || !UNSAFE_METHODS.has(request.method)) return;
    const key = readKey(request, options.required);
    if (key === undefined) return;

    const identity: KeyIdentity = {
      scope: request.principal?.id ?? 'anonymous',
      method: request.method,
      route: request.routeOptions.url ?? request.url,
      key,
    };
    const requestHash = hashRequest(request.body);
    const lockToken = randomUUID();
    const outcome = await db.run((kysely) =>
      claimOrInspect(kysely, identity, requestHash, lockToken, settings.lockTimeoutMs),
    );
    switch (outcome.kind) {
      case 'claimed': {
        const state: ClaimState = { identity, lockToken, isCompleted: false };
        claims.set(request, state);
        request.idempotency = {
          async complete(trx, response) {
            const isStored = await updateCompleted(
              asPlatformTables(trx),
              identity,
              lockToken,
              pickReplayed(response),
            );
            if (!isStored) throw idempotencyInProgress();
            state.isCompleted = true;
          },
          completionSql: (response) => claimCompletionSql(identity, lockToken, pickReplayed(response)),
          markCompleted() {
            state.isCompleted = true;
          },
        };
        return;
      }
      case 'replay':
        return replay(reply, outcome.response);
      case 'mismatch':
        throw new AppError(
          'unprocessable',
          'idempotency.key_reused',
          'This Idempotency-Key was already used with a different request body; use a new key for a new request',
        );
      case 'in_progress':
        throw idempotencyInProgress();
    }
  });

  // Responses that did not complete the key inside a transaction: business
  // 4xx (nothing was written, so storing them now is consistent), and 5xx,
  // which release the key for a retry. A 400 releases it too: the request
  // failed validation and never ran, so the corrected retry may reuse the key
  // (Stripe saves no result for parameter validation failures either).
  app.addHook('onSend', async (request, reply, payload) => {
    const state = claims.get(request);
    if (state === undefined || state.isCompleted) return payload;
    state.isCompleted = true;
    try {
      if (reply.statusCode >= 500 || reply.statusCode === 400) {
        await db.run((kysely) => deleteClaim(kysely, state.identity, state.lockToken));
      } else {
        const response: StoredResponse = {
          statusCode: reply.statusCode,
          headers: headersOf(reply),
          body: typeof payload === 'string' && payload.length > 0 ? JSON.parse(payload) : null,
        };
        await db.run((kysely) => updateCompleted(kysely, state.identity, state.lockToken, response));
      }
    } catch (error) {
      // The claim expires after its lock timeout; the response itself is still correct.
      request.log.warn({ err: { message: (error as Error).message } }, 'could not settle idempotency key');
    }
    return payload;
  });
}

type ClaimOutcome =
  | { kind: 'claimed' }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' };

async function claimOrInspect(
  db: Kysely<IdempotencyTables>,
  identity: KeyIdentity,
  requestHash: string,
  lockToken: string,
  lockTimeoutMs: number,
): Promise<ClaimOutcome> {
  // Two rounds: a key released by a failed first request can vanish between our insert and our read.
  for (let round = 0; round < 2; round += 1) {
    if (await insertClaim(db, identity, { requestHash, lockToken, lockTimeoutMs }))
      return { kind: 'claimed' };
    const existing = await findKey(db, identity);
    if (existing === undefined) continue;
    if (existing.requestHash !== requestHash) return { kind: 'mismatch' };
    if (existing.status === 'completed' && existing.response)
      return { kind: 'replay', response: existing.response };
    if (existing.isLockExpired && (await updateExpiredClaim(db, identity, { lockToken, lockTimeoutMs }))) {
      return { kind: 'claimed' };
    }
    return { kind: 'in_progress' };
  }
  return { kind: 'in_progress' };
}

function readKey(request: FastifyRequest, isRequired: boolean): string | undefined {
  const value = request.headers[HEADER];
  if (value === undefined) {
    if (!isRequired) return undefined;
    throw new AppError(
      'invalid',
      'idempotency.key_required',
      'This operation requires an Idempotency-Key header',
      {
        errors: [{ pointer: `/headers/${HEADER}`, detail: 'is required' }],
      },
    );
  }
  if (typeof value !== 'string' || !VALID_KEY.test(value)) {
    throw new AppError(
      'invalid',
      'idempotency.key_invalid',
      'Idempotency-Key must be 1-255 printable ASCII characters',
      {
        errors: [{ pointer: `/headers/${HEADER}`, detail: 'must be 1-255 printable ASCII characters' }],
      },
    );
  }
  return value;
}

/** The key is held by another request (or this request's claim was taken over). */
export function idempotencyInProgress(): AppError {
  return new AppError(
    'conflict',
    'idempotency.in_progress',
    'A request with this Idempotency-Key is still being processed; retry later',
    { retryAfterSeconds: 1 },
  );
}

function replay(reply: FastifyReply, response: StoredResponse): FastifyReply {
  return reply
    .code(response.statusCode)
    .headers(response.headers)
    .header('idempotent-replayed', 'true')
    .send(response.body);
}

function headersOf(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of REPLAYED_HEADERS) {
    const value = reply.getHeader(name);
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

function pickReplayed(response: StoredResponse): StoredResponse {
  const headers: Record<string, string> = {};
  for (const name of REPLAYED_HEADERS) {
    const value = response.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return { ...response, headers };
}

/** A stable hash of the JSON body: key order does not change the request. */
export function hashRequest(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Deletes idempotency records older than the retention window, in batches,
 * every `intervalMs`. Several processes may run it at once: deletes are idempotent.
 */
export function startIdempotencyPurge(
  database: Database,
  options: { retentionHours: number; intervalMs: number; logger: Logger },
): { stop: () => void; runOnce: () => Promise<number> } {
  const db = database.typed<IdempotencyTables>();
  const runOnce = async () => {
    const cutoff = new Date(Date.now() - options.retentionHours * 3_600_000);
    let total = 0;
    for (;;) {
      const deleted = await db.run((kysely) => deleteExpiredKeys(kysely, cutoff, 1000));
      total += deleted;
      if (deleted < 1000) return total;
    }
  };
  const timer = setInterval(() => {
    runOnce()
      .then((deleted) => {
        if (deleted > 0) options.logger.info({ deleted }, 'purged expired idempotency keys');
      })
      .catch((error: unknown) =>
        options.logger.warn({ err: { message: (error as Error).message } }, 'idempotency purge failed'),
      );
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), runOnce };
}
