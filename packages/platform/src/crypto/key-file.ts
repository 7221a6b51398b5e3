import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/index.ts';

/**
 * Reads a JSON key file that development servers generate on first start
 * (field-encryption keys, the prescription signing key), creating it when it
 * does not exist. Creation is race-free across processes: the content goes to
 * a private temporary file that is then hard-linked into place, so the link
 * either creates the complete file or fails because another process (a second
 * server, a test worker) won, in which case the winner's keys are returned.
 * Readers never see a half-written file. Group and other access are taken
 * away from an existing file (a `cp` gets the umask's permissions).
 *
 * @example
 * const keys = readOrCreateKeyFile(path.join(dataDirectory, 'signing-key.json'), {
 *   create: () => ({ version: 1, privateKey: generate() }),
 *   isValid: (value): value is KeyFile => isKeyFile(value),
 *   invalidProblem: (file) => `${file}: not a signing key file; restore it from a backup`,
 * });
 */
export function readOrCreateKeyFile<KeyFile>(
  file: string,
  options: {
    create: () => KeyFile;
    isValid: (value: unknown) => value is KeyFile;
    /** The ConfigError problem for a file that exists but is not a key file (never suggest deleting it). */
    invalidProblem: (file: string) => string;
  },
): KeyFile {
  const existing = readKeyFile(file, options);
  if (existing !== undefined) return existing;

  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const created = options.create();
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(created, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, file);
    return created;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = readKeyFile(file, options);
    if (winner === undefined) throw error;
    return winner;
  } finally {
    unlinkSync(temporary);
  }
}

/** The stored keys, or undefined when the file does not exist. */
function readKeyFile<KeyFile>(
  file: string,
  options: { isValid: (value: unknown) => value is KeyFile; invalidProblem: (file: string) => string },
): KeyFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  tightenPermissions(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!options.isValid(parsed)) throw new ConfigError([options.invalidProblem(file)]);
  return parsed;
}

// Best effort (not on every platform).
function tightenPermissions(file: string): void {
  if (process.platform === 'win32') return;
  try {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  } catch {
    // Not the owner: reading worked, which is all this process needs.
  }
}
