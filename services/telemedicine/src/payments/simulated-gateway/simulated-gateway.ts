import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '@keel/platform/module';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { GATEWAY_SIGNATURE_HEADER, signGatewayPayload } from '../gateway-signature.ts';
import {
  createGatewayLedger,
  GATEWAY_PAYMENT_METHODS,
  type GatewayEvent,
  type GatewayIntent,
  type GatewayPaymentMethod,
  GatewayRequestError,
} from './gateway-ledger.ts';

// A card gateway in a box, for tests and `npm start`: the same HTTP API the
// production adapter speaks (Bearer API key, Idempotency-Key on every POST,
// Stripe-like JSON), events delivered as signed webhooks with retries, and
// knobs to inject the faults a real gateway has on a bad day.

export type WebhookDeliver = (
  body: string,
  headers: Record<string, string>,
) => Promise<{ statusCode: number }>;

export type SimulatedGatewayOptions = {
  apiKey: string;
  webhookSecret: string;
  clock: Clock;
  deliver: WebhookDeliver;
  /** 'auto': each event is delivered as soon as it happens; 'manual': only when a test says so. */
  webhookMode: 'auto' | 'manual';
  /** 0 (the default) lets the kernel pick. */
  port?: number;
  /** Tries per delivery, the first included (default 5). */
  deliveryAttempts?: number;
  /** Wait before the first redelivery, doubling after each (default 20 ms). */
  deliveryBackoffMs?: number;
};

/** An event with how its delivery went. */
export type SimulatedEvent = GatewayEvent & {
  attempts: number;
  lastStatusCode: number | null;
  isDelivered: boolean;
};

/** The last attempt's status (null: `deliver` threw) and how many attempts this delivery took. */
export type DeliveryResult = { eventId: string; statusCode: number | null; attempts: number };

export type SimulatedGateway = {
  app: FastifyInstance;
  /** Starts listening on 127.0.0.1; resolves the base URL (the same one on a second call). */
  listen(): Promise<string>;
  /** Stops redeliveries, waits for deliveries in flight, closes the server. */
  close(): Promise<void>;
  /** The payer's step, without HTTP (a real payer's client confirms with the client secret). */
  confirmIntent(intentId: string, paymentMethod: GatewayPaymentMethod): Promise<GatewayIntent>;
  findIntent(intentId: string): GatewayIntent | undefined;
  listEvents(): SimulatedEvent[];
  /** Delivers one event (again), with retries; for duplicate-delivery tests. */
  deliverEvent(eventId: string): Promise<DeliveryResult>;
  /** Delivers, one after the other, every event not delivered yet; 'reverse' tests out-of-order arrival. */
  deliverPending(order?: 'created' | 'reverse'): Promise<DeliveryResult[]>;
  /** The next `count` API requests answer `statusCode` without doing anything. */
  failNextRequests(count: number, statusCode: number): void;
  /** The next `count` API requests are carried out, then answered `ms` later. */
  delayNextRequests(count: number, ms: number): void;
  /** Resolves when every delivery started so far has finished. */
  idle(): Promise<void>;
};

const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.String({ maxLength: 500 }), {
  maxProperties: 50,
});
const CreateIntentBody = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: 99_999_999 }),
    currency: Type.String({ pattern: '^[A-Za-z]{3}$' }),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
const CancelIntentBody = Type.Object(
  { cancellation_reason: Type.Optional(Type.String({ maxLength: 64 })) },
  { additionalProperties: false },
);
const ConfirmIntentBody = Type.Object(
  {
    payment_method: Type.Union(GATEWAY_PAYMENT_METHODS.map((method) => Type.Literal(method))),
    client_secret: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
const CreateRefundBody = Type.Object(
  {
    payment_intent: Type.String({ minLength: 1, maxLength: 100 }),
    amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 99_999_999 })),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

function parseBody<T>(
  checker: { Check(value: unknown): value is T; Errors(value: unknown): { instancePath: string }[] },
  body: unknown,
): T {
  if (checker.Check(body)) return body;
  const param = checker.Errors(body)[0]?.instancePath.replace(/^\//, '') || undefined;
  throw new GatewayRequestError(
    400,
    'invalid_request_error',
    'parameter_invalid',
    `Invalid request${param === undefined ? '' : `: ${param}`}`,
    param === undefined ? {} : { param },
  );
}

const checkers = {
  createIntent: Compile(CreateIntentBody),
  cancelIntent: Compile(CancelIntentBody),
  confirmIntent: Compile(ConfirmIntentBody),
  createRefund: Compile(CreateRefundBody),
};

/** Key order must not make a retried request look different. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

function isSameSecret(received: string, expected: string): boolean {
  // Hashing first gives equal lengths, so the comparison leaks nothing about either.
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(received), digest(expected));
}

function withoutSecret(intent: GatewayIntent): Omit<GatewayIntent, 'client_secret'> {
  const { client_secret: _secret, ...rest } = intent;
  return rest;
}

type Outcome = { statusCode: number; body: unknown };
type StoredOutcome = Outcome & { fingerprint: string };
type EventRecord = {
  event: GatewayEvent;
  body: string;
  attempts: number;
  lastStatusCode: number | null;
  isDelivered: boolean;
};

const isSuccess = (statusCode: number | null) => statusCode !== null && statusCode >= 200 && statusCode < 300;

/**
 * Builds a simulated gateway; it serves nothing until `listen()` (or
 * `app.inject`).
 *
 * @example
 * const gateway = createSimulatedGateway({ apiKey, webhookSecret, clock, deliver, webhookMode: 'auto' });
 * const baseUrl = await gateway.listen();
 */
export function createSimulatedGateway(options: SimulatedGatewayOptions): SimulatedGateway {
  const deliveryAttempts = options.deliveryAttempts ?? 5;
  const deliveryBackoffMs = options.deliveryBackoffMs ?? 20;
  const closing = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const records: EventRecord[] = [];
  const recordsById = new Map<string, EventRecord>();
  const storedOutcomes = new Map<string, StoredOutcome>();
  const faults = { failures: 0, failureStatus: 500, delays: 0, delayMs: 0 };
  const delayedRequests = new WeakMap<FastifyRequest, number>();
  let baseUrl: string | undefined;
  let closed: Promise<void> | undefined;

  function track<T>(promise: Promise<T>): Promise<T> {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }

  async function attemptDelivery(record: EventRecord): Promise<number | null> {
    const timestamp = Math.floor(options.clock.now().getTime() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'simulated-gateway/1',
      // Signed afresh on every attempt: the timestamp is the attempt's.
      [GATEWAY_SIGNATURE_HEADER]: signGatewayPayload(options.webhookSecret, timestamp, record.body),
    };
    record.attempts += 1;
    try {
      const { statusCode } = await options.deliver(record.body, headers);
      record.lastStatusCode = statusCode;
      if (isSuccess(statusCode)) record.isDelivered = true;
    } catch {
      record.lastStatusCode = null;
    }
    return record.lastStatusCode;
  }

  async function deliverWithRetries(record: EventRecord): Promise<DeliveryResult> {
    let statusCode: number | null = null;
    let attempts = 0;
    for (let attempt = 0; attempt < deliveryAttempts && !closing.signal.aborted; attempt += 1) {
      if (attempt > 0) {
        await sleep(deliveryBackoffMs * 2 ** (attempt - 1), undefined, { signal: closing.signal }).catch(
          () => undefined,
        );
        if (closing.signal.aborted) break;
      }
      statusCode = await attemptDelivery(record);
      attempts += 1;
      if (isSuccess(statusCode)) break;
    }
    return { eventId: record.event.id, statusCode, attempts };
  }

  const ledger = createGatewayLedger({
    clock: options.clock,
    onEvent: (event) => {
      const record: EventRecord = {
        event,
        body: JSON.stringify(event),
        attempts: 0,
        lastStatusCode: null,
        isDelivered: false,
      };
      records.push(record);
      recordsById.set(event.id, record);
      if (options.webhookMode === 'auto')
        void track(
          // After the current request has answered, as a real gateway's queue would.
          new Promise((resolve) => setImmediate(resolve)).then(() => deliverWithRetries(record)),
        );
    },
  });

  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, forceCloseConnections: true });

  app.addHook('onRequest', async (request, reply) => {
    if (faults.delays > 0) {
      faults.delays -= 1;
      delayedRequests.set(request, faults.delayMs);
    }
    if (faults.failures > 0) {
      faults.failures -= 1;
      return reply.code(faults.failureStatus).send({
        error: { type: 'api_error', code: 'simulated_failure', message: 'Simulated gateway failure' },
      });
    }
  });
  app.addHook('onSend', async (request) => {
    const delayMs = delayedRequests.get(request);
    if (delayMs !== undefined)
      await sleep(delayMs, undefined, { signal: closing.signal }).catch(() => undefined);
  });
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof GatewayRequestError) return reply.code(error.statusCode).send(error.toBody());
    const statusCode = error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
    return reply.code(statusCode).send({
      error:
        statusCode < 500
          ? { type: 'invalid_request_error', code: 'parameter_invalid', message: error.message }
          : { type: 'api_error', code: 'internal_error', message: 'An internal error occurred' },
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        type: 'invalid_request_error',
        code: 'resource_missing',
        message: `Unrecognized request URL (${request.method}: ${request.url})`,
      },
    }),
  );

  function isApiKeyValid(request: FastifyRequest): boolean {
    const header = request.headers.authorization;
    return header?.startsWith('Bearer ') === true && isSameSecret(header.slice(7), options.apiKey);
  }

  function authenticate(request: FastifyRequest): void {
    if (!isApiKeyValid(request))
      throw new GatewayRequestError(
        401,
        'authentication_error',
        'invalid_api_key',
        'Invalid API Key provided',
      );
  }

  /**
   * Runs a POST once per Idempotency-Key: a retry with the same key and body
   * gets the stored answer, one with a different body a 409.
   */
  function once(request: FastifyRequest, reply: FastifyReply, operation: () => Outcome): FastifyReply {
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || key.length === 0 || key.length > 255)
      throw new GatewayRequestError(
        400,
        'invalid_request_error',
        'idempotency_key_missing',
        'Every POST needs an Idempotency-Key header of 1 to 255 characters',
      );
    const fingerprint = `${request.method} ${request.url} ${canonicalJson(request.body ?? null)}`;
    const stored = storedOutcomes.get(key);
    if (stored !== undefined) {
      if (stored.fingerprint !== fingerprint)
        throw new GatewayRequestError(
          409,
          'idempotency_error',
          'idempotency_key_in_use',
          'Keys for idempotent requests can only be used with the same parameters they were first used with',
        );
      return reply.code(stored.statusCode).header('idempotent-replayed', 'true').send(stored.body);
    }
    let outcome: Outcome;
    try {
      outcome = operation();
    } catch (error) {
      if (!(error instanceof GatewayRequestError)) throw error;
      outcome = { statusCode: error.statusCode, body: error.toBody() };
    }
    storedOutcomes.set(key, { ...outcome, fingerprint });
    return reply.code(outcome.statusCode).send(outcome.body);
  }

  app.post('/v1/payment_intents', async (request, reply) => {
    authenticate(request);
    const body = parseBody(checkers.createIntent, request.body);
    return once(request, reply, () => ({
      statusCode: 200,
      body: ledger.createIntent({
        amount: body.amount,
        currency: body.currency,
        metadata: body.metadata ?? {},
      }),
    }));
  });

  app.get<{ Params: { id: string } }>('/v1/payment_intents/:id', async (request) => {
    authenticate(request);
    return ledger.getIntent(request.params.id);
  });

  app.post<{ Params: { id: string } }>('/v1/payment_intents/:id/cancel', async (request, reply) => {
    authenticate(request);
    parseBody(checkers.cancelIntent, request.body ?? {});
    return once(request, reply, () => ({ statusCode: 200, body: ledger.cancelIntent(request.params.id) }));
  });

  // The payer's call: with the API key, or (as a payer's browser would) with the intent's client secret.
  app.post<{ Params: { id: string } }>('/v1/payment_intents/:id/confirm', async (request, reply) => {
    if (!isApiKeyValid(request)) {
      const clientSecret = (request.body as { client_secret?: unknown } | undefined)?.client_secret;
      const intent = ledger.findIntent(request.params.id);
      if (
        typeof clientSecret !== 'string' ||
        intent === undefined ||
        !isSameSecret(clientSecret, intent.client_secret)
      )
        authenticate(request);
    }
    const body = parseBody(checkers.confirmIntent, request.body);
    return once(request, reply, () => {
      const intent = ledger.confirmIntent(request.params.id, body.payment_method);
      if (intent.last_payment_error === null) return { statusCode: 200, body: intent };
      return {
        statusCode: 402,
        body: {
          error: {
            type: 'card_error',
            code: intent.last_payment_error.code,
            message: intent.last_payment_error.message,
            payment_intent: withoutSecret(intent),
          },
        },
      };
    });
  });

  app.post('/v1/refunds', async (request, reply) => {
    authenticate(request);
    const body = parseBody(checkers.createRefund, request.body);
    return once(request, reply, () => ({
      statusCode: 200,
      body: ledger.refund({
        paymentIntent: body.payment_intent,
        amount: body.amount,
        reason: body.reason ?? null,
        metadata: body.metadata ?? {},
      }),
    }));
  });

  app.get<{ Params: { id: string } }>('/v1/refunds/:id', async (request) => {
    authenticate(request);
    return ledger.getRefund(request.params.id);
  });

  function recordOf(eventId: string): EventRecord {
    const record = recordsById.get(eventId);
    if (record === undefined) throw new Error(`The simulated gateway has no event ${eventId}`);
    return record;
  }

  return {
    app,
    async listen() {
      if (baseUrl !== undefined) return baseUrl;
      await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
      const address = app.server.address() as AddressInfo;
      baseUrl = `http://127.0.0.1:${address.port}`;
      return baseUrl;
    },
    close() {
      closed ??= (async () => {
        closing.abort();
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        await app.close();
      })();
      return closed;
    },
    async confirmIntent(intentId, paymentMethod) {
      try {
        return ledger.confirmIntent(intentId, paymentMethod);
      } catch (error) {
        if (error instanceof GatewayRequestError)
          throw new Error(`Cannot confirm ${intentId}: ${error.code} (${error.message})`);
        throw error;
      }
    },
    findIntent: (intentId) => ledger.findIntent(intentId),
    listEvents: () =>
      records.map((record) => ({
        ...structuredClone(record.event),
        attempts: record.attempts,
        lastStatusCode: record.lastStatusCode,
        isDelivered: record.isDelivered,
      })),
    deliverEvent: (eventId) => track(deliverWithRetries(recordOf(eventId))),
    async deliverPending(order = 'created') {
      const pending = records.filter((record) => !record.isDelivered);
      if (order === 'reverse') pending.reverse();
      const results: DeliveryResult[] = [];
      for (const record of pending) results.push(await track(deliverWithRetries(record)));
      return results;
    },
    failNextRequests(count, statusCode) {
      faults.failures = count;
      faults.failureStatus = statusCode;
    },
    delayNextRequests(count, ms) {
      faults.delays = count;
      faults.delayMs = ms;
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
