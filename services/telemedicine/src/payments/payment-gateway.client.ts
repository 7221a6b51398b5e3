import { isAppError } from '@keel/platform/errors';
import type { Logger } from '@keel/platform/observability';
import { createResilience, isBrokenCircuit, type ResilienceSettings } from '@keel/platform/resilience';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { gatewayRefused, gatewayUnavailable } from './payment.errors.ts';
import type {
  CreateIntentInput,
  GatewayRefund,
  PaymentIntent,
  PaymentIntentStatus,
  PaymentProvider,
  RefundInput,
} from './payment-provider.ts';

export type PaymentGatewayClientOptions = {
  /** The API root, e.g. `https://gateway.example/` (paths start with `v1/`). */
  baseUrl: string;
  apiKey: string;
  /** Per attempt, connection to the last byte of the body. */
  timeoutMs: number;
  fetch: typeof fetch;
  logger: Logger;
  /** Retry and breaker tuning; tests shorten the delays. */
  resilience?: Partial<Omit<ResilienceSettings, 'isTransient' | 'isOutage' | 'onStateChange' | 'onRetry'>>;
};

type TransientReason = 'timeout' | 'network' | 'rate_limited' | 'server_error';

/** A failure another attempt may not meet: retried, and (but for 429) counted by the breaker. */
class TransientGatewayFailure extends Error {
  readonly reason: TransientReason;
  readonly statusCode: number | null;
  constructor(reason: TransientReason, statusCode: number | null) {
    super(statusCode === null ? reason : `${reason} (status ${statusCode})`);
    this.reason = reason;
    this.statusCode = statusCode;
  }
}

/** The gateway answered 4xx: the same request would be refused again. */
class GatewayRefusal extends Error {
  readonly statusCode: number;
  readonly gatewayCode: string | null;
  constructor(statusCode: number, gatewayCode: string | null) {
    super(`refused with status ${statusCode}`);
    this.statusCode = statusCode;
    this.gatewayCode = gatewayCode;
  }
}

/** A 2xx we cannot read, or a redirect: a bug on one side; retrying would not fix it. */
class UnexpectedGatewayResponse extends Error {}

const IntentBody = Type.Object({
  id: Type.String({ minLength: 1 }),
  status: Type.String(),
  amount: Type.Integer({ minimum: 0 }),
  currency: Type.String({ pattern: '^[A-Za-z]{3}$' }),
  client_secret: Type.String({ minLength: 1 }),
});
const RefundBody = Type.Object({
  id: Type.String({ minLength: 1 }),
  payment_intent: Type.String({ minLength: 1 }),
  status: Type.String(),
  amount: Type.Integer({ minimum: 1 }),
});
const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String() }) });
const checkIntent = Compile(IntentBody);
const checkRefund = Compile(RefundBody);
const checkError = Compile(ErrorBody);

/** The gateway's vocabulary, Stripe's included, onto the seam's. */
function toIntentStatus(status: string): PaymentIntentStatus {
  switch (status) {
    case 'requires_payment':
    case 'requires_payment_method':
    case 'requires_confirmation':
    case 'requires_action':
      return 'requires_payment';
    case 'processing':
      return 'processing';
    case 'succeeded':
      return 'succeeded';
    case 'canceled':
    case 'cancelled':
      return 'cancelled';
    case 'failed':
      return 'failed';
    default:
      throw new UnexpectedGatewayResponse(`unknown payment intent status ${status}`);
  }
}

function toRefundStatus(status: string): GatewayRefund['status'] {
  switch (status) {
    case 'pending':
    case 'requires_action':
      return 'pending';
    case 'succeeded':
      return 'succeeded';
    case 'failed':
    case 'canceled':
      return 'failed';
    default:
      throw new UnexpectedGatewayResponse(`unknown refund status ${status}`);
  }
}

function toPaymentIntent(body: unknown): PaymentIntent {
  if (!checkIntent.Check(body)) throw new UnexpectedGatewayResponse('not a payment intent');
  const intent = body;
  return {
    id: intent.id,
    status: toIntentStatus(intent.status),
    amountMinor: intent.amount,
    currency: intent.currency.toUpperCase(),
    clientSecret: intent.client_secret,
  };
}

function toGatewayRefund(body: unknown): GatewayRefund {
  if (!checkRefund.Check(body)) throw new UnexpectedGatewayResponse('not a refund');
  const refund = body;
  return {
    id: refund.id,
    intentId: refund.payment_intent,
    status: toRefundStatus(refund.status),
    amountMinor: refund.amount,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isTimeout(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/**
 * The production `PaymentProvider`: the gateway's HTTP API. Each call sends
 * the caller's idempotency key (so a retry, ours or the caller's, never pays
 * or refunds twice), is bounded by `timeoutMs` per attempt, and is retried on
 * network errors, timeouts, 408, 429 and 5xx with exponential backoff and
 * jitter, behind a breaker that fails calls fast after consecutive outages.
 * The API key and client secrets are never logged.
 *
 * @example
 * const provider = createPaymentGatewayClient({ baseUrl, apiKey, timeoutMs: 5000, fetch, logger });
 * const intent = await provider.createIntent({ amountMinor: 5000, currency: 'EUR', idempotencyKey, metadata });
 */
export function createPaymentGatewayClient(options: PaymentGatewayClientOptions): PaymentProvider {
  const logger = options.logger;
  const root = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  const resilience = createResilience({
    maxAttempts: 3,
    // A call that timed out twice has kept its caller waiting long enough.
    budgetMs: options.timeoutMs * 2,
    initialDelayMs: 100,
    maxDelayMs: 2000,
    breakerThreshold: 5,
    halfOpenAfterMs: 30_000,
    ...options.resilience,
    isTransient: (error) => error instanceof TransientGatewayFailure,
    // Being told to slow down is not the gateway being down.
    isOutage: (error) => error instanceof TransientGatewayFailure && error.reason !== 'rate_limited',
    onStateChange: (state) => logger.warn({ state }, 'payment gateway circuit changed state'),
    onRetry: ({ attempt, delayMs, error }) =>
      logger.warn(
        { attempt, delayMs, reason: error instanceof TransientGatewayFailure ? error.message : 'unknown' },
        'payment gateway call failed; retrying',
      ),
  });

  async function attempt(path: string, body: object, idempotencyKey: string): Promise<unknown> {
    let response: Response;
    let text: string;
    try {
      response = await options.fetch(new URL(path, root), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          'content-type': 'application/json',
          accept: 'application/json',
          'idempotency-key': idempotencyKey,
        },
        body: JSON.stringify(body),
        // A redirect would carry our API key wherever it points.
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      // Read inside the same timeout: a gateway that stalls mid-body is as slow as one that never answers.
      text = await response.text();
    } catch (error) {
      throw new TransientGatewayFailure(isTimeout(error) ? 'timeout' : 'network', null);
    }
    const status = response.status;
    if (status >= 200 && status < 300) return parseJson(text);
    if (status === 429) throw new TransientGatewayFailure('rate_limited', status);
    if (status === 408 || status >= 500) throw new TransientGatewayFailure('server_error', status);
    if (status >= 400) {
      const errorBody = parseJson(text);
      const gatewayCode = checkError.Check(errorBody) ? errorBody.error.code : null;
      throw new GatewayRefusal(status, gatewayCode);
    }
    throw new UnexpectedGatewayResponse(`status ${status}`);
  }

  async function call<T>(
    operation: string,
    request: { path: string; body: object; idempotencyKey: string },
    toResult: (body: unknown) => T,
  ): Promise<T> {
    try {
      const body = await resilience.execute(() =>
        attempt(request.path, request.body, request.idempotencyKey),
      );
      return toResult(body);
    } catch (error) {
      if (isAppError(error)) throw error;
      if (error instanceof GatewayRefusal) {
        // 401/403 mean our credentials are wrong: an operator's problem, not the payer's.
        const level = error.statusCode === 401 || error.statusCode === 403 ? 'error' : 'info';
        logger[level](
          { operation, statusCode: error.statusCode, gatewayCode: error.gatewayCode },
          'payment gateway refused a call',
        );
        throw gatewayRefused(operation, error.statusCode, error.gatewayCode);
      }
      if (error instanceof TransientGatewayFailure) throw gatewayUnavailable(operation, error.message);
      if (isBrokenCircuit(error))
        throw gatewayUnavailable(operation, 'circuit open', resilience.retryAfterSeconds());
      if (error instanceof UnexpectedGatewayResponse) {
        logger.error({ operation, problem: error.message }, 'payment gateway answered unexpectedly');
        throw gatewayUnavailable(operation, 'unexpected response');
      }
      throw error;
    }
  }

  return {
    name: 'gateway',
    createIntent(input: CreateIntentInput) {
      return call(
        'create a payment intent',
        {
          path: 'v1/payment_intents',
          body: {
            amount: input.amountMinor,
            currency: input.currency.toLowerCase(),
            metadata: input.metadata,
          },
          idempotencyKey: input.idempotencyKey,
        },
        toPaymentIntent,
      );
    },
    cancelIntent(intentId, { idempotencyKey }) {
      return call(
        'cancel a payment intent',
        { path: `v1/payment_intents/${encodeURIComponent(intentId)}/cancel`, body: {}, idempotencyKey },
        toPaymentIntent,
      );
    },
    refund(input: RefundInput) {
      return call(
        'refund a payment',
        {
          path: 'v1/refunds',
          body: { payment_intent: input.intentId, amount: input.amountMinor, reason: input.reason },
          idempotencyKey: input.idempotencyKey,
        },
        toGatewayRefund,
      );
    },
  };
}
