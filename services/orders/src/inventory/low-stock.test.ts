import { describe, expect, it } from 'vitest';
import { hasCrossedBelowThreshold, type StockAfterChange } from './low-stock.ts';

const item = (overrides: Partial<StockAfterChange>): StockAfterChange => ({
  id: '00000000-0000-4000-8000-000000000001',
  outletId: '00000000-0000-4000-8000-000000000002',
  sku: 'BUN',
  name: 'Bun',
  onHand: 100,
  reserved: 0,
  lowStockThreshold: 10,
  availableDecrease: 1,
  ...overrides,
});

describe('hasCrossedBelowThreshold', () => {
  it('is true when the change took availability from the threshold to below it', () => {
    expect(hasCrossedBelowThreshold(item({ onHand: 100, reserved: 91, availableDecrease: 1 }))).toBe(true);
  });

  it('is true when one change jumps from well above to well below', () => {
    expect(hasCrossedBelowThreshold(item({ onHand: 100, reserved: 98, availableDecrease: 50 }))).toBe(true);
  });

  it('is false for a change that stays below an already crossed threshold', () => {
    expect(hasCrossedBelowThreshold(item({ onHand: 100, reserved: 95, availableDecrease: 2 }))).toBe(false);
  });

  it('is false when availability stays at or above the threshold', () => {
    expect(hasCrossedBelowThreshold(item({ onHand: 100, reserved: 90, availableDecrease: 5 }))).toBe(false);
  });

  it('is false for a change that raised availability (a restock or a cancellation)', () => {
    expect(hasCrossedBelowThreshold(item({ onHand: 5, reserved: 0, availableDecrease: -3 }))).toBe(false);
  });

  it('is false with a zero threshold until stock would be negative, which the database forbids', () => {
    expect(hasCrossedBelowThreshold(item({ onHand: 1, reserved: 1, lowStockThreshold: 0 }))).toBe(false);
  });
});
