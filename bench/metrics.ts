// Reads the server's Prometheus histograms after a run: the event lag
// (commit → subscriber handled) is measured by the server itself, per
// subscriber, in `keel_event_lag_seconds`.

type Histogram = { buckets: Map<number, number>; count: number; sum: number };

/** Sums a histogram's series across labels (every subscriber, or only `subscriber`'s) from Prometheus text. */
export function parseHistogram(text: string, name: string, subscriber?: string): Histogram {
  const histogram: Histogram = { buckets: new Map(), count: 0, sum: 0 };
  for (const line of text.split('\n')) {
    if (subscriber !== undefined && !line.includes(`subscriber="${subscriber}"`)) continue;
    if (line.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
      histogram.buckets.set(bound, (histogram.buckets.get(bound) ?? 0) + value);
    } else if (line.startsWith(`${name}_count`)) {
      histogram.count += Number(line.slice(line.lastIndexOf(' ') + 1));
    } else if (line.startsWith(`${name}_sum`)) {
      histogram.sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return histogram;
}

/** The quantile's upper bucket bound (Prometheus' linear interpolation inside the bucket). */
export function histogramQuantile(histogram: Histogram, quantile: number): number {
  const bounds = [...histogram.buckets.keys()].sort((a, b) => a - b);
  const total = histogram.buckets.get(Number.POSITIVE_INFINITY) ?? histogram.count;
  if (total === 0) return Number.NaN;
  const rank = quantile * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const bound of bounds) {
    const count = histogram.buckets.get(bound) ?? 0;
    if (count >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return previousBound;
      return (
        previousBound +
        ((bound - previousBound) * (rank - previousCount)) / Math.max(count - previousCount, 1)
      );
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound;
}

/** What a histogram recorded between two scrapes. */
function subtract(after: Histogram, before: Histogram): Histogram {
  const buckets = new Map<number, number>();
  for (const [bound, count] of after.buckets) buckets.set(bound, count - (before.buckets.get(bound) ?? 0));
  return { buckets, count: after.count - before.count, sum: after.sum - before.sum };
}

export async function scrapeMetrics(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`);
  return response.text();
}

/**
 * Waits until the subscribers have caught up (the delivered counter stops
 * moving for `quietMs`), then reports the event lag over the scenario.
 */
export async function eventLagAfterDrain(
  baseUrl: string,
  options: { quietMs?: number; timeoutMs?: number; baseline?: string } = {},
): Promise<Record<string, number>> {
  const quietMs = options.quietMs ?? 3000;
  const startedAt = Date.now();
  const deadline = startedAt + (options.timeoutMs ?? 600_000);
  let last = -1;
  let stableSince = Date.now();
  let text = '';
  while (Date.now() < deadline) {
    text = await scrapeMetrics(baseUrl);
    const delivered = parseHistogram(text, 'keel_event_lag_seconds').count;
    if (delivered !== last) {
      last = delivered;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= quietMs) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const lag = subtract(
    parseHistogram(text, 'keel_event_lag_seconds'),
    parseHistogram(options.baseline ?? '', 'keel_event_lag_seconds'),
  );
  // Per subscriber, to see which one falls behind.
  const perSubscriber: Record<string, number> = {};
  const subscribers = new Set(
    [...text.matchAll(/keel_event_lag_seconds_count\{[^}]*subscriber="([^"]+)"/g)].map((m) => m[1] ?? ''),
  );
  for (const subscriber of subscribers) {
    const own = subtract(
      parseHistogram(text, 'keel_event_lag_seconds', subscriber),
      parseHistogram(options.baseline ?? '', 'keel_event_lag_seconds', subscriber),
    );
    if (own.count > 0) perSubscriber[`eventLagP99Ms ${subscriber}`] = histogramQuantile(own, 0.99) * 1000;
  }
  return {
    ...perSubscriber,
    drainSecondsAfterRun: (Date.now() - startedAt - quietMs) / 1000,
    eventDeliveries: lag.count,
    eventLagMeanMs: lag.count === 0 ? Number.NaN : (lag.sum / lag.count) * 1000,
    eventLagP50Ms: histogramQuantile(lag, 0.5) * 1000,
    eventLagP95Ms: histogramQuantile(lag, 0.95) * 1000,
    eventLagP99Ms: histogramQuantile(lag, 0.99) * 1000,
  };
}
