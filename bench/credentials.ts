import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTotp } from '@keel/platform/auth';

// The bench admin: created by the server's bootstrap (KEEL_BOOTSTRAP_ADMIN_*)
// and, since admins need MFA, enrolled by the harness on first use. Its TOTP
// secret is kept next to the bench database so later runs can sign in again.
export type BenchAdmin = { email: string; password: string; totpSecret?: string };

export type BenchCredentials = {
  /** `Bearer keel_…` with user-metadata:read and user-metadata:write. */
  serviceKey: string;
};

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

export function loadBenchAdmin(file: string): BenchAdmin {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BenchAdmin;
  } catch {
    const admin = { email: 'bench-admin@example.com', password: randomBytes(18).toString('base64url') };
    saveBenchAdmin(file, admin);
    return admin;
  }
}

function saveBenchAdmin(file: string, admin: BenchAdmin): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(admin)}\n`, { mode: 0o600 });
}

async function post(baseUrl: string, url: string, body: unknown, authorization?: string) {
  const response = await fetch(`${baseUrl}${url}`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
  };
}

/** Signs the bench admin in (enrolling MFA the first time) and returns an access token. */
async function signInAdmin(baseUrl: string, file: string): Promise<string> {
  const admin = loadBenchAdmin(file);
  const login = await post(baseUrl, '/auth/login', { email: admin.email, password: admin.password });
  if (login.status !== 200 || login.body.status !== 'mfa_required') {
    throw new Error(
      `bench admin login failed (${login.status} ${String(login.body.code ?? '')}); delete ${file} and the bench database`,
    );
  }
  const mfaToken = String(login.body.mfa_token);
  if (login.body.enrollment_required === true) {
    const enrolment = await post(baseUrl, '/auth/mfa/challenge/enroll', { mfa_token: mfaToken });
    admin.totpSecret = String(enrolment.body.secret);
    saveBenchAdmin(file, admin);
  }
  if (admin.totpSecret === undefined)
    throw new Error(`${file} has no TOTP secret; delete it and the bench database`);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const code = await createTotp({ clock: { now: () => new Date() } }).generate(
      admin.totpSecret,
      new Date(),
    );
    const verified = await post(baseUrl, '/auth/mfa/verify', { mfa_token: mfaToken, code });
    if (verified.status === 200) return String(verified.body.access_token);
    // A code works once per 30 s step: a run right after another waits for the next step.
    if (verified.body.code !== 'auth.invalid_mfa_code') break;
    await sleep(30_000 - (Date.now() % 30_000) + 500);
  }
  throw new Error('bench admin MFA failed');
}

let cached: BenchCredentials | undefined;

/**
 * A service API key for the user-metadata scenarios, created once per bench
 * run through the admin API (keys and tokens outlive one server process: the
 * database and signing key are shared).
 */
export async function benchCredentials(baseUrl: string, adminFile: string): Promise<BenchCredentials> {
  if (cached) return cached;
  const adminToken = await signInAdminOnce(baseUrl, adminFile);
  const key = await post(
    baseUrl,
    '/admin/api-keys',
    { name: `bench ${new Date().toISOString()}`, permissions: ['user-metadata:read', 'user-metadata:write'] },
    `Bearer ${adminToken}`,
  );
  if (key.status !== 201) throw new Error(`creating the bench API key failed: ${key.status}`);
  cached = { serviceKey: `Bearer ${String(key.body.key)}` };
  return cached;
}

/** Registers an account and grants it roles through the admin API. */
export async function benchUser(
  baseUrl: string,
  adminFile: string,
  options: { email: string; password: string; roles: string[] },
): Promise<void> {
  const created = await post(baseUrl, '/auth/register', { email: options.email, password: options.password });
  if (created.status !== 201) throw new Error(`registering ${options.email} failed: ${created.status}`);
  if (options.roles.length === 0) return;
  const adminToken = await signInAdminOnce(baseUrl, adminFile);
  for (const role of options.roles) {
    const granted = await post(
      baseUrl,
      `/admin/users/${String(created.body.id)}/roles`,
      { role },
      `Bearer ${adminToken}`,
    );
    if (granted.status !== 200) throw new Error(`granting ${role} failed: ${granted.status}`);
  }
}

/**
 * Signs a fresh account with an MFA-requiring role in (doctors, admins), enrolling
 * its authenticator on the way, and returns `Bearer <access token>`.
 */
export async function signInEnrollingMfa(baseUrl: string, email: string, password: string): Promise<string> {
  const login = await post(baseUrl, '/auth/login', { email, password });
  if (
    login.status !== 200 ||
    login.body.status !== 'mfa_required' ||
    login.body.enrollment_required !== true
  ) {
    throw new Error(`login of ${email} did not ask for MFA enrolment (${login.status})`);
  }
  const mfaToken = String(login.body.mfa_token);
  const enrolment = await post(baseUrl, '/auth/mfa/challenge/enroll', { mfa_token: mfaToken });
  const secret = String(enrolment.body.secret);
  const code = await createTotp({ clock: { now: () => new Date() } }).generate(secret, new Date());
  const verified = await post(baseUrl, '/auth/mfa/verify', { mfa_token: mfaToken, code });
  if (verified.status !== 200) throw new Error(`MFA enrolment of ${email} failed: ${verified.status}`);
  return `Bearer ${String(verified.body.access_token)}`;
}

/** Registers an account and returns its id (no roles). */
export async function registerBenchAccount(
  baseUrl: string,
  email: string,
  password: string,
): Promise<string> {
  const created = await post(baseUrl, '/auth/register', { email, password });
  if (created.status !== 201) throw new Error(`registering ${email} failed: ${created.status}`);
  return String(created.body.id);
}

let adminToken: string | undefined;
/** The bench admin's access token (platform:admin, MFA passed), signed in once per run. */
export async function signInAdminOnce(baseUrl: string, file: string): Promise<string> {
  adminToken ??= await signInAdmin(baseUrl, file);
  return adminToken;
}
