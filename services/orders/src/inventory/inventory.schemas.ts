import { Type } from 'typebox';
import { ADJUSTMENT_REASONS, MAX_ADJUSTMENT } from './inventory.ts';

// No control characters: notes and names end up in logs, exports and emails.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';
const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });

export const SKU_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

export const OutletIdParams = Type.Object({ outletId: Uuid }, { additionalProperties: false });

export const StockItemParams = Type.Object(
  { outletId: Uuid, stockItemId: Uuid },
  { additionalProperties: false },
);

export const AlertParams = Type.Object({ outletId: Uuid, alertId: Uuid }, { additionalProperties: false });

const Limit = Type.Integer({ minimum: 1, maximum: 200, description: 'Page size, 1-200 (default 50)' });
const Cursor = Type.String({ minLength: 1, maxLength: 400, description: 'next_cursor of the previous page' });

export const ListInventoryQuery = Type.Object(
  {
    low_only: Type.Optional(
      Type.Boolean({ description: 'Only items whose available quantity is below their threshold' }),
    ),
    sku: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: '^[A-Za-z0-9._-]+$',
        description: 'Sku prefix (case-sensitive)',
      }),
    ),
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: PRINTABLE,
        description: 'Case-insensitive substring of the name',
      }),
    ),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

export const StockItemResponse = Type.Object(
  {
    id: Uuid,
    outlet_id: Uuid,
    sku: Type.String(),
    name: Type.String(),
    unit: Type.String(),
    on_hand: Type.Integer({ minimum: 0 }),
    reserved: Type.Integer({ minimum: 0, description: 'Held by open orders' }),
    available: Type.Integer({ minimum: 0, description: 'on_hand − reserved' }),
    low_stock_threshold: Type.Integer({ minimum: 0 }),
    is_low: Type.Boolean({ description: 'available < low_stock_threshold' }),
    version: Type.Integer({ minimum: 1, description: 'Also sent as the ETag; send it back in If-Match' }),
    updated_at: Timestamp,
  },
  { additionalProperties: false, description: 'A stock item of an outlet' },
);

export const InventoryListResponse = Type.Object(
  {
    items: Type.Array(StockItemResponse),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const AdjustInventoryBody = Type.Object(
  {
    // Two ranges rather than a range plus a rule: zero is not an adjustment,
    // and the schema (hence OpenAPI) says so.
    delta: Type.Union(
      [
        Type.Integer({ minimum: -MAX_ADJUSTMENT, maximum: -1 }),
        Type.Integer({ minimum: 1, maximum: MAX_ADJUSTMENT }),
      ],
      { description: `Change to on hand: non-zero, at most ${MAX_ADJUSTMENT} either way` },
    ),
    reason: Type.Union(
      ADJUSTMENT_REASONS.map((reason) => Type.Literal(reason)),
      { description: 'Why stock changed' },
    ),
    note: Type.Optional(Type.String({ minLength: 1, maxLength: 500, pattern: PRINTABLE })),
  },
  { additionalProperties: false },
);

export const IfMatchHeaders = Type.Object(
  {
    'if-match': Type.Optional(
      Type.String({
        maxLength: 20,
        description: 'The ETag of the stock item as read ("<version>"); 412 if it changed since',
      }),
    ),
  },
  // Headers always carry more than the ones documented here.
  { additionalProperties: true },
);

export const ListAlertsQuery = Type.Object(
  {
    open_only: Type.Optional(Type.Boolean({ description: 'Only alerts nobody has acknowledged yet' })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

export const AlertResponse = Type.Object(
  {
    id: Uuid,
    outlet_id: Uuid,
    stock_item_id: Uuid,
    sku: Type.String(),
    name: Type.String(),
    available: Type.Integer({ description: 'Available when the threshold was crossed' }),
    threshold: Type.Integer({ minimum: 0 }),
    raised_at: Timestamp,
    is_open: Type.Boolean(),
    acknowledged_at: Type.Union([Timestamp, Type.Null()]),
    acknowledged_by: Type.Union([Uuid, Type.Null()]),
  },
  { additionalProperties: false, description: 'A low-stock alert' },
);

export const AlertListResponse = Type.Object(
  { alerts: Type.Array(AlertResponse), next_cursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);
