import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type PlatformConfig } from '@keel/platform/config';
import type { DemoAccounts } from '@keel/platform/module';
import type { Logger } from '@keel/platform/observability';
import type { PlatformSecurity } from '@keel/platform/server';

const DEMO_ADMIN_EMAIL = 'admin@keel.local';
const DEMO_CREDENTIALS_FILE = 'demo-admin.json';

type Credentials = { email: string; password: string };

/**
 * Creates the first admin at start when none exists: from
 * KEEL_BOOTSTRAP_ADMIN_EMAIL/PASSWORD, or, for the embedded demo, from a
 * generated password kept under KEEL_DATA_DIR so every start prints the same
 * credentials. Returns the banner lines (the demo shows its credentials there,
 * never in the log).
 */
export async function bootstrapAdmin(options: {
  config: PlatformConfig;
  security: PlatformSecurity;
  isEmbedded: boolean;
  logger: Logger;
}): Promise<{ bannerLines: string[]; demoPassword?: string }> {
  const { config, logger } = options;
  const email = config.KEEL_BOOTSTRAP_ADMIN_EMAIL;
  const password = config.KEEL_BOOTSTRAP_ADMIN_PASSWORD;
  if ((email === undefined) !== (password === undefined)) {
    throw new ConfigError([
      'KEEL_BOOTSTRAP_ADMIN_EMAIL and KEEL_BOOTSTRAP_ADMIN_PASSWORD must be set together',
    ]);
  }
  const isDemo = email === undefined && options.isEmbedded;
  const credentials: Credentials | undefined =
    email !== undefined && password !== undefined
      ? { email, password }
      : isDemo
        ? demoCredentials(config.KEEL_DATA_DIR)
        : undefined;
  if (credentials === undefined) return { bannerLines: [] };

  const outcome = await options.security.identity.accounts.bootstrapAdmin(credentials);
  if (outcome === 'email_taken') {
    logger.error(
      { email: credentials.email },
      'bootstrap admin not created: an account with that email exists and is not promoted automatically',
    );
  } else if (outcome === 'created') {
    logger.info({ email: credentials.email }, 'bootstrap admin created');
  }
  if (!isDemo) return { bannerLines: [] };
  return {
    demoPassword: credentials.password,
    bannerLines: [
      `  Admin    ${credentials.email} / ${credentials.password}`,
      '           (demo only; sign-in asks you to set up an authenticator app: admin roles require MFA)',
    ],
  };
}

/**
 * The demo's sign-in accounts (a patient, say), provisioned through the
 * platform's identity with the demo admin's password; `emails` lists what was
 * ensured, for the banner.
 */
export function createDemoAccounts(
  security: PlatformSecurity,
  password: string,
): DemoAccounts & { emails: () => string[] } {
  const emails: string[] = [];
  return {
    password,
    emails: () => [...emails],
    async ensure({ email, roles }) {
      emails.push(email);
      const existing = await security.identity.accounts.findAccountIdByEmail(email);
      if (existing !== undefined) return { id: existing, email };
      const created = await security.identity.accounts.provisionAccount({ email, password, roles });
      return { id: created.id, email };
    },
  };
}

function demoCredentials(dataDirectory: string): Credentials {
  const path = join(dataDirectory, DEMO_CREDENTIALS_FILE);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Credentials;
  } catch {
    const credentials = { email: DEMO_ADMIN_EMAIL, password: randomBytes(12).toString('base64url') };
    mkdirSync(dataDirectory, { recursive: true, mode: 0o711 });
    writeFileSync(path, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
    return credentials;
  }
}
