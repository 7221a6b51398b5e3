import { describe, expect, it } from 'vitest';
import { REDACTED } from './audit.redact.ts';
import {
  type AuditEventInput,
  decodeCursor,
  encodeCursor,
  REQUEST_ID_MAX_LENGTH,
  toAuditEventRow,
  USER_AGENT_MAX_LENGTH,
} from './audit.ts';

function buildInput(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    actorType: 'user',
    actorId: 'user-1',
    action: 'users.email_changed',
    resourceType: 'user',
    resourceId: 'user-1',
    outcome: 'success',
    ...overrides,
  };
}

describe('toAuditEventRow', () => {
  it('redacts changes with the built-in keys and the keys the caller lists', () => {
    const row = toAuditEventRow(
      buildInput({ changes: { password: 'x', phone: { from: '1', to: '2' } }, redactKeys: ['phone'] }),
    );
    expect(row.changes).toEqual({ password: REDACTED, phone: REDACTED });
  });

  it(`truncates the user agent to ${USER_AGENT_MAX_LENGTH} characters and the request id to ${REQUEST_ID_MAX_LENGTH}`, () => {
    const row = toAuditEventRow(buildInput({ userAgent: 'a'.repeat(5000), requestId: 'r'.repeat(500) }));
    expect(row.userAgent).toHaveLength(USER_AGENT_MAX_LENGTH);
    expect(row.requestId).toHaveLength(REQUEST_ID_MAX_LENGTH);
  });

  it('never cuts a surrogate pair in half when truncating', () => {
    const userAgent = `${'a'.repeat(USER_AGENT_MAX_LENGTH - 1)}😀tail`;
    const row = toAuditEventRow(buildInput({ userAgent }));
    expect(row.userAgent).toBe('a'.repeat(USER_AGENT_MAX_LENGTH - 1));
  });

  it('keeps valid IPv4 and IPv6 addresses and drops anything else instead of failing the write', () => {
    expect(toAuditEventRow(buildInput({ ip: '192.0.2.7' })).ip).toBe('192.0.2.7');
    expect(toAuditEventRow(buildInput({ ip: '2001:db8::1' })).ip).toBe('2001:db8::1');
    expect(toAuditEventRow(buildInput({ ip: '::ffff:192.0.2.7' })).ip).toBe('::ffff:192.0.2.7');
    expect(toAuditEventRow(buildInput({ ip: 'unknown' })).ip).toBeNull();
    expect(toAuditEventRow(buildInput({ ip: '192.0.2.7, 10.0.0.1' })).ip).toBeNull();
    expect(toAuditEventRow(buildInput({ ip: 'fe80::1%eth0' })).ip).toBeNull();
  });

  it('replaces NUL characters and stores empty optional text as null', () => {
    const row = toAuditEventRow(buildInput({ userAgent: 'a\u0000b', resourceId: '', requestId: undefined }));
    expect(row.userAgent).toBe('a\uFFFDb');
    expect(row.resourceId).toBeNull();
    expect(row.requestId).toBeNull();
  });
});

describe('audit cursors', () => {
  it('decodes what it encodes, keeping microseconds', () => {
    const cursor = { occurredAt: '2025-03-04T05:06:07.123456Z', id: '9007199254740993' };
    const encoded = encodeCursor(cursor);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(encoded)).toEqual(cursor);
  });

  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  it.each([
    ['not base64 JSON', '!!!'],
    ['JSON of the wrong shape', encode({ occurredAt: '2025-03-04T05:06:07.123456Z', id: '1' })],
    ['a time without microseconds', encode(['2025-03-04T05:06:07.123Z', '1'])],
    ['a date that does not exist', encode(['2025-02-30T05:06:07.123456Z', '1'])],
    ['a non-numeric id', encode(['2025-03-04T05:06:07.123456Z', '1 or 1=1'])],
    ['an id beyond bigint', encode(['2025-03-04T05:06:07.123456Z', '9223372036854775808'])],
    ['a numeric id', encode(['2025-03-04T05:06:07.123456Z', 1])],
    ['an oversized value', 'A'.repeat(5000)],
  ])('rejects %s with audit.invalid_cursor', (_case, value) => {
    expect(() => decodeCursor(value)).toThrow(
      expect.objectContaining({ kind: 'invalid', code: 'audit.invalid_cursor' }),
    );
  });
});
