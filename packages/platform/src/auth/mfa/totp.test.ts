import { ScureBase32Plugin } from 'otplib';
import { describe, expect, it } from 'vitest';
import { isMfaError, type MfaError } from './mfa.errors.ts';
import { createTotp, TOTP_PERIOD_SECONDS } from './totp.ts';

/** RFC 6238 Appendix B: the SHA1 seed '12345678901234567890' (ASCII), in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
/** 5 seconds into step 56_666_667 (1_700_000_010 / 30). */
const NOW_SECONDS = 1_700_000_015;
const NOW_STEP = Math.floor(NOW_SECONDS / TOTP_PERIOD_SECONDS);

function buildTotp(options: { atSeconds?: number; window?: number } = {}) {
  const clock = { now: () => new Date((options.atSeconds ?? NOW_SECONDS) * 1000) };
  return createTotp(options.window === undefined ? { clock } : { clock, window: options.window });
}

function atStep(step: number, secondsIntoStep = 10): Date {
  return new Date((step * TOTP_PERIOD_SECONDS + secondsIntoStep) * 1000);
}

async function catchMfaError(work: () => unknown): Promise<MfaError> {
  try {
    await work();
  } catch (error) {
    if (isMfaError(error)) return error;
    throw error;
  }
  throw new Error('expected an MfaError');
}

describe('generateSecret', () => {
  it('returns 160 bits of base32 without padding', () => {
    const secret = buildTotp().generateSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(new ScureBase32Plugin().decode(secret)).toHaveLength(20);
  });

  it('returns a different secret on every call', () => {
    const totp = buildTotp();
    const secrets = new Set(Array.from({ length: 20 }, () => totp.generateSecret()));
    expect(secrets.size).toBe(20);
  });

  it('returns a secret that generate and verify accept', async () => {
    const totp = buildTotp();
    const secret = totp.generateSecret();
    const code = await totp.generate(secret, new Date(NOW_SECONDS * 1000));
    expect(await totp.verify({ secret, code })).toEqual({ isValid: true, timeStep: NOW_STEP });
  });
});

describe('keyUri', () => {
  it('builds an otpauth URI with every parameter and a percent-encoded label and issuer', () => {
    const uri = buildTotp().keyUri({
      issuer: 'Keel',
      accountName: 'ada+test@example.com',
      secret: RFC_SECRET,
    });
    expect(uri).toBe(
      `otpauth://totp/Keel:ada%2Btest%40example.com?secret=${RFC_SECRET}&issuer=Keel&algorithm=SHA1&digits=6&period=30`,
    );
    const parsed = new URL(uri);
    expect(parsed.protocol).toBe('otpauth:');
    expect(parsed.host).toBe('totp');
    expect(decodeURIComponent(parsed.pathname)).toBe('/Keel:ada+test@example.com');
    expect(Object.fromEntries(parsed.searchParams)).toEqual({
      secret: RFC_SECRET,
      issuer: 'Keel',
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
  });

  it('encodes spaces as %20, not +, in issuer and account', () => {
    const uri = buildTotp().keyUri({
      issuer: 'Keel Health',
      accountName: 'Ada Lovelace',
      secret: RFC_SECRET,
    });
    expect(uri).toContain('otpauth://totp/Keel%20Health:Ada%20Lovelace?');
    expect(uri).toContain('&issuer=Keel%20Health&');
    expect(uri).not.toContain('+');
  });

  it('puts a lower-case secret into the URI in upper case', () => {
    const uri = buildTotp().keyUri({ issuer: 'Keel', accountName: 'ada', secret: RFC_SECRET.toLowerCase() });
    expect(new URL(uri).searchParams.get('secret')).toBe(RFC_SECRET);
  });

  it('rejects with mfa.invalid_option when issuer or account contains a colon or is empty', async () => {
    const totp = buildTotp();
    for (const input of [
      { issuer: 'Keel:Prod', accountName: 'ada@example.com' },
      { issuer: 'Keel', accountName: 'ada:x@example.com' },
      { issuer: ' ', accountName: 'ada@example.com' },
      { issuer: 'Keel', accountName: '' },
    ]) {
      const error = await catchMfaError(() => totp.keyUri({ ...input, secret: RFC_SECRET }));
      expect(error.code).toBe('mfa.invalid_option');
    }
  });

  it('rejects with mfa.invalid_secret when the secret is not base32', async () => {
    const error = await catchMfaError(() =>
      buildTotp().keyUri({ issuer: 'Keel', accountName: 'ada', secret: 'not-a-secret-0189' }),
    );
    expect(error.code).toBe('mfa.invalid_secret');
  });
});

describe('qrCodeSvg', () => {
  it('renders the URI as SVG markup', async () => {
    const totp = buildTotp();
    const svg = await totp.qrCodeSvg(
      totp.keyUri({ issuer: 'Keel', accountName: 'ada@example.com', secret: RFC_SECRET }),
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });
});

describe('RFC 6238 test vectors (SHA1)', () => {
  // Appendix B gives 8-digit values; the 6-digit code is their last six digits.
  const vectors: Array<[seconds: number, eightDigits: string]> = [
    [59, '94287082'],
    [1_111_111_109, '07081804'],
    [1_111_111_111, '14050471'],
    [1_234_567_890, '89005924'],
    [2_000_000_000, '69279037'],
    [20_000_000_000, '65353130'],
  ];

  it.each(vectors)('generates the RFC code at T=%i', async (seconds, eightDigits) => {
    expect(await buildTotp().generate(RFC_SECRET, new Date(seconds * 1000))).toBe(eightDigits.slice(2));
  });

  it.each(vectors)('verifies the RFC code at T=%i and returns its step', async (seconds, eightDigits) => {
    const result = await buildTotp({ atSeconds: seconds }).verify({
      secret: RFC_SECRET,
      code: eightDigits.slice(2),
    });
    expect(result).toEqual({ isValid: true, timeStep: Math.floor(seconds / 30) });
  });

  it('generates 287082 at T=59', async () => {
    expect(await buildTotp().generate(RFC_SECRET, new Date(59_000))).toBe('287082');
  });
});

describe('verify', () => {
  it('accepts the current code and returns the current step', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: RFC_SECRET, code })).toEqual({ isValid: true, timeStep: NOW_STEP });
  });

  it('accepts the previous step code (client clock behind) and returns that step', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP - 1));
    expect(await totp.verify({ secret: RFC_SECRET, code })).toEqual({
      isValid: true,
      timeStep: NOW_STEP - 1,
    });
  });

  it('accepts the next step code (client clock ahead) and returns that step', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP + 1));
    expect(await totp.verify({ secret: RFC_SECRET, code })).toEqual({
      isValid: true,
      timeStep: NOW_STEP + 1,
    });
  });

  it('accepts drift of one step at both edges of the current step', async () => {
    const previous = await buildTotp().generate(RFC_SECRET, atStep(NOW_STEP - 1));
    const next = await buildTotp().generate(RFC_SECRET, atStep(NOW_STEP + 1));
    const atStart = buildTotp({ atSeconds: NOW_STEP * 30 });
    const atEnd = buildTotp({ atSeconds: NOW_STEP * 30 + 29 });
    for (const totp of [atStart, atEnd]) {
      expect(await totp.verify({ secret: RFC_SECRET, code: previous })).toEqual({
        isValid: true,
        timeStep: NOW_STEP - 1,
      });
      expect(await totp.verify({ secret: RFC_SECRET, code: next })).toEqual({
        isValid: true,
        timeStep: NOW_STEP + 1,
      });
    }
  });

  it('refuses a code from two steps before or after now', async () => {
    const totp = buildTotp();
    for (const step of [NOW_STEP - 2, NOW_STEP + 2]) {
      const code = await totp.generate(RFC_SECRET, atStep(step));
      expect(await totp.verify({ secret: RFC_SECRET, code })).toEqual({ isValid: false });
    }
  });

  it('refuses the previous step code when the window is 0', async () => {
    const totp = buildTotp({ window: 0 });
    const previous = await totp.generate(RFC_SECRET, atStep(NOW_STEP - 1));
    const current = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: RFC_SECRET, code: previous })).toEqual({ isValid: false });
    expect(await totp.verify({ secret: RFC_SECRET, code: current })).toEqual({
      isValid: true,
      timeStep: NOW_STEP,
    });
  });

  it('refuses a wrong six-digit code', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expect(await totp.verify({ secret: RFC_SECRET, code: wrong })).toEqual({ isValid: false });
  });

  it('refuses the right code under another secret', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: totp.generateSecret(), code })).toEqual({ isValid: false });
  });

  it.each(['12345', 'abcdef', '1234567', '', ' 12345', '12345 ', '١٢٣٤٥٦', '+12345', '12 345'])(
    'refuses malformed code %j without throwing',
    async (code) => {
      expect(await buildTotp().verify({ secret: RFC_SECRET, code })).toEqual({ isValid: false });
    },
  );

  it('refuses a current code padded with spaces even though its digits match', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: RFC_SECRET, code: ` ${code}` })).toEqual({ isValid: false });
  });

  it('accepts a lower-case secret like its upper-case form', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: RFC_SECRET.toLowerCase(), code })).toEqual({
      isValid: true,
      timeStep: NOW_STEP,
    });
  });

  it('rejects with mfa.invalid_secret, without quoting the secret, when the secret is not base32', async () => {
    const secret = 'GEZDGNBVGY3TQOJQ0189GEZDGNBVGY3T';
    const error = await catchMfaError(() => buildTotp().verify({ secret, code: '123456' }));
    expect(error.code).toBe('mfa.invalid_secret');
    expect(error.kind).toBe('internal');
    expect(error.message).not.toContain(secret);
  });

  it('rejects with mfa.invalid_secret when the secret is shorter than 128 bits', async () => {
    const error = await catchMfaError(() =>
      buildTotp().verify({ secret: 'GEZDGNBVGY3TQOJQ', code: '123456' }),
    );
    expect(error.code).toBe('mfa.invalid_secret');
  });
});

describe('verify with afterTimeStep', () => {
  it('refuses the current code when its step was already accepted', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    const first = await totp.verify({ secret: RFC_SECRET, code });
    expect(first).toEqual({ isValid: true, timeStep: NOW_STEP });
    expect(await totp.verify({ secret: RFC_SECRET, code, afterTimeStep: NOW_STEP })).toEqual({
      isValid: false,
    });
  });

  it('refuses a previous step code when a later step was already accepted', async () => {
    const totp = buildTotp();
    const previous = await totp.generate(RFC_SECRET, atStep(NOW_STEP - 1));
    expect(await totp.verify({ secret: RFC_SECRET, code: previous, afterTimeStep: NOW_STEP - 1 })).toEqual({
      isValid: false,
    });
  });

  it('accepts the next step code after the current step was accepted', async () => {
    const totp = buildTotp();
    const next = await totp.generate(RFC_SECRET, atStep(NOW_STEP + 1));
    expect(await totp.verify({ secret: RFC_SECRET, code: next, afterTimeStep: NOW_STEP })).toEqual({
      isValid: true,
      timeStep: NOW_STEP + 1,
    });
  });

  it('accepts the current code when only an older step was accepted', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: RFC_SECRET, code, afterTimeStep: NOW_STEP - 1 })).toEqual({
      isValid: true,
      timeStep: NOW_STEP,
    });
  });

  it('refuses every code, without throwing, when afterTimeStep is at or past the newest step in the window', async () => {
    const totp = buildTotp();
    const next = await totp.generate(RFC_SECRET, atStep(NOW_STEP + 1));
    for (const afterTimeStep of [NOW_STEP + 1, NOW_STEP + 5]) {
      expect(await totp.verify({ secret: RFC_SECRET, code: next, afterTimeStep })).toEqual({
        isValid: false,
      });
    }
  });

  it('treats a negative afterTimeStep as no earlier step', async () => {
    const totp = buildTotp();
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect(await totp.verify({ secret: RFC_SECRET, code, afterTimeStep: -1 })).toEqual({
      isValid: true,
      timeStep: NOW_STEP,
    });
  });

  it('rejects with mfa.invalid_option when afterTimeStep is not an integer', async () => {
    const error = await catchMfaError(() =>
      buildTotp().verify({ secret: RFC_SECRET, code: '123456', afterTimeStep: Number.NaN }),
    );
    expect(error.code).toBe('mfa.invalid_option');
  });
});

describe('createTotp', () => {
  it.each([-1, 1.5, 11, Number.NaN])(
    'rejects with mfa.invalid_option when the window is %s',
    async (window) => {
      const error = await catchMfaError(() => buildTotp({ window }));
      expect(error.code).toBe('mfa.invalid_option');
    },
  );

  it('uses the injected clock on every call', async () => {
    let seconds = NOW_SECONDS;
    const totp = createTotp({ clock: { now: () => new Date(seconds * 1000) } });
    const code = await totp.generate(RFC_SECRET, atStep(NOW_STEP));
    expect((await totp.verify({ secret: RFC_SECRET, code })).isValid).toBe(true);
    seconds += 2 * TOTP_PERIOD_SECONDS;
    expect((await totp.verify({ secret: RFC_SECRET, code })).isValid).toBe(false);
  });
});
