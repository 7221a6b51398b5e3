import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { buildSerializerFactory, withNullableTypes } from './serializer.ts';

const Item = Type.Object({
  id: Type.String({ format: 'uuid' }),
  rating: Type.Union([Type.Number({ minimum: 0, maximum: 5 }), Type.Null()], {
    description: 'null when unrated',
  }),
  next_available_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  count: Type.Union([Type.Integer(), Type.Null()]),
  is_active: Type.Union([Type.Boolean(), Type.Null()]),
  status: Type.Union([Type.Literal('OPEN'), Type.Literal('HELD')]),
  nested: Type.Union([Type.Object({ at: Type.String() }), Type.Null()]),
  tags: Type.Array(Type.Union([Type.String(), Type.Null()])),
});
const Page = Type.Object({ items: Type.Array(Item), next_cursor: Type.Union([Type.String(), Type.Null()]) });

function serializerOf(factory: ReturnType<typeof SerializerSelector>) {
  return factory(undefined, undefined)({ method: 'GET', url: '/', httpStatus: '200', schema: Page });
}

describe('withNullableTypes', () => {
  it('turns a nullable scalar union into a type array, keeping the outer and inner keywords', () => {
    const rewritten = withNullableTypes(Item) as { properties: Record<string, unknown> };
    expect(rewritten.properties.rating).toEqual({
      type: ['number', 'null'],
      minimum: 0,
      maximum: 5,
      description: 'null when unrated',
    });
    expect(rewritten.properties.next_available_at).toEqual({ type: ['string', 'null'], format: 'date-time' });
    expect(rewritten.properties.count).toEqual({ type: ['integer', 'null'] });
  });

  it('leaves unions that are not a nullable scalar as they are', () => {
    const rewritten = withNullableTypes(Item) as { properties: Record<string, { anyOf?: unknown[] }> };
    expect(rewritten.properties.status?.anyOf).toHaveLength(2);
    expect(rewritten.properties.nested?.anyOf).toHaveLength(2);
  });

  it('rewrites inside arrays and never changes the schema it was given', () => {
    const before = JSON.stringify(Page);
    const rewritten = withNullableTypes(Page) as {
      properties: { items: { items: { properties: { tags: { items: unknown } } } } };
    };
    expect(rewritten.properties.items.items.properties.tags.items).toEqual({ type: ['string', 'null'] });
    expect(JSON.stringify(Page)).toBe(before);
  });

  it('copies data keywords (const, enum, default) untouched', () => {
    const schema = { type: 'string', enum: ['a', null], default: { anyOf: [1, 2] } };
    expect(withNullableTypes(schema)).toEqual(schema);
  });
});

describe('buildSerializerFactory', () => {
  const pages = [
    { items: [], next_cursor: null },
    {
      items: [
        {
          id: '0195f0c8-7d6f-7a1e-9d1c-2f4c5b6a7e8f',
          rating: 4.25,
          next_available_at: '2030-01-01T09:30:00.000Z',
          count: 3,
          is_active: true,
          status: 'OPEN',
          nested: { at: 'x' },
          tags: ['a', null, 'quote " and \\ backslash'],
        },
        {
          id: '0195f0c8-7d6f-7a1e-9d1c-2f4c5b6a7e90',
          rating: null,
          next_available_at: null,
          count: null,
          is_active: null,
          status: 'HELD',
          nested: null,
          tags: [],
        },
      ],
      next_cursor: 'opaque',
    },
  ];

  it('writes the same JSON as the stock serializer', () => {
    const stock = serializerOf(SerializerSelector());
    const ours = serializerOf(buildSerializerFactory);
    for (const page of pages) {
      expect(ours(page)).toBe(stock(page));
      expect(JSON.parse(ours(page))).toEqual(page);
    }
  });
});
