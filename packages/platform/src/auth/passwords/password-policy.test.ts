import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPasswordPolicy, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './password-policy.ts';

// Lowercase letters not found together in the common-password list.
const filler = (codePoints: number) => 'xq'.repeat(codePoints).slice(0, codePoints);

describe('checkPasswordPolicy length', () => {
  it('rejects with too_short when the password has 11 code points', () => {
    expect(checkPasswordPolicy(filler(PASSWORD_MIN_LENGTH - 1))).toBe('too_short');
  });

  it('accepts a password of exactly 12 code points', () => {
    expect(checkPasswordPolicy(filler(PASSWORD_MIN_LENGTH))).toBeUndefined();
  });

  it('accepts a password of exactly 128 code points', () => {
    expect(checkPasswordPolicy(filler(PASSWORD_MAX_LENGTH))).toBeUndefined();
  });

  it('rejects with too_long when the password has 129 code points', () => {
    expect(checkPasswordPolicy(filler(PASSWORD_MAX_LENGTH + 1))).toBe('too_long');
  });

  it('rejects with too_long when the password is megabytes long', () => {
    expect(checkPasswordPolicy(filler(4_000_000))).toBe('too_long');
  });

  it('counts each emoji as one code point, not two UTF-16 units', () => {
    const twelveEmoji = '🔑🐳🚀🌍🎲🧩🪐🍀🎯🦉🌵🔥';
    expect(twelveEmoji.length).toBe(24);
    expect(checkPasswordPolicy(twelveEmoji)).toBeUndefined();
    expect(checkPasswordPolicy(twelveEmoji.slice(0, 22))).toBe('too_short');
    expect(checkPasswordPolicy('🔑'.repeat(PASSWORD_MAX_LENGTH))).toBeUndefined();
    expect(checkPasswordPolicy('🔑'.repeat(PASSWORD_MAX_LENGTH + 1))).toBe('too_long');
  });

  it('counts length after NFC so a decomposed accent does not count twice', () => {
    // 11 code points once composed, 13 as typed with combining accents.
    const decomposed = 'e\u0301te\u0301xqxqxqxq';
    expect([...decomposed].length).toBe(PASSWORD_MIN_LENGTH + 1);
    expect(checkPasswordPolicy(decomposed)).toBe('too_short');
  });

  it('imposes no composition rules on a long lowercase passphrase', () => {
    expect(checkPasswordPolicy('correct horse battery staple')).toBeUndefined();
  });
});

describe('checkPasswordPolicy common passwords', () => {
  it('rejects with too_common when the password is in the list, whatever its case', () => {
    expect(checkPasswordPolicy('qwerty123456')).toBe('too_common');
    expect(checkPasswordPolicy('QWERTY123456')).toBe('too_common');
    expect(checkPasswordPolicy('1QAZ2wsx3EDC')).toBe('too_common');
  });

  it('accepts a password that only contains a common password', () => {
    expect(checkPasswordPolicy('qwerty123456 and then some')).toBeUndefined();
  });

  it('reports too_short before too_common for a short common password', () => {
    expect(checkPasswordPolicy('password')).toBe('too_short');
  });
});

describe('checkPasswordPolicy email', () => {
  it('rejects with contains_email when the password contains the email local part in any case', () => {
    expect(checkPasswordPolicy('my name is Ada.Lovelace!', { email: 'ada.lovelace@example.com' })).toBe(
      'contains_email',
    );
    expect(checkPasswordPolicy('xqxq-ada.lovelace-xqxq', { email: 'Ada.Lovelace@Example.com' })).toBe(
      'contains_email',
    );
  });

  it('ignores a local part shorter than 4 code points', () => {
    expect(checkPasswordPolicy('adaxqxqxqxqxqxq', { email: 'ada@example.com' })).toBeUndefined();
  });

  it('rejects with contains_email when the local part is exactly 4 code points', () => {
    expect(checkPasswordPolicy('xqxqxqalanxqxq', { email: 'alan@example.com' })).toBe('contains_email');
  });

  it('ignores the domain of the email', () => {
    expect(
      checkPasswordPolicy('i work at example.com', { email: 'ada.lovelace@example.com' }),
    ).toBeUndefined();
  });

  it('accepts the password when no email is given', () => {
    expect(checkPasswordPolicy('my name is ada.lovelace')).toBeUndefined();
  });
});

describe('common-passwords.txt', () => {
  const lines = readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8')
    .replace(/\n$/, '')
    .split('\n');

  it('has exactly 10,000 unique, non-empty, lowercase lines', () => {
    expect(lines).toHaveLength(10_000);
    expect(new Set(lines).size).toBe(10_000);
    expect(lines.filter((line) => line === '' || line.trim() !== line)).toEqual([]);
    expect(lines.filter((line) => line.toLowerCase() !== line)).toEqual([]);
  });
});
