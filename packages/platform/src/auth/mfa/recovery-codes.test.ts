import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMfaError, type MfaError } from './mfa.errors.ts';
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODE_COUNT,
} from './recovery-codes.ts';

const CODE_FORMAT = /^[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}$/;

function catchMfaError(work: () => unknown): MfaError {
  try {
    work();
  } catch (error) {
    if (isMfaError(error)) return error;
    throw error;
  }
  throw new Error('expected an MfaError');
}

describe('generateRecoveryCodes', () => {
  it('returns ten distinct codes by default', () => {
    const codes = generateRecoveryCodes();
    expect(RECOVERY_CODE_COUNT).toBe(10);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
  });

  it('returns codes of four dash-separated groups of four unambiguous symbols', () => {
    for (const code of generateRecoveryCodes(50)) {
      expect(code).toMatch(CODE_FORMAT);
      expect(code).not.toMatch(/[01oli]/);
    }
  });

  it('carries at least 60 bits of entropy per code', () => {
    const [code] = generateRecoveryCodes(1);
    const symbols = normaliseRecoveryCode(code ?? '') ?? '';
    const alphabetSize = '23456789abcdefghjkmnpqrstuvwxyz'.length;
    expect(alphabetSize).toBe(31);
    expect(symbols.length * Math.log2(alphabetSize)).toBeGreaterThanOrEqual(60);
  });

  it('draws every symbol of the alphabet and no other', () => {
    const seen = new Set(generateRecoveryCodes(100).join('').replaceAll('-', ''));
    // 1,600 uniform draws from 31 symbols: missing one has probability ~31 · (30/31)^1600 ≈ 5e-22.
    expect([...seen].sort().join('')).toBe('23456789abcdefghjkmnpqrstuvwxyz');
  });

  it('returns a fresh set on every call', () => {
    const first = generateRecoveryCodes();
    const second = generateRecoveryCodes();
    expect(first.filter((code) => second.includes(code))).toEqual([]);
  });

  it('returns the requested number of codes', () => {
    expect(generateRecoveryCodes(3)).toHaveLength(3);
  });

  it.each([0, -1, 2.5, 101, Number.NaN])('rejects with mfa.invalid_option when count is %s', (count) => {
    expect(catchMfaError(() => generateRecoveryCodes(count)).code).toBe('mfa.invalid_option');
  });
});

describe('normaliseRecoveryCode', () => {
  it('maps a code as typed, upper case with spaces and dashes, to the canonical form of the generated code', () => {
    for (const code of generateRecoveryCodes()) {
      const typed = ` ${code.toUpperCase().replace('-', ' ').replace('-', '\t')} `;
      expect(normaliseRecoveryCode(typed)).toBe(code.replaceAll('-', ''));
      expect(normaliseRecoveryCode(typed)).toBe(normaliseRecoveryCode(code));
    }
  });

  it('maps the example K7QM 2X9F-HC4T-P8WN to k7qm2x9fhc4tp8wn', () => {
    expect(normaliseRecoveryCode('K7QM 2X9F-HC4T-P8WN')).toBe('k7qm2x9fhc4tp8wn');
    expect(normaliseRecoveryCode('k7qm2x9fhc4tp8wn')).toBe('k7qm2x9fhc4tp8wn');
  });

  it('strips Unicode dashes a phone keyboard may substitute', () => {
    expect(normaliseRecoveryCode('k7qm\u20132x9f\u2014hc4t\u2212p8wn')).toBe('k7qm2x9fhc4tp8wn');
  });

  it.each([
    ['empty', ''],
    ['only separators', ' - - '],
    ['too short (three groups)', 'k7qm-2x9f-hc4t'],
    ['too long', 'k7qm-2x9f-hc4t-p8wn-a'],
    ['a zero', 'k7qm-2x9f-hc4t-p80n'],
    ['an o', 'k7qm-2x9f-hc4t-p8on'],
    ['a one', 'k7qm-2x9f-hc4t-p81n'],
    ['an l', 'k7qm-2x9f-hc4t-p8ln'],
    ['an upper-case I', 'K7QM-2X9F-HC4T-P8IN'],
    ['punctuation', 'k7qm_2x9f_hc4t_p8wn'],
    ['a huge input', 'k'.repeat(10_000)],
  ])('returns undefined for %s', (_label, input) => {
    expect(normaliseRecoveryCode(input)).toBeUndefined();
  });
});

describe('hashRecoveryCode', () => {
  it('returns the SHA-256 hex of the canonical form', () => {
    expect(hashRecoveryCode('k7qm-2x9f-hc4t-p8wn')).toBe(
      createHash('sha256').update('k7qm2x9fhc4tp8wn').digest('hex'),
    );
  });

  it('returns the same hash every time for the same code', () => {
    const [code = ''] = generateRecoveryCodes(1);
    expect(hashRecoveryCode(code)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRecoveryCode(code)).toBe(hashRecoveryCode(code));
  });

  it('returns the same hash for the generated code and the code as typed', () => {
    const [code = ''] = generateRecoveryCodes(1);
    expect(hashRecoveryCode(code.toUpperCase().replaceAll('-', ' '))).toBe(hashRecoveryCode(code));
    expect(hashRecoveryCode(normaliseRecoveryCode(code) ?? '')).toBe(hashRecoveryCode(code));
  });

  it('returns different hashes for different codes', () => {
    const hashes = generateRecoveryCodes().map(hashRecoveryCode);
    expect(new Set(hashes).size).toBe(10);
    expect(hashRecoveryCode('k7qm-2x9f-hc4t-p8wn')).not.toBe(hashRecoveryCode('k7qm-2x9f-hc4t-p8wm'));
  });

  it('rejects with mfa.malformed_recovery_code of kind invalid when the input cannot be a code', () => {
    const error = catchMfaError(() => hashRecoveryCode('k7qm-2x9f-hc4t'));
    expect(error.code).toBe('mfa.malformed_recovery_code');
    expect(error.kind).toBe('invalid');
    expect(error.message).not.toContain('k7qm');
  });
});
