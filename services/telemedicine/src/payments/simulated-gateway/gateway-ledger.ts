import { randomBytes } from 'node:crypto';
import type { Clock } from '@keel/platform/module';

// The simulated gateway's state and rules, free of HTTP: intents, refunds and
// the events they raise. Shapes follow a Stripe-like card gateway: snake_case
// JSON, amounts in minor units, lower-case currencies, `pi_`/`re_`/`evt_` ids.

export type GatewayPaymentMethod = 'pm_card_ok' | 'pm_card_declined' | 'pm_card_insufficient_funds';
export const GATEWAY_PAYMENT_METHODS: readonly GatewayPaymentMethod[] = [
  'pm_card_ok',
  'pm_card_declined',
  'pm_card_insufficient_funds',
];

export type GatewayIntentStatus = 'requires_payment' | 'processing' | 'succeeded' | 'canceled';

export type GatewayPaymentError = { code: string; message: string };

export type GatewayIntent = {
  id: string;
  object: 'payment_intent';
  status: GatewayIntentStatus;
  amount: number;
  amount_refunded: number;
  currency: string;
  client_secret: string;
  metadata: Record<string, string>;
  last_payment_error: GatewayPaymentError | null;
  created: number;
  canceled_at: number | null;
};

export type GatewayRefund = {
  id: string;
  object: 'refund';
  payment_intent: string;
  amount: number;
  currency: string;
  reason: string | null;
  status: 'succeeded';
  metadata: Record<string, string>;
  created: number;
};

export type GatewayEventType =
  | 'payment_intent.succeeded'
  | 'payment_intent.payment_failed'
  | 'payment_intent.canceled'
  | 'refund.succeeded';

/** An intent as events carry it: never its client secret. */
export type GatewayIntentSnapshot = Omit<GatewayIntent, 'client_secret'>;

export type GatewayEvent = {
  id: string;
  object: 'event';
  type: GatewayEventType;
  created: number;
  data: { object: GatewayIntentSnapshot | GatewayRefund };
};

/** A refusal the API answers with a 4xx: `{ error: { type, code, message } }`. */
export class GatewayRequestError extends Error {
  readonly statusCode: number;
  readonly type: 'invalid_request_error' | 'card_error' | 'authentication_error' | 'idempotency_error';
  readonly code: string;
  readonly extra: Record<string, unknown>;
  constructor(
    statusCode: number,
    type: GatewayRequestError['type'],
    code: string,
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.statusCode = statusCode;
    this.type = type;
    this.code = code;
    this.extra = extra;
  }

  toBody(): { error: Record<string, unknown> } {
    return { error: { type: this.type, code: this.code, message: this.message, ...this.extra } };
  }
}

const DECLINES: Record<Exclude<GatewayPaymentMethod, 'pm_card_ok'>, GatewayPaymentError> = {
  pm_card_declined: { code: 'card_declined', message: 'Your card was declined.' },
  pm_card_insufficient_funds: { code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
};

function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

function missing(kind: string, id: string): GatewayRequestError {
  return new GatewayRequestError(
    404,
    'invalid_request_error',
    'resource_missing',
    `No such ${kind}: '${id}'`,
  );
}

function unexpectedState(intent: GatewayIntent, action: string): GatewayRequestError {
  return new GatewayRequestError(
    400,
    'invalid_request_error',
    'payment_intent_unexpected_state',
    `You cannot ${action} this PaymentIntent because it has a status of ${intent.status}.`,
  );
}

export type GatewayLedger = ReturnType<typeof createGatewayLedger>;

/**
 * Intents, refunds and events in memory. `onEvent` is told of every event
 * right after the state change that raised it.
 */
export function createGatewayLedger(deps: { clock: Clock; onEvent: (event: GatewayEvent) => void }) {
  const intents = new Map<string, GatewayIntent>();
  const refunds = new Map<string, GatewayRefund>();
  const nowSeconds = () => Math.floor(deps.clock.now().getTime() / 1000);

  function emit(type: GatewayEventType, object: GatewayIntent | GatewayRefund): void {
    const snapshot =
      object.object === 'payment_intent'
        ? (({ client_secret: _secret, ...rest }) => rest)(object)
        : { ...object };
    deps.onEvent({
      id: randomId('evt'),
      object: 'event',
      type,
      created: nowSeconds(),
      data: { object: structuredClone(snapshot) },
    });
  }

  function getIntent(id: string): GatewayIntent {
    const intent = intents.get(id);
    if (intent === undefined) throw missing('payment_intent', id);
    return intent;
  }

  return {
    createIntent(input: {
      amount: number;
      currency: string;
      metadata: Record<string, string>;
    }): GatewayIntent {
      const id = randomId('pi');
      const intent: GatewayIntent = {
        id,
        object: 'payment_intent',
        status: 'requires_payment',
        amount: input.amount,
        amount_refunded: 0,
        currency: input.currency.toLowerCase(),
        client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
        metadata: { ...input.metadata },
        last_payment_error: null,
        created: nowSeconds(),
        canceled_at: null,
      };
      intents.set(id, intent);
      return structuredClone(intent);
    },

    findIntent(id: string): GatewayIntent | undefined {
      const intent = intents.get(id);
      return intent === undefined ? undefined : structuredClone(intent);
    },

    getIntent(id: string): GatewayIntent {
      return structuredClone(getIntent(id));
    },

    /** Cancelling a cancelled intent is a no-op that answers the same intent (and raises no second event). */
    cancelIntent(id: string): GatewayIntent {
      const intent = getIntent(id);
      if (intent.status === 'canceled') return structuredClone(intent);
      if (intent.status !== 'requires_payment') throw unexpectedState(intent, 'cancel');
      intent.status = 'canceled';
      intent.canceled_at = nowSeconds();
      emit('payment_intent.canceled', intent);
      return structuredClone(intent);
    },

    /**
     * The payer's step. A decline leaves the intent payable (the payer may try
     * another card) with `last_payment_error` set, and raises `payment_failed`.
     */
    confirmIntent(id: string, paymentMethod: GatewayPaymentMethod): GatewayIntent {
      const intent = getIntent(id);
      if (intent.status !== 'requires_payment') throw unexpectedState(intent, 'confirm');
      if (paymentMethod === 'pm_card_ok') {
        intent.status = 'succeeded';
        intent.last_payment_error = null;
        emit('payment_intent.succeeded', intent);
      } else {
        intent.last_payment_error = { ...DECLINES[paymentMethod] };
        emit('payment_intent.payment_failed', intent);
      }
      return structuredClone(intent);
    },

    /** Partial refunds are allowed; together they never exceed the amount paid. */
    refund(input: {
      paymentIntent: string;
      amount: number | undefined;
      reason: string | null;
      metadata: Record<string, string>;
    }): GatewayRefund {
      const intent = getIntent(input.paymentIntent);
      if (intent.status !== 'succeeded') throw unexpectedState(intent, 'refund');
      const remaining = intent.amount - intent.amount_refunded;
      const amount = input.amount ?? remaining;
      if (amount < 1 || amount > remaining)
        throw new GatewayRequestError(
          400,
          'invalid_request_error',
          'amount_too_large',
          `Refund amount (${amount}) is greater than the unrefunded amount on the PaymentIntent (${remaining}).`,
          { param: 'amount' },
        );
      intent.amount_refunded += amount;
      const refund: GatewayRefund = {
        id: randomId('re'),
        object: 'refund',
        payment_intent: intent.id,
        amount,
        currency: intent.currency,
        reason: input.reason,
        status: 'succeeded',
        // The intent's references, so a refund event finds its payment without a lookup.
        metadata: { ...intent.metadata, ...input.metadata },
        created: nowSeconds(),
      };
      refunds.set(refund.id, refund);
      emit('refund.succeeded', refund);
      return structuredClone(refund);
    },

    getRefund(id: string): GatewayRefund {
      const refund = refunds.get(id);
      if (refund === undefined) throw missing('refund', id);
      return structuredClone(refund);
    },
  };
}
