import { Type } from 'typebox';
import { SKU_PATTERN } from '../inventory/inventory.schemas.ts';
import { MAX_ON_HAND } from '../inventory/inventory.ts';

// No control characters: names and descriptions end up in logs, receipts and emails.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';
const Uuid = Type.String({ format: 'uuid' });
const Timestamp = Type.String({ format: 'date-time' });
const Name = Type.String({
  minLength: 1,
  maxLength: 400,
  pattern: PRINTABLE,
  description: 'Trimmed; 1-200 characters',
});
const PriceMinor = Type.Integer({
  minimum: 1,
  maximum: 100_000_000,
  description: 'Price in minor units of the outlet currency (cents)',
});

export const OutletIdParams = Type.Object({ outletId: Uuid }, { additionalProperties: false });

export const MenuItemParams = Type.Object(
  { outletId: Uuid, menuItemId: Uuid },
  { additionalProperties: false },
);

export const StaffParams = Type.Object({ outletId: Uuid, accountId: Uuid }, { additionalProperties: false });

export const OutletResponse = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    time_zone: Type.String(),
  },
  { additionalProperties: false, description: 'An outlet (kitchen)' },
);

export const OutletListResponse = Type.Object(
  { outlets: Type.Array(OutletResponse) },
  { additionalProperties: false },
);

export const MenuResponse = Type.Object(
  {
    outlet: OutletResponse,
    items: Type.Array(
      Type.Object(
        {
          id: Uuid,
          name: Type.String(),
          description: Type.String(),
          price_minor: Type.Integer({ minimum: 1 }),
          currency: Type.String(),
          is_orderable: Type.Boolean({
            description: 'Every ingredient is in stock for at least one portion right now',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: "The outlet's available menu items" },
);

export const CreateOutletBody = Type.Object(
  {
    name: Name,
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217, e.g. EUR' }),
    time_zone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'IANA zone, e.g. Europe/Berlin (default UTC)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const CreateStockItemBody = Type.Object(
  {
    sku: Type.String({ pattern: SKU_PATTERN, description: 'Unique within the outlet' }),
    name: Name,
    unit: Type.Optional(
      Type.String({ minLength: 1, maxLength: 20, pattern: PRINTABLE, description: 'Default "each"' }),
    ),
    on_hand: Type.Integer({ minimum: 0, maximum: MAX_ON_HAND }),
    low_stock_threshold: Type.Integer({ minimum: 0, maximum: MAX_ON_HAND }),
  },
  { additionalProperties: false },
);

const ComponentSchema = Type.Object(
  {
    stock_item_id: Uuid,
    quantity: Type.Integer({ minimum: 1, maximum: 1000, description: 'Used per portion' }),
  },
  { additionalProperties: false },
);

export const CreateMenuItemBody = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.String({ maxLength: 2000, pattern: PRINTABLE })),
    price_minor: PriceMinor,
    is_available: Type.Optional(Type.Boolean({ description: 'Default true' })),
    components: Type.Array(ComponentSchema, {
      minItems: 1,
      maxItems: 50,
      description: 'The recipe: stock items of the same outlet, each once',
    }),
  },
  { additionalProperties: false },
);

export const UpdateMenuItemBody = Type.Object(
  {
    price_minor: Type.Optional(PriceMinor),
    is_available: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const MenuItemResponse = Type.Object(
  {
    id: Uuid,
    outlet_id: Uuid,
    name: Type.String(),
    description: Type.String(),
    price_minor: Type.Integer({ minimum: 1 }),
    currency: Type.String(),
    is_available: Type.Boolean(),
    components: Type.Array(ComponentSchema),
    created_at: Timestamp,
  },
  { additionalProperties: false, description: 'A menu item with its recipe' },
);

export const ListStaffQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Default 50' })),
    cursor: Type.Optional(Type.String({ format: 'uuid', description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);

export const StaffListResponse = Type.Object(
  {
    staff: Type.Array(
      Type.Object(
        { account_id: Uuid, granted_at: Timestamp, granted_by: Type.Union([Uuid, Type.Null()]) },
        { additionalProperties: false },
      ),
    ),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
