import { createHash } from 'node:crypto';

// A prescription is a signed document. What is signed is its canonical JSON
// (keys sorted at every level, no whitespace), so anyone holding the document
// and the public key can check it, whatever order a JSON library writes keys in.

export type PrescriptionItem = {
  medicine: string;
  strength: string;
  dosage: string;
  frequency: string;
  duration: string;
  instructions: string;
};

/** What the doctor writes; the rest of the document is the server's. */
export type PrescriptionContent = { diagnosis: string; advice: string; items: PrescriptionItem[] };

/** The signed document, snake_case as it is serialised and signed. */
export type PrescriptionDocument = {
  id: string;
  version: number;
  supersedes_id: string | null;
  consultation_id: string;
  patient_id: string;
  issued_at: string;
  doctor: { id: string; full_name: string; registration_number: string };
  diagnosis: string;
  advice: string;
  items: PrescriptionItem[];
};

export type PrescriptionStatus = 'ISSUED' | 'SUPERSEDED';

/** A stored prescription, content still encrypted. */
export type StoredPrescription = {
  id: string;
  consultationId: string;
  patientId: string;
  doctorId: string;
  version: number;
  supersedesId: string | null;
  supersededById: string | null;
  status: PrescriptionStatus;
  encryptedContent: string;
  documentDigest: string;
  signature: string;
  signingKeyId: string;
  issuedAt: Date;
  supersededAt: Date | null;
};

/** A prescription as its participants see it: the decrypted document and its signature. */
export type Prescription = Omit<StoredPrescription, 'encryptedContent'> & { document: PrescriptionDocument };

/** A new prescription, signed and encrypted, ready to insert. */
export type SignedPrescription = {
  document: PrescriptionDocument;
  encryptedContent: string;
  documentDigest: string;
  signature: string;
  signingKeyId: string;
};

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * JSON with object keys sorted (by UTF-16 code unit, as `Array.prototype.sort`
 * does) at every level and no insignificant whitespace; arrays keep their order.
 */
export function canonicalJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] as Json)}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value))
    throw new Error('canonicalJson: non-finite number');
  return JSON.stringify(value);
}

/** The bytes that are signed: the document's canonical JSON in UTF-8. */
export function signedBytesOf(document: PrescriptionDocument): Buffer {
  return Buffer.from(canonicalJson(document as unknown as Json), 'utf8');
}

/** SHA-256 (hex) of the signed bytes: stored next to the signature so a changed document shows. */
export function digestOf(signedBytes: Buffer): string {
  return createHash('sha256').update(signedBytes).digest('hex');
}

export function buildDocument(parts: {
  id: string;
  version: number;
  supersedesId: string | null;
  consultationId: string;
  patientId: string;
  issuedAt: Date;
  doctor: { id: string; fullName: string; registrationNumber: string };
  content: PrescriptionContent;
}): PrescriptionDocument {
  return {
    id: parts.id,
    version: parts.version,
    supersedes_id: parts.supersedesId,
    consultation_id: parts.consultationId,
    patient_id: parts.patientId,
    issued_at: parts.issuedAt.toISOString(),
    doctor: {
      id: parts.doctor.id,
      full_name: parts.doctor.fullName,
      registration_number: parts.doctor.registrationNumber,
    },
    diagnosis: parts.content.diagnosis,
    advice: parts.content.advice,
    items: parts.content.items.map((item) => ({
      medicine: item.medicine,
      strength: item.strength,
      dosage: item.dosage,
      frequency: item.frequency,
      duration: item.duration,
      instructions: item.instructions,
    })),
  };
}

/** Reads back a stored document; undefined when it is not one (a corrupted or foreign value). */
export function parseDocument(text: string): PrescriptionDocument | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const candidate = parsed as Record<string, unknown>;
  const doctor = candidate.doctor as Record<string, unknown> | null | undefined;
  const isDocument =
    typeof candidate.id === 'string' &&
    typeof candidate.version === 'number' &&
    (candidate.supersedes_id === null || typeof candidate.supersedes_id === 'string') &&
    typeof candidate.consultation_id === 'string' &&
    typeof candidate.patient_id === 'string' &&
    typeof candidate.issued_at === 'string' &&
    typeof doctor === 'object' &&
    doctor !== null &&
    typeof doctor.id === 'string' &&
    typeof doctor.full_name === 'string' &&
    typeof doctor.registration_number === 'string' &&
    typeof candidate.diagnosis === 'string' &&
    typeof candidate.advice === 'string' &&
    Array.isArray(candidate.items);
  return isDocument ? (parsed as PrescriptionDocument) : undefined;
}

/**
 * Whether a stored prescription is what was signed: its document (as
 * decrypted) hashes to the stored digest and the signature verifies over it
 * with the signing key, and the document names the row it is stored in.
 */
export function isAuthentic(
  stored: Pick<StoredPrescription, 'id' | 'documentDigest' | 'signature'>,
  document: PrescriptionDocument,
  verify: (message: Buffer, signature: string) => boolean,
): boolean {
  if (document.id !== stored.id) return false;
  const bytes = signedBytesOf(document);
  if (digestOf(bytes) !== stored.documentDigest) return false;
  return verify(bytes, stored.signature);
}
