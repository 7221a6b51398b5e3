import { randomBytes } from 'node:crypto';
import { NobleCryptoPlugin, ScureBase32Plugin, TOTP } from 'otplib';
import { toString as renderQrCode } from 'qrcode';
import { MfaError } from './mfa.errors.ts';

/** RFC 6238 defaults, and the only parameters every authenticator app honours. */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** RFC 4226 §4 recommends a 160-bit shared secret. */
const SECRET_BYTES = 20;
/** RFC 4226 §4 requires at least 128 bits; otplib refuses more than 64 bytes. */
const MIN_SECRET_BYTES = 16;
const MAX_SECRET_BYTES = 64;
const DEFAULT_WINDOW = 1;
const MAX_WINDOW = 10;

const CODE_PATTERN = /^[0-9]{6}$/;
const BASE32_PATTERN = /^[A-Z2-7]+=*$/;

const base32 = new ScureBase32Plugin();
// HMAC-SHA1 and the constant-time XOR comparison of the generated and offered
// code come from otplib (@otplib/core constantTimeEqual); the key is passed as
// bytes so otplib never sees, or puts into an error message, the base32 text.
const otp = new TOTP({
  crypto: new NobleCryptoPlugin(),
  base32,
  algorithm: 'sha1',
  digits: TOTP_DIGITS,
  period: TOTP_PERIOD_SECONDS,
});

export type TotpVerification = { isValid: true; timeStep: number } | { isValid: false };

const INVALID: TotpVerification = Object.freeze({ isValid: false });

export type Totp = {
  /** A new random base32 secret (160 bits, RFC 4226 recommendation), upper case, no padding. */
  generateSecret(): string;
  /**
   * `otpauth://totp/<issuer>:<account>?secret=..&issuer=..&algorithm=SHA1&digits=6&period=30`,
   * issuer and account percent-encoded. Neither may contain a colon (Key URI format).
   */
  keyUri(input: { issuer: string; accountName: string; secret: string }): string;
  /** The otpauth URI as a QR code, SVG markup. */
  qrCodeSvg(uri: string): Promise<string>;
  /**
   * Checks a 6-digit code against the secret at `clock.now()`, accepting ±`window` steps of drift.
   * Returns the matched time step (`floor(unixSeconds / 30)` of the matching window) so the caller
   * can refuse any code whose step is <= the last accepted step (replay prevention is the caller's
   * job, done by a conditional UPDATE in the database). A code that is not exactly 6 ASCII digits
   * is `{ isValid: false }`; a stored secret that is not valid base32 throws `mfa.invalid_secret`.
   * `afterTimeStep`: matches at steps <= it are treated as invalid.
   */
  verify(input: { secret: string; code: string; afterTimeStep?: number }): Promise<TotpVerification>;
  /** For tests and the demo: the code for a given time. */
  generate(secret: string, at: Date): Promise<string>;
};

/**
 * TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) for authenticator-app
 * enrolment and sign-in. Holds no secrets: each call gets the user's secret.
 *
 * @example
 * const totp = createTotp({ clock: { now: () => new Date() } });
 * const secret = totp.generateSecret(); // store encrypted, pending until first verify
 * const uri = totp.keyUri({ issuer: 'Keel', accountName: 'ada@example.com', secret });
 * const svg = await totp.qrCodeSvg(uri);
 * const result = await totp.verify({ secret, code: '287082', afterTimeStep: lastAcceptedStep });
 * if (result.isValid) {
 *   // update ... set last_time_step = result.timeStep where last_time_step < result.timeStep
 * }
 */
export function createTotp(options: { clock: { now(): Date }; window?: number }): Totp {
  const { clock } = options;
  const window = options.window ?? DEFAULT_WINDOW;
  if (!Number.isSafeInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw new MfaError('mfa.invalid_option', `The TOTP window must be an integer from 0 to ${MAX_WINDOW}`);
  }

  return Object.freeze({
    generateSecret(): string {
      return base32.encode(randomBytes(SECRET_BYTES), { padding: false });
    },

    keyUri(input: { issuer: string; accountName: string; secret: string }): string {
      const { issuer, accountName } = input;
      assertLabelPart(issuer, 'issuer');
      assertLabelPart(accountName, 'accountName');
      decodeSecret(input.secret);
      const secret = input.secret.toUpperCase().replace(/=+$/, '');
      // Written out in full rather than via otplib's generateURI, which leaves out
      // default parameters and does not escape a colon inside issuer or account.
      // encodeURIComponent, not URLSearchParams: some authenticators show '+' literally.
      const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(accountName)}`;
      const query = [
        `secret=${secret}`,
        `issuer=${encodeURIComponent(issuer)}`,
        'algorithm=SHA1',
        `digits=${TOTP_DIGITS}`,
        `period=${TOTP_PERIOD_SECONDS}`,
      ].join('&');
      return `otpauth://totp/${label}?${query}`;
    },

    qrCodeSvg(uri: string): Promise<string> {
      // Medium error correction: the URI (~130 characters) stays a small symbol that phones read easily.
      return renderQrCode(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 });
    },

    async verify(input: { secret: string; code: string; afterTimeStep?: number }): Promise<TotpVerification> {
      const { code, afterTimeStep } = input;
      const key = decodeSecret(input.secret);
      if (!CODE_PATTERN.test(code)) return INVALID;
      const epoch = toUnixSeconds(clock.now());
      const newestStep = Math.floor(epoch / TOTP_PERIOD_SECONDS) + window;
      if (afterTimeStep !== undefined) {
        if (!Number.isSafeInteger(afterTimeStep)) {
          throw new MfaError('mfa.invalid_option', 'afterTimeStep must be an integer time step');
        }
        // otplib throws when afterTimeStep is at or past the newest step it would try;
        // no code can be accepted then, which is an ordinary refusal, not a fault.
        if (afterTimeStep >= newestStep) return INVALID;
      }
      const result = await otp.verify(code, {
        secret: key,
        epoch,
        // otplib takes drift in seconds; window * period reaches exactly `window` steps each way.
        epochTolerance: window * TOTP_PERIOD_SECONDS,
        // A negative last step refuses nothing; otplib rejects negative values, so leave it out.
        afterTimeStep: afterTimeStep !== undefined && afterTimeStep >= 0 ? afterTimeStep : undefined,
      });
      return result.valid ? { isValid: true, timeStep: result.timeStep } : INVALID;
    },

    generate(secret: string, at: Date): Promise<string> {
      return otp.generate({ secret: decodeSecret(secret), epoch: toUnixSeconds(at) });
    },
  });
}

/** Decodes a base32 secret to its key bytes; errors say what is wrong, never what the secret is. */
function decodeSecret(secret: string): Uint8Array {
  const normalised = secret.toUpperCase();
  if (!BASE32_PATTERN.test(normalised)) {
    throw new MfaError('mfa.invalid_secret', 'The TOTP secret is not base32 (A-Z, 2-7)');
  }
  let key: Uint8Array;
  try {
    key = base32.decode(normalised);
  } catch {
    // The plugin's message can quote characters of the secret; drop it.
    throw new MfaError('mfa.invalid_secret', 'The TOTP secret is not valid base32');
  }
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new MfaError(
      'mfa.invalid_secret',
      `The TOTP secret must decode to ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes, got ${key.length}`,
    );
  }
  return key;
}

function assertLabelPart(value: string, name: 'issuer' | 'accountName'): void {
  // The Key URI format splits the label at the first colon (literal or %3A), so a
  // colon inside either part would move the split; an empty part shows as nothing.
  if (value.trim() === '' || value.includes(':')) {
    throw new MfaError('mfa.invalid_option', `The TOTP ${name} must be non-empty and contain no colon`);
  }
}

function toUnixSeconds(at: Date): number {
  const milliseconds = at.getTime();
  if (!Number.isFinite(milliseconds) || milliseconds < 0) {
    throw new MfaError('mfa.invalid_option', 'The TOTP time must be a valid date after 1970');
  }
  return Math.floor(milliseconds / 1000);
}
