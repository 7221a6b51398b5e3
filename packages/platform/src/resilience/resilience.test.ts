import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type BreakerState, createResilience, isBrokenCircuit, type ResilienceSettings } from './index.ts';

// Three families of failure, as the database layer sees them.
class OutageError extends Error {
  readonly isOutage = true;
  readonly isTransient = true;
}
class SerializationError extends Error {
  readonly isOutage = false;
  readonly isTransient = true;
}
class ConstraintError extends Error {
  readonly isOutage = false;
  readonly isTransient = false;
}

function buildResilience(overrides: Partial<ResilienceSettings> = {}) {
  const transitions: BreakerState[] = [];
  const retries: number[] = [];
  const resilience = createResilience({
    maxAttempts: 4,
    budgetMs: 10_000,
    initialDelayMs: 1,
    maxDelayMs: 2,
    breakerThreshold: 3,
    halfOpenAfterMs: 30,
    isTransient: (error) => (error as { isTransient?: boolean }).isTransient === true,
    isOutage: (error) => (error as { isOutage?: boolean }).isOutage === true,
    onStateChange: (state) => transitions.push(state),
    onRetry: ({ attempt }) => retries.push(attempt),
    ...overrides,
  });
  return { resilience, transitions, retries };
}

/** Work that throws the given errors in turn, then returns 'done'; counts its calls. */
function scriptedWork(...failures: Error[]) {
  let calls = 0;
  const work = async () => {
    const failure = failures[calls];
    calls += 1;
    if (failure !== undefined) throw failure;
    return 'done';
  };
  return { work, calls: () => calls };
}

function failingWork(makeError: () => Error) {
  let calls = 0;
  const work = async (): Promise<string> => {
    calls += 1;
    throw makeError();
  };
  return { work, calls: () => calls };
}

async function openBreaker(resilience: ReturnType<typeof buildResilience>['resilience'], threshold: number) {
  for (let index = 0; index < threshold; index += 1) {
    await expect(
      resilience.execute(async () => {
        throw new OutageError('connection refused');
      }),
    ).rejects.toBeInstanceOf(OutageError);
  }
}

describe('createResilience retries', () => {
  it('retries a transient failure and returns the result of the attempt that succeeds', async () => {
    const { resilience, retries } = buildResilience();
    const { work, calls } = scriptedWork(new SerializationError('40001'), new OutageError('reset'));

    await expect(resilience.execute(work)).resolves.toBe('done');

    expect(calls()).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('rethrows a non-transient error as it is after a single call', async () => {
    const { resilience, retries } = buildResilience();
    const violation = new ConstraintError('23505');
    const { work, calls } = failingWork(() => violation);

    await expect(resilience.execute(work)).rejects.toBe(violation);

    expect(calls()).toBe(1);
    expect(retries).toEqual([]);
  });

  it('gives up after maxAttempts calls and rethrows the last transient error', async () => {
    const { resilience } = buildResilience({ maxAttempts: 3 });
    let attempt = 0;
    const { work, calls } = failingWork(() => {
      attempt += 1;
      return new SerializationError(`attempt ${attempt}`);
    });

    const error = await resilience.execute(work).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SerializationError);
    expect((error as Error).message).toBe('attempt 3');
    expect(calls()).toBe(3);
  });

  it('starts no retry once the budget is spent', async () => {
    const { resilience } = buildResilience({ maxAttempts: 5, budgetMs: 20 });
    // Each attempt outlasts the whole budget, so the first failure is final.
    const { work, calls } = failingWork(() => new SerializationError('40001'));
    const slowWork = slowly(work);

    await expect(resilience.execute(slowWork)).rejects.toBeInstanceOf(SerializationError);

    expect(calls()).toBe(1);
  });

  it('retries the same slow work up to maxAttempts when the budget allows', async () => {
    const { resilience } = buildResilience({ maxAttempts: 3, budgetMs: 10_000 });
    const { work, calls } = failingWork(() => new SerializationError('40001'));
    const slowWork = slowly(work);

    await expect(resilience.execute(slowWork)).rejects.toBeInstanceOf(SerializationError);

    expect(calls()).toBe(3);
  });
});

describe('createResilience circuit breaker', () => {
  it('opens after breakerThreshold consecutive outage errors', async () => {
    const { resilience, transitions } = buildResilience({ maxAttempts: 1, breakerThreshold: 3 });

    await openBreaker(resilience, 2);
    expect(resilience.state()).toBe('closed');
    expect(resilience.retryAfterSeconds()).toBe(0);

    await openBreaker(resilience, 1);
    expect(resilience.state()).toBe('open');
    expect(transitions).toEqual(['open']);
    expect(resilience.retryAfterSeconds()).toBeGreaterThanOrEqual(1);
  });

  it('fails fast with BrokenCircuitError without calling the work while open', async () => {
    const { resilience } = buildResilience({ maxAttempts: 4, breakerThreshold: 3, halfOpenAfterMs: 60_000 });
    const outage = failingWork(() => new OutageError('connection refused'));
    await resilience.execute(outage.work).catch(() => undefined);
    expect(resilience.state()).toBe('open');

    const { work, calls } = scriptedWork();
    const error = await resilience.execute(work).catch((caught: unknown) => caught);

    expect(isBrokenCircuit(error)).toBe(true);
    expect(calls()).toBe(0);
  });

  it('ends the retries of a call at once when its own failures open the breaker', async () => {
    const { resilience } = buildResilience({ maxAttempts: 10, breakerThreshold: 3, halfOpenAfterMs: 60_000 });
    const { work, calls } = failingWork(() => new OutageError('connection refused'));

    const error = await resilience.execute(work).catch((caught: unknown) => caught);

    // Attempts 1-3 reach the work and open the breaker; attempt 4 is refused
    // by the breaker, and BrokenCircuitError is not transient.
    expect(isBrokenCircuit(error)).toBe(true);
    expect(calls()).toBe(3);
    expect(resilience.state()).toBe('open');
  });

  it('resets the consecutive count on a success', async () => {
    const { resilience } = buildResilience({ maxAttempts: 1, breakerThreshold: 3 });

    await openBreaker(resilience, 2);
    await expect(resilience.execute(async () => 'ok')).resolves.toBe('ok');
    await openBreaker(resilience, 2);

    expect(resilience.state()).toBe('closed');
  });

  it('never opens on errors that are not outages, however many', async () => {
    const { resilience, transitions } = buildResilience({ maxAttempts: 2, breakerThreshold: 2 });
    const constraint = failingWork(() => new ConstraintError('23514'));
    const serialization = failingWork(() => new SerializationError('40001'));

    for (let index = 0; index < 5; index += 1) {
      await expect(resilience.execute(constraint.work)).rejects.toBeInstanceOf(ConstraintError);
      await expect(resilience.execute(serialization.work)).rejects.toBeInstanceOf(SerializationError);
    }

    expect(constraint.calls()).toBe(5);
    expect(serialization.calls()).toBe(10);
    expect(resilience.state()).toBe('closed');
    expect(transitions).toEqual([]);
  });

  it('half-opens after halfOpenAfterMs and closes when the probe succeeds', async () => {
    const { resilience, transitions } = buildResilience({
      maxAttempts: 1,
      breakerThreshold: 2,
      halfOpenAfterMs: 30,
    });
    await openBreaker(resilience, 2);
    await sleep(60);

    const { work, calls } = scriptedWork();
    await expect(resilience.execute(work)).resolves.toBe('done');

    expect(calls()).toBe(1);
    expect(resilience.state()).toBe('closed');
    expect(resilience.retryAfterSeconds()).toBe(0);
    expect(transitions).toEqual(['open', 'half_open', 'closed']);
  });

  it('reports half_open once halfOpenAfterMs has passed, before any call arrives', async () => {
    const { resilience, transitions } = buildResilience({
      maxAttempts: 1,
      breakerThreshold: 1,
      halfOpenAfterMs: 30,
    });
    await openBreaker(resilience, 1);
    expect(resilience.state()).toBe('open');

    await sleep(60);

    expect(resilience.state()).toBe('half_open');
    // Only reported: the breaker itself moves when the probe runs.
    expect(transitions).toEqual(['open']);
  });

  it('opens again when the half-open probe fails with an outage', async () => {
    const { resilience, transitions } = buildResilience({
      maxAttempts: 1,
      breakerThreshold: 2,
      halfOpenAfterMs: 30,
    });
    await openBreaker(resilience, 2);
    await sleep(60);

    await openBreaker(resilience, 1);

    expect(resilience.state()).toBe('open');
    expect(transitions).toEqual(['open', 'half_open', 'open']);
    const { work, calls } = scriptedWork();
    expect(isBrokenCircuit(await resilience.execute(work).catch((caught: unknown) => caught))).toBe(true);
    expect(calls()).toBe(0);
  });

  it('stays open before halfOpenAfterMs has passed', async () => {
    const { resilience } = buildResilience({ maxAttempts: 1, breakerThreshold: 1, halfOpenAfterMs: 60_000 });
    await openBreaker(resilience, 1);

    const { work, calls } = scriptedWork();
    for (let index = 0; index < 3; index += 1) {
      expect(isBrokenCircuit(await resilience.execute(work).catch((caught: unknown) => caught))).toBe(true);
    }

    expect(calls()).toBe(0);
    expect(resilience.state()).toBe('open');
    expect(resilience.retryAfterSeconds()).toBeGreaterThan(1);
    expect(resilience.retryAfterSeconds()).toBeLessThanOrEqual(60);
  });
});

/** Wraps work so that every attempt takes 50 ms before it runs. */
function slowly<T>(work: () => Promise<T>): () => Promise<T> {
  return async () => {
    await sleep(50);
    return work();
  };
}
