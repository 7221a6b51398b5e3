import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalEventJson, computeSealHash, GENESIS_HASH, type SealedEventColumns } from './audit.chain.ts';

function buildColumns(overrides: Partial<SealedEventColumns> = {}): SealedEventColumns {
  return {
    id: '42',
    occurred_at: '2025-03-04T05:06:07.123456Z',
    actor_type: 'user',
    actor_id: 'user-1',
    action: 'auth.login_succeeded',
    resource_type: 'session',
    resource_id: null,
    outcome: 'success',
    request_id: 'req-1',
    ip: '192.0.2.1/32',
    user_agent: 'curl/8',
    changes: '{"mfa": "[redacted]"}',
    ...overrides,
  };
}

describe('canonicalEventJson', () => {
  it('sorts keys and writes every column as a JSON string or null, without whitespace', () => {
    expect(canonicalEventJson(buildColumns())).toBe(
      '{"action":"auth.login_succeeded","actor_id":"user-1","actor_type":"user",' +
        '"changes":"{\\"mfa\\": \\"[redacted]\\"}","id":"42","ip":"192.0.2.1/32",' +
        '"occurred_at":"2025-03-04T05:06:07.123456Z","outcome":"success","request_id":"req-1",' +
        '"resource_id":null,"resource_type":"session","user_agent":"curl/8"}',
    );
  });

  it('does not depend on the order the columns were read in', () => {
    const columns = buildColumns();
    const reversed = Object.fromEntries(Object.entries(columns).reverse()) as SealedEventColumns;
    expect(canonicalEventJson(reversed)).toBe(canonicalEventJson(columns));
  });
});

describe('computeSealHash', () => {
  it('is SHA-256 over the previous hash bytes followed by the canonical JSON', () => {
    const columns = buildColumns();
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.alloc(32), Buffer.from(canonicalEventJson(columns), 'utf8')]))
      .digest('hex');
    expect(computeSealHash(GENESIS_HASH, columns)).toBe(expected);
  });

  // A golden value: if this changes, every chain sealed so far stops verifying.
  it('keeps the hash format stable', () => {
    expect(computeSealHash(GENESIS_HASH, buildColumns())).toBe(
      '6d2cffb7dc22adc92d0ec68fc44894ad827b3dd1e88bd82f963ab6917754f2fa',
    );
  });

  it('changes when any column changes, when null becomes empty, or when the previous hash changes', () => {
    const base = computeSealHash(GENESIS_HASH, buildColumns());
    expect(computeSealHash(GENESIS_HASH, buildColumns({ action: 'auth.login_failed' }))).not.toBe(base);
    expect(computeSealHash(GENESIS_HASH, buildColumns({ changes: '{"mfa": "on"}' }))).not.toBe(base);
    expect(
      computeSealHash(GENESIS_HASH, buildColumns({ occurred_at: '2025-03-04T05:06:07.123457Z' })),
    ).not.toBe(base);
    expect(computeSealHash(GENESIS_HASH, buildColumns({ resource_id: '' }))).not.toBe(base);
    expect(computeSealHash('f'.repeat(64), buildColumns())).not.toBe(base);
  });
});
