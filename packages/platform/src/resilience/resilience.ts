import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
} from 'cockatiel';

export type BreakerState = 'closed' | 'open' | 'half_open';

export type ResilienceSettings = {
  /** Total tries, the first included. */
  maxAttempts: number;
  /** No retry starts after this many milliseconds since the first try. */
  budgetMs: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Consecutive failures that open the breaker. */
  breakerThreshold: number;
  /** How long the breaker stays open before one probe is let through. */
  halfOpenAfterMs: number;
  /** Safe to try again: the operation failed before it could have taken effect, or was rolled back. */
  isTransient: (error: unknown) => boolean;
  /** Says the dependency itself is unhealthy; only these count towards opening the breaker. */
  isOutage: (error: unknown) => boolean;
  onStateChange?: (state: BreakerState) => void;
  onRetry?: (details: { attempt: number; delayMs: number; error: unknown }) => void;
};

export type Resilience = {
  execute<T>(work: () => Promise<T>): Promise<T>;
  state(): BreakerState;
  /** Seconds until the breaker lets a probe through; 0 when closed. */
  retryAfterSeconds(): number;
};

/**
 * Retry with exponential backoff and decorrelated jitter inside a time budget,
 * around a consecutive-failure circuit breaker.
 *
 * The breaker sits inside the retry, so every attempt is counted and an open
 * breaker (BrokenCircuitError, never transient) ends the retries at once:
 * callers fail fast instead of queueing behind a dead dependency.
 *
 * @example
 * const resilience = createResilience({ ...settings, isTransient, isOutage });
 * await resilience.execute(() => pool.query('select 1'));
 */
export function createResilience(settings: ResilienceSettings): Resilience {
  const breaker = circuitBreaker(handleWhen(settings.isOutage), {
    halfOpenAfter: settings.halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(settings.breakerThreshold),
  });
  let openedAt = 0;
  breaker.onStateChange((state) => {
    const name = toBreakerState(state);
    if (name === 'open') openedAt = Date.now();
    settings.onStateChange?.(name);
  });
  const backoff = new ExponentialBackoff({
    initialDelay: settings.initialDelayMs,
    maxDelay: settings.maxDelayMs,
  });

  return {
    execute<T>(work: () => Promise<T>): Promise<T> {
      const startedAt = Date.now();
      // A policy per call: the budget predicate needs this call's start time.
      // Policies are plain objects; the shared state lives in the breaker.
      const policy = retry(
        handleWhen((error) => settings.isTransient(error) && Date.now() - startedAt < settings.budgetMs),
        { maxAttempts: settings.maxAttempts - 1, backoff },
      );
      if (settings.onRetry) {
        const onRetry = settings.onRetry;
        policy.onRetry((event) => {
          onRetry({
            attempt: event.attempt,
            delayMs: event.delay,
            error: 'error' in event ? event.error : undefined,
          });
        });
      }
      return policy.execute(() => breaker.execute(work));
    },
    state() {
      const state = toBreakerState(breaker.state);
      // cockatiel half-opens only when a call arrives. Report what the next
      // call will meet, or readiness would stay failing on an instance that a
      // load balancer, seeing it unready, never sends that call to.
      if (breaker.state === CircuitState.Open && Date.now() - openedAt >= settings.halfOpenAfterMs) {
        return 'half_open';
      }
      return state;
    },
    retryAfterSeconds() {
      if (breaker.state === CircuitState.Closed) return 0;
      const remainingMs = openedAt + settings.halfOpenAfterMs - Date.now();
      return Math.max(1, Math.ceil(remainingMs / 1000));
    },
  };
}

function toBreakerState(state: CircuitState): BreakerState {
  switch (state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half_open';
    case CircuitState.Open:
    case CircuitState.Isolated:
      return 'open';
  }
}

export function isBrokenCircuit(error: unknown): boolean {
  return error instanceof BrokenCircuitError;
}
