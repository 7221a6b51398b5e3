import { type AuditChainVerification, verifyAuditChain } from '@keel/platform/audit';
import { generateSigningKeyEntry } from '@keel/platform/auth';
import { loadConfig, type PlatformConfig, PlatformConfigSchema, parseList } from '@keel/platform/config';
import {
  countValuesToRotate,
  generateEncryptionKey,
  loadFieldCrypto,
  parseKeyring,
  type RotationPassReport,
  startEncryptionKeyRotation,
} from '@keel/platform/crypto';
import type { Database } from '@keel/platform/db';
import { isAppError } from '@keel/platform/errors';
import { createLogger, type Logger } from '@keel/platform/observability';
import { DEAD_LETTER_LIST_LIMIT_MAX, listDeadLetters, replayDeadLetter } from '@keel/platform/outbox';
import { openDatabase } from '@keel/platform/server';
import { ENCRYPTED_COLUMNS } from './key-rotation.ts';
import { selectModules } from './services.ts';

/**
 * Operator commands that run against the same database as the server
 * (DATABASE_URL, or the embedded PostgreSQL under KEEL_DATA_DIR).
 *
 * Exit codes: 0 success (chain intact, nothing left to rotate), 1 chain broken or values
 * still under an old key, 2 usage or operational error.
 */
const USAGE = `Usage: keel <command>

Commands:
  audit verify [--json]             Recompute the audit trail's hash chain.
                                    Exits 0 when intact, 1 when broken, 2 when it could not check.
  keys generate encryption [kid]    Print a new KEEL_ENCRYPTION_KEYS entry, kid:<base64 32 bytes>.
  keys generate blind-index         Print a new KEEL_BLIND_INDEX_KEY (base64, 32 bytes).
  keys generate signing [kid]       Print a new AUTH_SIGNING_KEYS entry, kid:<base64 PKCS#8 Ed25519>.
                                    kid defaults to k<yyyymmdd> (UTC); ids are 1-32 of a-z 0-9 _ -.
                                    Keys go to stdout only: pipe them into your secret store.
  keys status [--json]              Count encrypted values not yet under the active key.
                                    Exits 0 when none are left (old keys can go), 1 otherwise.
  events dead-letters [--subscriber=NAME] [--json]
                                    List dead-lettered event deliveries, most recent first (no payloads).
                                    Exits 0 when there are none, 1 when there are some.
  events replay SUBSCRIBER EVENT_ID Deliver a dead-lettered event to its subscriber again with a fresh
                                    attempt budget (the running servers pick it up).
  keys rotate [--json]              Run one key-rotation pass now (the server runs them in the
                                    background). Exits 0 when nothing is left, 1 when a re-run is needed.
`;

/**
 * The encrypted columns the server's background rotation re-wraps
 * (apps/server/src/key-rotation.ts); the two lists must name the same columns.
 */

export type CliIo = {
  env: Record<string, string | undefined>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
};

const EXIT_OK = 0;
const EXIT_BROKEN = 1;
const EXIT_ERROR = 2;

/** Runs one command and returns the process exit code; never exits itself, so tests can call it. */
export async function runCli(args: string[], io: CliIo): Promise<number> {
  const [area, command, ...flags] = args;
  if (area === 'audit' && command === 'verify') return verifyAudit(flags, io);
  if (area === 'keys' && command === 'generate') return generateKey(flags, io);
  if (area === 'keys' && command === 'status') return showKeyStatus(flags, io);
  if (area === 'keys' && command === 'rotate') return rotateKeys(flags, io);
  if (area === 'events' && command === 'dead-letters') return listEventDeadLetters(flags, io);
  if (area === 'events' && command === 'replay') return replayEventDeadLetter(flags, io);
  if (area === 'help' || area === '--help' || area === '-h') {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  io.stderr.write(
    `${area === undefined ? 'No command given' : `Unknown command: ${args.join(' ')}`}\n\n${USAGE}`,
  );
  return EXIT_ERROR;
}

type CommandContext = { config: PlatformConfig; logger: Logger; database: Database };

/**
 * Loads configuration, opens the database the server uses (applying pending
 * migrations first, as the server does at start) and runs `work`; any failure
 * is reported on stderr as exit code 2.
 */
async function withDatabase(
  label: string,
  flags: string[],
  io: CliIo,
  work: (context: CommandContext) => Promise<number>,
): Promise<number> {
  const unknown = flags.filter((flag) => flag !== '--json' && !flag.startsWith('--subscriber='));
  if (unknown.length > 0) {
    io.stderr.write(`Unknown option: ${unknown.join(' ')}\n\n${USAGE}`);
    return EXIT_ERROR;
  }
  try {
    const config = loadConfig(PlatformConfigSchema, io.env);
    // stdout carries only the result; the CLI stays quiet unless LOG_LEVEL asks otherwise.
    const logger = createLogger({
      level: io.env.LOG_LEVEL ? config.LOG_LEVEL : 'warn',
      destination: io.stderr,
    });
    const modules = selectModules(parseList(config.SERVICES));
    const opened = await openDatabase({ config, logger, modules });
    try {
      return await work({ config, logger, database: opened.database });
    } finally {
      await opened.close();
    }
  } catch (error) {
    // ConfigError's message names each bad variable without echoing its value;
    // CryptoError's names key ids, never key material.
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`${label} could not run: ${message}\n`);
    return EXIT_ERROR;
  }
}

function listEventDeadLetters(flags: string[], io: CliIo): Promise<number> {
  return withDatabase('events dead-letters', flags, io, async ({ database }) => {
    const subscriber = flags.find((flag) => flag.startsWith('--subscriber='))?.slice('--subscriber='.length);
    const letters = await listDeadLetters(database, {
      ...(subscriber === undefined || subscriber === '' ? {} : { subscriber }),
      limit: DEAD_LETTER_LIST_LIMIT_MAX,
    });
    if (flags.includes('--json')) {
      io.stdout.write(`${JSON.stringify(letters)}\n`);
    } else if (letters.length === 0) {
      io.stdout.write('no dead-lettered deliveries\n');
    } else {
      const lines = letters.map(
        (letter) =>
          `${letter.deadAt.toISOString()} ${letter.subscriber} ${letter.eventId} ${letter.eventType} ` +
          `${letter.aggregateType}/${letter.aggregateId} attempts=${letter.attempts} error=${letter.lastErrorCode ?? '-'}`,
      );
      io.stdout.write(`${lines.join('\n')}\n`);
    }
    return letters.length === 0 ? EXIT_OK : EXIT_BROKEN;
  });
}

function replayEventDeadLetter(args: string[], io: CliIo): Promise<number> {
  const [subscriber, eventId, ...rest] = args;
  if (subscriber === undefined || eventId === undefined) {
    io.stderr.write(`events replay needs SUBSCRIBER and EVENT_ID\n\n${USAGE}`);
    return Promise.resolve(EXIT_ERROR);
  }
  return withDatabase('events replay', rest, io, async ({ database }) => {
    try {
      await replayDeadLetter(database, subscriber, eventId);
    } catch (error) {
      if (isAppError(error) && error.kind === 'not_found') {
        io.stderr.write(`no dead letter of ${eventId} for ${subscriber}\n`);
        return EXIT_BROKEN;
      }
      throw error;
    }
    io.stdout.write(`replaying ${eventId} to ${subscriber}\n`);
    return EXIT_OK;
  });
}

function verifyAudit(flags: string[], io: CliIo): Promise<number> {
  return withDatabase('audit verify', flags, io, async ({ database }) => {
    const result = await verifyAuditChain(database);
    io.stdout.write(flags.includes('--json') ? `${JSON.stringify(result)}\n` : describe(result));
    return result.ok ? EXIT_OK : EXIT_BROKEN;
  });
}

/** The keys this process would run with: the environment's, or outside production the generated file's. */
function fieldCryptoFor(config: PlatformConfig) {
  return loadFieldCrypto({
    ...(config.KEEL_ENCRYPTION_KEYS === undefined ? {} : { encryptionKeys: config.KEEL_ENCRYPTION_KEYS }),
    ...(config.KEEL_BLIND_INDEX_KEY === undefined ? {} : { blindIndexKey: config.KEEL_BLIND_INDEX_KEY }),
    dataDirectory: config.KEEL_DATA_DIR,
    allowGenerate: config.NODE_ENV !== 'production',
  });
}

function showKeyStatus(flags: string[], io: CliIo): Promise<number> {
  return withDatabase('keys status', flags, io, async ({ config, database }) => {
    const { keyring, encryption } = fieldCryptoFor(config);
    const db = database.typed<unknown>();
    const columns: { table: string; column: string; pending: number }[] = [];
    for (const spec of ENCRYPTED_COLUMNS) {
      const pending = await countValuesToRotate({ db, table: spec.table, column: spec.column, encryption });
      columns.push({ table: spec.table, column: spec.column, pending });
    }
    const isDone = columns.every((column) => column.pending === 0);
    if (flags.includes('--json')) {
      io.stdout.write(`${JSON.stringify({ ...keyring.toJSON(), isDone, columns })}\n`);
    } else {
      const lines = [
        `active key ${keyring.activeKeyId} (keyring: ${keyring.keyIds.join(', ')})`,
        ...columns.map(
          (column) => `${column.table}.${column.column}: ${column.pending} values under an older key`,
        ),
        isDone
          ? 'nothing left to rotate: keys other than the active one can be removed'
          : 'values remain under older keys: keep every key until this reaches 0',
      ];
      io.stdout.write(`${lines.join('\n')}\n`);
    }
    return isDone ? EXIT_OK : EXIT_BROKEN;
  });
}

function rotateKeys(flags: string[], io: CliIo): Promise<number> {
  return withDatabase('keys rotate', flags, io, async ({ config, logger, database }) => {
    const { encryption } = fieldCryptoFor(config);
    const task = startEncryptionKeyRotation({
      database,
      encryption,
      columns: ENCRYPTED_COLUMNS,
      batchSize: config.KEEL_KEY_ROTATION_BATCH_SIZE,
      intervalMs: 0,
      logger,
    });
    let report: RotationPassReport;
    try {
      report = await task.runOnce();
    } finally {
      await task.stop();
    }
    io.stdout.write(
      flags.includes('--json')
        ? `${JSON.stringify({ activeKeyId: encryption.activeKeyId, ...report })}\n`
        : describeRotation(encryption.activeKeyId, report),
    );
    return report.hasWorkLeft ? EXIT_BROKEN : EXIT_OK;
  });
}

function describeRotation(activeKeyId: string, report: RotationPassReport): string {
  if (report.outcome === 'lock_busy') {
    return 'another process is rotating keys right now; run `keys status` later to follow it\n';
  }
  const lines = report.columns.map((column) => {
    const name = `${column.table}.${column.column}`;
    if (column.error !== undefined) return `${name}: failed: ${column.error}`;
    if (column.result === null) return `${name}: nothing to rotate`;
    const { rotated, conflicts, failed, failures } = column.result;
    return [
      `${name}: ${rotated} of ${column.pending} re-wrapped under ${activeKeyId}, ${conflicts} changed meanwhile, ${failed} failed`,
      // Ids and codes only, so the operator can find the rows; values never leave the database.
      ...failures.map((failure) => `  row ${failure.id}: ${failure.code}`),
    ].join('\n');
  });
  lines.push(
    report.hasWorkLeft
      ? 'not finished: run again (rows that failed need an operator first)'
      : `done: every value is under ${activeKeyId}`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * Prints one fresh key, and nothing else, on stdout so it can be piped into a
 * secret store. It touches no configuration and no database.
 */
function generateKey(args: string[], io: CliIo): number {
  const [kind, kid = defaultKeyId(), ...extra] = args;
  const isKnownKind = kind === 'encryption' || kind === 'signing' || kind === 'blind-index';
  // blind-index takes no kid: the blind index key is a single key, not a keyring.
  const isExtra = extra.length > 0 || (kind === 'blind-index' && args.length > 1);
  if (!isKnownKind || isExtra) {
    io.stderr.write(`Unknown command: keys generate ${args.join(' ')}\n\n${USAGE}`);
    return EXIT_ERROR;
  }
  try {
    if (kind === 'blind-index') {
      io.stdout.write(`${generateEncryptionKey()}\n`);
    } else if (kind === 'encryption') {
      const entry = `${kid}:${generateEncryptionKey()}`;
      // Parsing checks the kid the way the server will, so a bad id fails here, not at deploy.
      parseKeyring(entry);
      io.stdout.write(`${entry}\n`);
    } else {
      io.stdout.write(`${generateSigningKeyEntry(kid)}\n`);
    }
    return EXIT_OK;
  } catch (error) {
    // Both libraries' messages name the rule the kid broke, never key material.
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`keys generate ${kind} failed: ${message}\n`);
    return EXIT_ERROR;
  }
}

/** `k20250301`: sorts by date and says when the key was made. */
function defaultKeyId(): string {
  return `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`;
}

const BREAK_EXPLANATIONS = {
  hash_mismatch: 'the event row no longer matches its seal (edited after sealing)',
  event_missing: 'the sealed event row is gone (deleted after sealing)',
  prev_hash_mismatch: 'the seal does not follow the previous one (a seal was removed or reordered)',
} as const;

function describe(result: AuditChainVerification): string {
  if (!result.ok) {
    return (
      `audit chain BROKEN at position ${result.firstBrokenPosition} (event ${result.eventId}): ` +
      `${result.reason}: ${BREAK_EXPLANATIONS[result.reason]}\n`
    );
  }
  const head =
    result.head === null ? 'empty chain' : `head position ${result.head.position} hash ${result.head.hash}`;
  return `audit chain intact: ${result.sealed} events sealed, ${result.unsealed} awaiting the sealer; ${head}\n`;
}

if (import.meta.main) {
  const code = await runCli(process.argv.slice(2), {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  // Exit explicitly: a library timer must not keep a finished command alive.
  process.exit(code);
}
