import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '@keel/platform/audit';
import { describe, expect, it } from 'vitest';
import {
  assertArchiveDownloadable,
  type DataExport,
  decodeConsentCursor,
  encodeConsentCursor,
  expiryOf,
  stateOf,
  toAccessLogEntry,
} from './compliance.ts';
import { type ArchiveSources, buildExportArchive, DATA_EXPORT_FORMAT } from './data-export-archive.ts';

function buildAuditEvent(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: '1',
    occurredAt: new Date('2030-06-01T12:00:00.000Z'),
    actorType: 'user',
    actorId: 'doctor-1',
    action: 'telemedicine.consultation_viewed',
    resourceType: 'telemedicine.patient_record',
    resourceId: 'patient-1',
    outcome: 'success',
    requestId: null,
    ip: null,
    userAgent: null,
    changes: {
      resource: 'consultation',
      resource_id: 'consultation-1',
      operation: 'read',
      purpose: 'treatment',
      actor_roles: ['telemedicine:doctor'],
    },
    ...overrides,
  };
}

function buildExport(overrides: Partial<DataExport> = {}): DataExport {
  return {
    id: 'export-1',
    patientId: 'patient-1',
    status: 'READY',
    requestedAt: new Date('2030-06-01T00:00:00.000Z'),
    completedAt: new Date('2030-06-01T00:01:00.000Z'),
    expiresAt: new Date('2030-06-08T00:01:00.000Z'),
    ...overrides,
  };
}

describe('toAccessLogEntry', () => {
  it('takes the resource, purpose, operation and roles from the audit row’s changes', () => {
    expect(toAccessLogEntry(buildAuditEvent())).toEqual({
      occurredAt: new Date('2030-06-01T12:00:00.000Z'),
      actorId: 'doctor-1',
      actorType: 'user',
      actorRoles: ['telemedicine:doctor'],
      action: 'telemedicine.consultation_viewed',
      resource: 'consultation',
      resourceId: 'consultation-1',
      purpose: 'treatment',
      operation: 'read',
    });
  });

  it('turns missing or malformed changes into nulls rather than failing', () => {
    expect(toAccessLogEntry(buildAuditEvent({ changes: null }))).toMatchObject({
      actorRoles: [],
      resource: null,
      resourceId: null,
      purpose: null,
      operation: null,
    });
    expect(
      toAccessLogEntry(
        buildAuditEvent({ changes: { actor_roles: ['a', 3], operation: 'delete', resource: { x: 1 } } }),
      ),
    ).toMatchObject({ actorRoles: ['a'], operation: null, resource: null });
  });
});

describe('data export state', () => {
  it('expires seven days after completion', () => {
    expect(expiryOf(new Date('2030-06-01T00:00:00.000Z'))).toEqual(new Date('2030-06-08T00:00:00.000Z'));
  });

  it('reads a READY export as EXPIRED from its expiry on', () => {
    const dataExport = buildExport();
    expect(stateOf(dataExport, new Date('2030-06-08T00:00:59.999Z'))).toBe('READY');
    expect(stateOf(dataExport, new Date('2030-06-08T00:01:00.000Z'))).toBe('EXPIRED');
    expect(stateOf(buildExport({ status: 'PENDING', expiresAt: null }), new Date('2040-01-01'))).toBe(
      'PENDING',
    );
  });

  it('allows a download only of a READY export that still has its archive', () => {
    const now = new Date('2030-06-02T00:00:00.000Z');
    expect(() => assertArchiveDownloadable(buildExport(), true, now)).not.toThrow();
    const refusals: [DataExport, boolean, string][] = [
      [
        buildExport({ status: 'PENDING', completedAt: null, expiresAt: null }),
        false,
        'telemedicine.export_not_ready',
      ],
      [buildExport({ status: 'FAILED', expiresAt: null }), false, 'telemedicine.export_failed'],
      [buildExport({ expiresAt: now }), true, 'telemedicine.export_expired'],
      [buildExport(), false, 'telemedicine.export_expired'],
    ];
    for (const [dataExport, hasArchive, code] of refusals) {
      expect(() => assertArchiveDownloadable(dataExport, hasArchive, now)).toThrowError(
        expect.objectContaining({ code }),
      );
    }
  });
});

describe('consent cursor', () => {
  it('round-trips and refuses anything it did not produce', () => {
    const cursor = { givenAt: '2030-06-01T12:00:00.123456Z', id: randomUUID() };
    expect(decodeConsentCursor(encodeConsentCursor(cursor))).toEqual(cursor);
    for (const forged of [
      'not base64 json',
      Buffer.from('[]').toString('base64url'),
      Buffer.from(JSON.stringify({ g: '2030-06-01', i: cursor.id })).toString('base64url'),
      Buffer.from(JSON.stringify({ g: cursor.givenAt, i: 'x' })).toString('base64url'),
    ]) {
      expect(() => decodeConsentCursor(forged)).toThrowError(
        expect.objectContaining({ code: 'telemedicine.invalid_cursor' }),
      );
    }
  });
});

describe('buildExportArchive', () => {
  const at = new Date('2030-06-01T00:00:00.000Z');
  // A fake that proves each value is decrypted under its own AAD.
  const decrypt = (ciphertext: string, aad: string) => `${ciphertext}@${aad}`;

  function buildSources(): ArchiveSources {
    return {
      exportId: 'export-1',
      generatedAt: at,
      patient: {
        id: 'patient-1',
        fullNameEncrypted: 'name',
        dateOfBirthEncrypted: 'dob',
        sex: 'female',
        phoneEncrypted: null,
        emergencyContactEncrypted: null,
        allergiesEncrypted: 'allergies',
        createdAt: at,
        updatedAt: at,
      },
      consultations: [
        {
          id: 'consultation-1',
          doctorId: 'doctor-1',
          doctorName: 'Dr One',
          status: 'COMPLETED',
          startsAt: at,
          endsAt: at,
          specialty: 'cardiology',
          feeMinor: 5000,
          currency: 'EUR',
          reasonEncrypted: 'reason',
          clinicalNotesEncrypted: null,
          consentVersion: 'v1',
          consentedAt: at,
          startedAt: null,
          completedAt: at,
          cancelledAt: null,
          cancelledBy: null,
          cancelReason: null,
          expiredReason: null,
          createdAt: at,
        },
      ],
      prescriptions: [],
      payments: [
        {
          id: 'payment-1',
          consultationId: 'consultation-1',
          provider: 'fake',
          amountMinor: 5000,
          currency: 'EUR',
          status: 'PARTIALLY_REFUNDED',
          refundedMinor: 1000,
          failureCode: null,
          createdAt: at,
          updatedAt: at,
        },
      ],
      refunds: [
        {
          id: 'refund-1',
          paymentId: 'payment-1',
          amountMinor: 1000,
          reason: 'admin',
          status: 'SUCCEEDED',
          createdAt: at,
        },
      ],
      reviews: [],
      consents: [],
      accessLog: [],
    };
  }

  it('decrypts each field under its own AAD and nests refunds under their payment', () => {
    const archive = buildExportArchive(buildSources(), decrypt);
    expect(archive.format).toBe(DATA_EXPORT_FORMAT);
    expect(archive.profile).toMatchObject({
      full_name: 'name@telemedicine.patients:full_name:patient-1',
      date_of_birth: 'dob@telemedicine.patients:date_of_birth:patient-1',
      phone: null,
      allergies: 'allergies@telemedicine.patients:allergies:patient-1',
    });
    expect(archive.consultations[0]).toMatchObject({
      reason: 'reason@telemedicine.consultations:reason:consultation-1',
      clinical_notes: null,
    });
    expect(archive.payments[0]?.refunds).toEqual([
      {
        id: 'refund-1',
        amount_minor: 1000,
        reason: 'admin',
        status: 'SUCCEEDED',
        created_at: at.toISOString(),
      },
    ]);
  });

  it('parses a prescription’s JSON content, keeping text that is not JSON', () => {
    const sources = buildSources();
    const prescription = {
      id: 'prescription-1',
      consultationId: 'consultation-1',
      doctorId: 'doctor-1',
      version: 1,
      supersedesId: null,
      status: 'ISSUED' as const,
      contentEncrypted: 'content',
      documentDigest: 'digest',
      signature: 'signature',
      signingKeyId: 'key-1',
      issuedAt: at,
      supersededAt: null,
    };
    const archive = buildExportArchive({ ...sources, prescriptions: [prescription] }, () => '{"items":[]}');
    expect(archive.prescriptions[0]?.content).toEqual({ items: [] });
    const unparsable = buildExportArchive({ ...sources, prescriptions: [prescription] }, () => 'plain text');
    expect(unparsable.prescriptions[0]?.content).toBe('plain text');
  });
});
