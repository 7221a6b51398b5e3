/**
 * A position in a list ordered by (timestamp, id): the last item's sort key.
 * `at` is the timestamp at full database precision (microseconds, UTC, as
 * `to_char(… at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` prints it):
 * a millisecond JavaScript Date would skip or repeat rows written within the
 * same millisecond.
 */
export type TimeIdCursor = { at: string; id: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MICROSECOND_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
// A real cursor is about 90 characters; refuse to decode anything much larger.
const MAX_CURSOR_LENGTH = 200;

/**
 * Opaque to clients: base64url of the sort key.
 *
 * @example
 * const next = encodeTimeIdCursor({ at: last.placedAtExact, id: last.id });
 */
export function encodeTimeIdCursor(cursor: TimeIdCursor): string {
  return Buffer.from(JSON.stringify({ t: cursor.at, i: cursor.id })).toString('base64url');
}

/**
 * The position `encodeTimeIdCursor` encoded, or undefined for anything it did
 * not produce (callers answer their feature's `invalid_cursor`).
 *
 * @example
 * const position = decodeTimeIdCursor(query.cursor) ?? throwInvalidCursor();
 */
export function decodeTimeIdCursor(value: string): TimeIdCursor | undefined {
  if (value.length > MAX_CURSOR_LENGTH) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { t, i } = parsed as { t?: unknown; i?: unknown };
  if (typeof t !== 'string' || typeof i !== 'string') return undefined;
  if (!MICROSECOND_TIMESTAMP.test(t) || Number.isNaN(Date.parse(t)) || !UUID.test(i)) return undefined;
  return { at: t, id: i };
}
