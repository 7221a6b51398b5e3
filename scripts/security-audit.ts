// `npm audit --audit-level=high` with reviewed, expiring exceptions.
//
// Runs `npm audit --json` (or reads its output from --input <file>) and exits 1
// when a high or critical advisory is not covered by security/audit-exceptions.json,
// when an exception is malformed or expired, or when npm's output is not understood.
// When the advisory service itself cannot be reached or does not implement the
// audit endpoint (some registry mirrors answer 405), nothing was checked: it
// prints a loud warning and exits 0, or exits 1 when KEEL_AUDIT_REQUIRED=1.
//
//   node scripts/security-audit.ts [--input audit.json] [--exceptions file.json]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const BLOCKING_SEVERITIES: ReadonlySet<string> = new Set(['high', 'critical']);
// An exception is a decision with a shelf life: it must be reviewed again within this.
const MAX_EXCEPTION_DAYS = 90;
const DAY_MS = 86_400_000;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const EXCEPTION_FIELDS = ['advisory', 'package', 'reason', 'reviewedBy', 'reviewedOn', 'expires'] as const;

/** One advisory npm reports against one vulnerable package. */
export type Advisory = {
  /** `GHSA-…` when the URL carries one, else npm's numeric source id. */
  id: string;
  /** npm's numeric advisory id. */
  source: string;
  url: string;
  package: string;
  severity: string;
  title: string;
  range: string;
};

/** One accepted advisory (see security/audit-exceptions.json). */
export type AuditException = {
  /** GHSA id, advisory URL or npm's numeric source id. */
  advisory: string;
  package: string;
  reason: string;
  reviewedBy: string;
  /** YYYY-MM-DD */
  reviewedOn: string;
  /** YYYY-MM-DD, last day the exception applies. */
  expires: string;
};

export type AuditResult =
  | { kind: 'report'; advisories: Advisory[]; counts: Record<string, number> }
  | { kind: 'unavailable'; reason: string }
  | { kind: 'unrecognised'; reason: string };

export type AuditDecision = { exitCode: 0 | 1; lines: string[] };

/** Classifies `npm audit --json` output: a report, an unreachable advisory service, or something else. */
export function parseAuditOutput(stdout: string): AuditResult {
  let output: unknown;
  try {
    output = JSON.parse(stdout);
  } catch {
    return { kind: 'unrecognised', reason: `npm audit printed no JSON: ${stdout.slice(0, 200).trim()}` };
  }
  if (!isRecord(output))
    return { kind: 'unrecognised', reason: 'npm audit printed JSON that is not an object' };
  if (output.auditReportVersion === 2 && isRecord(output.vulnerabilities)) {
    return {
      kind: 'report',
      advisories: collectAdvisories(output.vulnerabilities),
      counts: readCounts(output),
    };
  }
  // npm's audit-error shape: the bulk advisory request failed (HTTP status, or a
  // network error whose message names the endpoint). Anything else, such as
  // ENOLOCK, is a broken setup and must not pass as "service unavailable".
  const { message, statusCode } = output;
  if (
    typeof message === 'string' &&
    (typeof statusCode === 'number' || message.includes('/-/npm/v1/security/'))
  ) {
    return { kind: 'unavailable', reason: message };
  }
  return {
    kind: 'unrecognised',
    reason: `unexpected npm audit output: ${JSON.stringify(output).slice(0, 300)}`,
  };
}

function collectAdvisories(vulnerabilities: Record<string, unknown>): Advisory[] {
  const advisories = new Map<string, Advisory>();
  for (const vulnerability of Object.values(vulnerabilities)) {
    if (!isRecord(vulnerability) || !Array.isArray(vulnerability.via)) continue;
    // A string in `via` names another vulnerable package (a transitive effect);
    // only objects are advisories, and each is listed under its own package too.
    for (const via of vulnerability.via) {
      if (!isRecord(via)) continue;
      const url = String(via.url ?? '');
      const source = String(via.source ?? '');
      const advisory: Advisory = {
        id: /GHSA-[\w-]+$/.exec(url)?.[0] ?? source,
        source,
        url,
        package: String(via.name ?? vulnerability.name ?? ''),
        severity: String(via.severity ?? vulnerability.severity ?? 'unknown'),
        title: String(via.title ?? ''),
        range: String(via.range ?? ''),
      };
      advisories.set(`${advisory.id} ${advisory.package}`, advisory);
    }
  }
  return [...advisories.values()];
}

function readCounts(output: Record<string, unknown>): Record<string, number> {
  const metadata = output.metadata;
  const counts = isRecord(metadata) && isRecord(metadata.vulnerabilities) ? metadata.vulnerabilities : {};
  return Object.fromEntries(
    Object.entries(counts).filter((entry): entry is [string, number] => typeof entry[1] === 'number'),
  );
}

/** Parses the exceptions file; `problems` lists malformed and expired entries (each one fails the audit). */
export function parseExceptions(
  text: string,
  today: string,
): { exceptions: AuditException[]; problems: string[] } {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return { exceptions: [], problems: ['audit exceptions file is not valid JSON'] };
  }
  if (!isRecord(document) || !Array.isArray(document.exceptions)) {
    return { exceptions: [], problems: ['audit exceptions file must be { "exceptions": [ … ] }'] };
  }
  const exceptions: AuditException[] = [];
  const problems: string[] = [];
  document.exceptions.forEach((entry: unknown, index) => {
    const where = `exception #${index + 1}`;
    if (!isRecord(entry)) {
      problems.push(`${where} is not an object`);
      return;
    }
    const unknownFields = Object.keys(entry).filter(
      (key) => !(EXCEPTION_FIELDS as readonly string[]).includes(key),
    );
    const missingFields = EXCEPTION_FIELDS.filter((key) => {
      const value = entry[key];
      return typeof value !== 'string' || value.trim() === '';
    });
    if (unknownFields.length > 0) problems.push(`${where} has unknown fields: ${unknownFields.join(', ')}`);
    if (missingFields.length > 0) problems.push(`${where} is missing: ${missingFields.join(', ')}`);
    if (unknownFields.length > 0 || missingFields.length > 0) return;
    const exception = entry as AuditException;
    const label = `${where} (${exception.advisory} in ${exception.package})`;
    if (!isDate(exception.reviewedOn) || !isDate(exception.expires)) {
      problems.push(`${label}: reviewedOn and expires must be real YYYY-MM-DD dates`);
      return;
    }
    const days = (Date.parse(exception.expires) - Date.parse(exception.reviewedOn)) / DAY_MS;
    if (days < 0 || days > MAX_EXCEPTION_DAYS) {
      problems.push(`${label}: expires must be 0–${MAX_EXCEPTION_DAYS} days after reviewedOn`);
      return;
    }
    // Dates compare as strings; an exception still holds on its expiry day.
    if (exception.expires < today) {
      problems.push(`${label} expired on ${exception.expires}: fix the dependency or review it again`);
      return;
    }
    exceptions.push(exception);
  });
  return { exceptions, problems };
}

/** Whether an exception covers an advisory: same package, and its GHSA id, URL or numeric id. */
export function isCoveredBy(advisory: Advisory, exception: AuditException): boolean {
  return (
    exception.package === advisory.package &&
    [advisory.id, advisory.url, advisory.source].includes(exception.advisory)
  );
}

/** The verdict and what to print, from the audit result and the parsed exceptions. */
export function decideAudit(input: {
  audit: AuditResult;
  exceptions: AuditException[];
  exceptionProblems: string[];
  isAuditRequired: boolean;
}): AuditDecision {
  const { audit, exceptions, exceptionProblems, isAuditRequired } = input;
  const lines = exceptionProblems.map((problem) => `FAIL ${problem}`);
  let isFailing = exceptionProblems.length > 0;

  if (audit.kind === 'unrecognised') {
    lines.push(`FAIL ${audit.reason}`);
    return { exitCode: 1, lines };
  }
  if (audit.kind === 'unavailable') {
    const banner = '!'.repeat(78);
    lines.push(
      banner,
      `WARNING: the npm advisory service could not be used: ${audit.reason}`,
      'WARNING: dependencies were NOT checked for known vulnerabilities.',
      isAuditRequired
        ? 'FAIL KEEL_AUDIT_REQUIRED=1: an audit that did not run fails the build.'
        : isFailing
          ? 'WARNING: the exception problems above still fail the build.'
          : 'WARNING: passing anyway; set KEEL_AUDIT_REQUIRED=1 to fail instead.',
      banner,
    );
    return { exitCode: isFailing || isAuditRequired ? 1 : 0, lines };
  }

  const counts = Object.entries(audit.counts)
    .map(([severity, count]) => `${severity} ${count}`)
    .join(', ');
  lines.push(`npm audit: ${counts || 'no counts reported'}`);
  const blocking = audit.advisories.filter((advisory) => BLOCKING_SEVERITIES.has(advisory.severity));
  const usedExceptions = new Set<AuditException>();
  for (const advisory of blocking) {
    const exception = exceptions.find((candidate) => isCoveredBy(advisory, candidate));
    const description = `${advisory.severity} ${advisory.package} ${advisory.range} ${advisory.id} ${advisory.title} ${advisory.url}`;
    if (exception === undefined) {
      isFailing = true;
      lines.push(`FAIL ${description}`);
    } else {
      usedExceptions.add(exception);
      lines.push(
        `EXCEPTED ${description} (until ${exception.expires}, ${exception.reviewedBy}: ${exception.reason})`,
      );
    }
  }
  for (const exception of exceptions) {
    if (!usedExceptions.has(exception)) {
      lines.push(`NOTE exception ${exception.advisory} (${exception.package}) matches nothing: remove it`);
    }
  }
  const excepted = usedExceptions.size;
  lines.push(
    isFailing
      ? 'npm audit FAILED (FAIL lines above): upgrade or replace the package, or add a reviewed exception to security/audit-exceptions.json'
      : `npm audit passed: ${blocking.length} high/critical advisories, ${excepted} covered by exceptions`,
  );
  return { exitCode: isFailing ? 1 : 0, lines };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDate(value: string): boolean {
  return DATE_PATTERN.test(value) && new Date(`${value}T00:00:00Z`).toISOString().startsWith(value);
}

function runNpmAudit(): string {
  // --offline=false: an offline npm "audits" nothing and prints an empty, passing report.
  const result = spawnSync('npm', ['audit', '--json', '--offline=false'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.error) throw result.error;
  // npm exits non-zero both for findings and for errors; the JSON says which.
  return result.stdout;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      input: { type: 'string' },
      exceptions: { type: 'string', default: 'security/audit-exceptions.json' },
    },
  });
  const today = new Date().toISOString().slice(0, 10);
  const { exceptions, problems } = parseExceptions(readFileSync(values.exceptions, 'utf8'), today);
  const stdout = values.input === undefined ? runNpmAudit() : readFileSync(values.input, 'utf8');
  const decision = decideAudit({
    audit: parseAuditOutput(stdout),
    exceptions,
    exceptionProblems: problems,
    isAuditRequired: process.env.KEEL_AUDIT_REQUIRED === '1',
  });
  for (const line of decision.lines) process.stdout.write(`${line}\n`);
  process.exitCode = decision.exitCode;
}
