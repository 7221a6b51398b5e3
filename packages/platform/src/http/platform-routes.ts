import { Type } from 'typebox';
import type { HttpMetrics } from '../observability/metrics.ts';
import type { KeelApp } from './app.ts';

export type CheckStatus = 'ok' | 'failing';
export type ReadinessCheck = () => Promise<{ status: CheckStatus; detail?: string }>;

const CheckSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('failing')]),
  detail: Type.Optional(Type.String()),
});
const HealthSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('ready'), Type.Literal('not_ready')]),
    checks: Type.Optional(Type.Record(Type.String(), CheckSchema)),
  },
  { additionalProperties: false },
);

/**
 * Liveness (the process answers), readiness (every check passes: the load
 * balancer should send traffic) and Prometheus metrics.
 */
export function registerPlatformRoutes(
  app: KeelApp,
  options: { metrics: HttpMetrics; readinessChecks: Record<string, ReadinessCheck> },
): void {
  app.get(
    '/health/live',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'getLiveness',
        tags: ['health'],
        summary: 'The process is up',
        response: { 200: HealthSchema },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Dependencies are reachable and migrations applied',
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_request, reply) => {
      const entries = await Promise.all(
        Object.entries(options.readinessChecks).map(
          async ([name, check]) => [name, await runCheck(check)] as const,
        ),
      );
      const checks = Object.fromEntries(entries);
      const isReady = entries.every(([, result]) => result.status === 'ok');
      return reply.code(isReady ? 200 : 503).send({ status: isReady ? 'ready' : 'not_ready', checks });
    },
  );

  app.get('/metrics', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
    reply.type(options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });
}

const CHECK_TIMEOUT_MS = 1500;

async function runCheck(check: ReadinessCheck): Promise<{ status: CheckStatus; detail?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ status: CheckStatus; detail: string }>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'failing', detail: 'timed out' }), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check(), timeout]);
  } catch (error) {
    return { status: 'failing', detail: error instanceof Error ? error.message : 'failed' };
  } finally {
    clearTimeout(timer);
  }
}
