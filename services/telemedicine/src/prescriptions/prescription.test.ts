import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  buildDocument,
  canonicalJson,
  digestOf,
  isAuthentic,
  type PrescriptionDocument,
  parseDocument,
  signedBytesOf,
} from './prescription.ts';

function buildTestDocument(overrides: Partial<PrescriptionDocument> = {}): PrescriptionDocument {
  return {
    ...buildDocument({
      id: '0190a1b2-0000-7000-8000-000000000001',
      version: 1,
      supersedesId: null,
      consultationId: '0190a1b2-0000-7000-8000-000000000002',
      patientId: '0190a1b2-0000-7000-8000-000000000003',
      issuedAt: new Date('2030-03-01T09:20:00.000Z'),
      doctor: { id: '0190a1b2-0000-7000-8000-000000000004', fullName: 'Dr Ada', registrationNumber: 'REG-1' },
      content: {
        diagnosis: 'Pharyngitis "acute"',
        advice: 'Rest\nFluids',
        items: [
          {
            medicine: 'Amoxicillin',
            strength: '500 mg',
            dosage: '1 capsule',
            frequency: 'tid',
            duration: '7 days',
            instructions: 'après les repas',
          },
        ],
      },
    }),
    ...overrides,
  };
}

describe('canonicalJson', () => {
  it('sorts keys at every level, keeps array order and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [{ z: true, y: null }, 'x'], c: { e: 'é', d: '"\n' } })).toBe(
      '{"a":[{"y":null,"z":true},"x"],"b":1,"c":{"d":"\\"\\n","e":"é"}}',
    );
  });

  it('writes the same bytes whatever order the keys were built in', () => {
    const document = buildTestDocument();
    const reordered = Object.fromEntries(Object.entries(document).reverse()) as PrescriptionDocument;
    expect(signedBytesOf(reordered).equals(signedBytesOf(document))).toBe(true);
    expect(parseDocument(JSON.stringify(reordered))).toEqual(document);
  });
});

describe('signature over the canonical document', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const verifyWith = (message: Buffer, signature: string) =>
    verify(null, message, publicKey, Buffer.from(signature, 'base64url'));

  function signed(document: PrescriptionDocument) {
    const bytes = signedBytesOf(document);
    return {
      id: document.id,
      documentDigest: digestOf(bytes),
      signature: sign(null, bytes, privateKey).toString('base64url'),
    };
  }

  it('is authentic as stored, and verifies offline with the published JWK', () => {
    const document = buildTestDocument();
    const stored = signed(document);
    expect(isAuthentic(stored, document, verifyWith)).toBe(true);

    const jwk = publicKey.export({ format: 'jwk' });
    const fromJwk = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
    expect(
      verify(
        null,
        Buffer.from(canonicalJson(JSON.parse(JSON.stringify(document))), 'utf8'),
        fromJwk,
        Buffer.from(stored.signature, 'base64url'),
      ),
    ).toBe(true);
  });

  it('is not authentic once the document, digest, signature or id differ', () => {
    const document = buildTestDocument();
    const stored = signed(document);
    expect(isAuthentic(stored, buildTestDocument({ advice: 'Rest' }), verifyWith)).toBe(false);
    expect(isAuthentic({ ...stored, documentDigest: '0'.repeat(64) }, document, verifyWith)).toBe(false);
    const other = signed(buildTestDocument({ diagnosis: 'Other' }));
    expect(isAuthentic({ ...stored, signature: other.signature }, document, verifyWith)).toBe(false);
    expect(isAuthentic({ ...stored, id: '0190a1b2-0000-7000-8000-00000000000f' }, document, verifyWith)).toBe(
      false,
    );
  });
});

describe('parseDocument', () => {
  it('refuses what is not a prescription document', () => {
    expect(parseDocument('not json')).toBeUndefined();
    expect(parseDocument('null')).toBeUndefined();
    expect(parseDocument(JSON.stringify({ ...buildTestDocument(), doctor: null }))).toBeUndefined();
    expect(parseDocument(JSON.stringify({ ...buildTestDocument(), items: 'none' }))).toBeUndefined();
  });
});
