import { describe, expect, it } from 'vitest';
import { decodeTimeIdCursor, encodeTimeIdCursor } from './keyset-cursor.ts';

const position = { at: '2026-11-21T09:15:00.123456Z', id: '0193a000-0000-7000-8000-000000000d01' };

describe('time-id keyset cursors', () => {
  it('round-trips a position at microsecond precision', () => {
    expect(decodeTimeIdCursor(encodeTimeIdCursor(position))).toEqual(position);
  });

  it.each([
    ['not base64 JSON', '%%%'],
    ['JSON that is not an object', Buffer.from('42').toString('base64url')],
    ['a millisecond timestamp', encodeTimeIdCursor({ ...position, at: '2026-11-21T09:15:00.123Z' })],
    ['an impossible date', encodeTimeIdCursor({ ...position, at: '2026-13-41T09:15:00.123456Z' })],
    ['an id that is not a uuid', encodeTimeIdCursor({ ...position, id: '42' })],
    ['missing fields', Buffer.from(JSON.stringify({ t: position.at })).toString('base64url')],
    ['an oversized value', 'a'.repeat(201)],
  ])('refuses %s', (_case, value) => {
    expect(decodeTimeIdCursor(value)).toBeUndefined();
  });
});
