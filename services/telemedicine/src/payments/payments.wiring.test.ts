import { ConfigError, type PlatformConfig } from '@keel/platform/config';
import type { KeelApp } from '@keel/platform/http';
import { createLogger } from '@keel/platform/observability';
import { describe, expect, it } from 'vitest';
import type { TelemedicineDependencies } from '../composition-root.ts';
import { wirePayments } from './payments.wiring.ts';

// Only the start-up refusals: they happen before the app or the database is touched.
function depsWith(config: Partial<PlatformConfig>): TelemedicineDependencies {
  return {
    config: { PAYMENTS_TIMEOUT_MS: 5000, PAYMENTS_WEBHOOK_TOLERANCE_SECONDS: 300, ...config },
    logger: createLogger({ level: 'silent' }),
  } as unknown as TelemedicineDependencies;
}

function problemsOf(config: Partial<PlatformConfig>): string[] {
  try {
    wirePayments({} as KeelApp, depsWith(config));
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('wirePayments configuration', () => {
  it('refuses to start in production without PAYMENTS_GATEWAY_URL', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      expect.stringMatching(/^PAYMENTS_GATEWAY_URL: /),
    ]);
  });

  it('refuses a gateway URL without its API key and webhook secret, naming both', () => {
    expect(problemsOf({ NODE_ENV: 'development', PAYMENTS_GATEWAY_URL: 'https://gateway.example' })).toEqual([
      expect.stringMatching(/^PAYMENTS_API_KEY: /),
      expect.stringMatching(/^PAYMENTS_WEBHOOK_SECRET: /),
    ]);
    expect(
      problemsOf({
        NODE_ENV: 'production',
        PAYMENTS_GATEWAY_URL: 'https://gateway.example',
        PAYMENTS_API_KEY: 'sk_live_0123456789',
      }),
    ).toEqual([expect.stringMatching(/^PAYMENTS_WEBHOOK_SECRET: /)]);
  });
});
