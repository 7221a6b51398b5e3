import type { AppError } from '../errors/index.ts';

const MAX_VERSION = 2_147_483_647;

/** The strong ETag of a row version (an `integer` column bumped on every change). */
export function formatVersionEtag(version: number): string {
  return `"${version}"`;
}

/**
 * Reads an `If-Match` header against integer row versions: the version it
 * names (`"3"`; also weak `W/"3"` with `isWeakAccepted`, for resources whose
 * version is the representation's whole identity), `'*'` for "any current
 * version", or undefined when the header is absent. Anything else (a list, a non-version tag) throws `invalid()`: a
 * client's optimistic-concurrency check must never be silently ignored.
 *
 * @example
 * const expected = parseIfMatchVersion(request.headers['if-match'], invalidIfMatch);
 * if (expected !== undefined && expected !== '*' && expected !== row.version) throw versionMismatch(row.version);
 */
export function parseIfMatchVersion(
  header: string | undefined,
  invalid: () => AppError,
  options: { isWeakAccepted?: boolean } = {},
): number | '*' | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return '*';
  const pattern = options.isWeakAccepted ? /^(?:W\/)?"([1-9][0-9]{0,9})"$/ : /^"([1-9][0-9]{0,9})"$/;
  const match = pattern.exec(value);
  const version = match?.[1] === undefined ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(version) || version > MAX_VERSION) throw invalid();
  return version;
}
