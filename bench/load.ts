import autocannon from 'autocannon';

export type LoadOptions = {
  url: string;
  connections: number;
  durationSeconds: number;
  requests?: autocannon.Request[];
  /** Requests per second across all connections (open-loop pacing); unset: as fast as the server answers. */
  overallRate?: number;
};

export type LatencySummary = {
  /** Computed by this harness from every response's latency (all statuses), nearest-rank. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  /** autocannon's own histogram (2xx responses only), kept for comparison. */
  autocannonP97_5: number;
  autocannonP99: number;
};

export type LoadResult = {
  connections: number;
  durationSeconds: number;
  /** Mean of autocannon's per-second response counts. */
  requestsPerSecond: number;
  totalResponses: number;
  latencyMs: LatencySummary;
  non2xx: number;
  /** Connection errors including timeouts. */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
};

/** Load whose results are thrown away: lets the JIT, the pool and caches settle before measuring. */
export async function warmUp(options: LoadOptions): Promise<void> {
  if (options.durationSeconds > 0) await runAutocannon(options, () => undefined);
}

export async function measureLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies = new LatencyRecorder();
  const result = await runAutocannon(options, (latencyMs) => latencies.record(latencyMs));
  const statusCodes: Record<string, number> = {};
  for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) {
    statusCodes[status] = stats.count ?? 0;
  }
  return {
    connections: options.connections,
    durationSeconds: result.duration,
    requestsPerSecond: result.requests.mean,
    totalResponses: latencies.count,
    latencyMs: {
      p50: latencies.percentile(50),
      p95: latencies.percentile(95),
      p99: latencies.percentile(99),
      max: latencies.percentile(100),
      mean: latencies.mean(),
      autocannonP97_5: result.latency.p97_5,
      autocannonP99: result.latency.p99,
    },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
  };
}

function runAutocannon(
  options: LoadOptions,
  onLatency: (latencyMs: number) => void,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationSeconds,
        // No worker threads: they cannot take the setupRequest closures the
        // scenarios use for unique bodies, so load is generated in this process.
        requests: options.requests,
        ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
      },
      (error: unknown, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client, _statusCode, _bytes, responseTimeMs) => onLatency(responseTimeMs));
  });
}

/**
 * autocannon's histogram has no p95 (it reports p90, p97.5, p99), so the
 * harness keeps every latency and ranks them itself. A few hundred thousand
 * doubles per run is a few MB.
 */
class LatencyRecorder {
  private values = new Float64Array(1 << 16);
  count = 0;

  record(value: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count] = value;
    this.count += 1;
  }

  private sorted: Float64Array | undefined;

  percentile(percent: number): number {
    if (this.count === 0) return Number.NaN;
    this.sorted ??= this.values.slice(0, this.count).sort();
    const rank = Math.max(1, Math.ceil((percent / 100) * this.count));
    return this.sorted[rank - 1] ?? Number.NaN;
  }

  mean(): number {
    if (this.count === 0) return Number.NaN;
    let sum = 0;
    for (let index = 0; index < this.count; index += 1) sum += this.values[index] ?? 0;
    return sum / this.count;
  }
}
