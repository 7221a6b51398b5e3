import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { requestIdFor } from './request-id.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function requestWith(headers: Record<string, string | string[] | undefined>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe('requestIdFor', () => {
  it.each(['abc', 'req-123', '0f8fad5b-d9cb-469f-a165-70867728950e', 'trace.span:1_2', 'a'.repeat(128)])(
    'keeps the caller id %s when it is sane',
    (offered) => {
      expect(requestIdFor(requestWith({ 'x-request-id': offered }))).toBe(offered);
    },
  );

  it.each([
    ['empty', ''],
    ['too long', 'a'.repeat(129)],
    ['with spaces', 'hello world'],
    ['with a newline (log injection)', 'abc\ninjected: true'],
    ['with markup', '<script>'],
    ['non-ascii', 'idé'],
  ])('replaces an id that is %s with a fresh UUID', (_label, offered) => {
    const id = requestIdFor(requestWith({ 'x-request-id': offered }));
    expect(id).not.toBe(offered);
    expect(id).toMatch(UUID);
  });

  it('mints a UUID when the header is missing or repeated', () => {
    expect(requestIdFor(requestWith({}))).toMatch(UUID);
    expect(requestIdFor(requestWith({ 'x-request-id': ['a', 'b'] }))).toMatch(UUID);
  });

  it('mints a different id for each request without one', () => {
    expect(requestIdFor(requestWith({}))).not.toBe(requestIdFor(requestWith({})));
  });
});
