import { type AuditChainVerification, verifyAuditChain } from '@keel/platform/audit';
import { loadConfig, PlatformConfigSchema, parseList } from '@keel/platform/config';
import { createLogger } from '@keel/platform/observability';
import { openDatabase } from '@keel/platform/server';
import { selectModules } from './services.ts';

/**
 * Operator commands that run against the same database as the server
 * (DATABASE_URL, or the embedded PostgreSQL under KEEL_DATA_DIR).
 *
 * Exit codes: 0 success (chain intact), 1 chain broken, 2 usage or operational error.
 */
const USAGE = `Usage: keel <command>

Commands:
  audit verify [--json]   Recompute the audit trail's hash chain.
                          Exits 0 when intact, 1 when broken, 2 when it could not check.
`;

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
  if (area === 'help' || area === '--help' || area === '-h') {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  io.stderr.write(
    `${area === undefined ? 'No command given' : `Unknown command: ${args.join(' ')}`}\n\n${USAGE}`,
  );
  return EXIT_ERROR;
}

async function verifyAudit(flags: string[], io: CliIo): Promise<number> {
  const unknown = flags.filter((flag) => flag !== '--json');
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
    // Applies pending migrations first, as the server does at start; verifying needs 0002 anyway.
    const opened = await openDatabase({ config, logger, modules });
    try {
      const result = await verifyAuditChain(opened.database);
      io.stdout.write(flags.includes('--json') ? `${JSON.stringify(result)}\n` : describe(result));
      return result.ok ? EXIT_OK : EXIT_BROKEN;
    } finally {
      await opened.close();
    }
  } catch (error) {
    // ConfigError's message names each bad variable without echoing its value.
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`audit verify could not run: ${message}\n`);
    return EXIT_ERROR;
  }
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
