import { describe, expect, it } from 'vitest';
import { REDACTED, redactChanges } from './audit.redact.ts';

describe('redactChanges', () => {
  it('masks the built-in sensitive keys and keeps the key so the change stays visible', () => {
    const redacted = redactChanges({
      password: 'hunter2',
      passwordHash: 'x',
      new_password: 'y',
      accessToken: 't',
      refresh_token: 't',
      clientSecret: 's',
      otp: '123456',
      otpCode: '123456',
      mfa_enabled: true,
      apiKey: 'k',
      'x-api-key': 'k',
      ssn: '078-05-1120',
      privateKey: 'pem',
      Authorization: 'Bearer abc',
    });
    for (const value of Object.values(redacted)) expect(value).toBe(REDACTED);
  });

  it('keeps ordinary fields, including words that merely contain a sensitive word', () => {
    const changes = {
      email: { from: 'a@example.com', to: 'b@example.com' },
      monkey: 'banana',
      hotpot: 'soup',
      keyboard: 'qwerty',
      count: 3,
      active: false,
      note: null,
    };
    expect(redactChanges(changes)).toEqual(changes);
  });

  it('masks sensitive keys at any depth, inside arrays too', () => {
    const redacted = redactChanges({
      profile: { credentials: { token: 'a' }, name: 'Ada' },
      devices: [{ name: 'phone', totp: { secret: 'b' } }],
    });
    expect(redacted).toEqual({
      profile: { credentials: REDACTED, name: 'Ada' },
      devices: [{ name: 'phone', totp: REDACTED }],
    });
  });

  it('masks the keys the caller lists, ignoring case and separators', () => {
    const redacted = redactChanges(
      { date_of_birth: '1815-12-10', DateOfBirth: '1815-12-10', city: 'London' },
      { keys: ['dateOfBirth'] },
    );
    expect(redacted).toEqual({ date_of_birth: REDACTED, DateOfBirth: REDACTED, city: 'London' });
  });

  it('masks a whole { from, to } pair when its key is sensitive', () => {
    expect(redactChanges({ password: { from: 'old', to: 'new' } })).toEqual({ password: REDACTED });
  });

  it('returns JSON-safe values: dates as ISO strings, bigints as strings, no undefined or functions', () => {
    const redacted = redactChanges({
      at: new Date('2025-01-02T03:04:05.678Z'),
      big: 12n,
      missing: undefined,
      callback: () => 1,
      notANumber: Number.NaN,
    });
    expect(redacted).toEqual({ at: '2025-01-02T03:04:05.678Z', big: '12', notANumber: null });
  });

  it('replaces NUL characters, which Postgres jsonb rejects', () => {
    expect(redactChanges({ 'na\u0000me': 'a\u0000b' })).toEqual({ 'na\uFFFDme': 'a\uFFFDb' });
  });

  it('cuts cycles instead of recursing forever, and keeps an object shared by two keys', () => {
    const shared = { value: 1 };
    const cyclic: Record<string, unknown> = { shared, again: shared };
    cyclic.self = cyclic;
    expect(redactChanges(cyclic)).toEqual({ shared: { value: 1 }, again: { value: 1 }, self: '[truncated]' });
  });

  it('does not change its input', () => {
    const input = { password: 'hunter2', nested: { token: 'x' } };
    redactChanges(input);
    expect(input).toEqual({ password: 'hunter2', nested: { token: 'x' } });
  });
});
