import { invalidName } from './outlet.errors.ts';

/** A kitchen of the chain. Everything it sells is priced in its one currency. */
export type Outlet = {
  id: string;
  name: string;
  /** ISO 4217. */
  currency: string;
  /** IANA zone its hours and reports use. */
  timeZone: string;
  isActive: boolean;
};

/** A menu item as customers see it, with whether the kitchen can make it right now. */
export type MenuEntry = {
  id: string;
  name: string;
  description: string;
  priceMinor: number;
  currency: string;
  /** Every component has at least its recipe quantity available (on hand − reserved). */
  isOrderable: boolean;
};

export type MenuComponent = { stockItemId: string; quantity: number };

/** A menu item as the catalogue stores it. */
export type MenuItem = {
  id: string;
  outletId: string;
  name: string;
  description: string;
  priceMinor: number;
  currency: string;
  isAvailable: boolean;
  components: MenuComponent[];
  createdAt: Date;
};

export type NewOutletInput = { name: string; currency: string; timeZone: string };

export type NewStockItemInput = {
  sku: string;
  name: string;
  unit: string;
  onHand: number;
  lowStockThreshold: number;
};

export type NewMenuItemInput = {
  name: string;
  description: string;
  priceMinor: number;
  isAvailable: boolean;
  components: MenuComponent[];
};

export type MenuItemChanges = { priceMinor?: number; isAvailable?: boolean };

export type OutletStaffMember = { accountId: string; grantedAt: Date; grantedBy: string | null };

/**
 * Whether the runtime knows `timeZone` as an IANA zone. The shape check comes
 * first: recent engines also accept offsets like "+01:00", which are not
 * zones (they know no daylight saving).
 */
export function isKnownTimeZone(timeZone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/.test(timeZone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** Indexes of components that repeat an earlier component's stock item. */
export function findRepeatedComponents(components: readonly MenuComponent[]): number[] {
  const seen = new Set<string>();
  const repeated: number[] = [];
  components.forEach((component, index) => {
    const key = component.stockItemId.toLowerCase();
    if (seen.has(key)) repeated.push(index);
    seen.add(key);
  });
  return repeated;
}

/** A display name trimmed, 1-200 characters (the tables' CHECK); `pointer` names the field for the 400. */
export function normaliseName(value: string, pointer: string): string {
  const name = value.trim();
  if (name.length === 0 || name.length > 200) throw invalidName(pointer);
  return name;
}
