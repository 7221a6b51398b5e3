import type { FastifySchemaCompiler } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { SearchDoctorsQuery } from '../../../../services/telemedicine/src/search/doctor-search.schemas.ts';
import { compileStringPartCoercion, NOT_HANDLED, typeBoxValidatorCompiler } from './validator.ts';

// The validator as it was before the strict coercion (TypeBox's Default and
// Convert): every value the new one accepts must equal what this returns.
const referenceValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = Compile(schema);
  const convert = httpPart !== 'body';
  const canSkipConversion = !convert || !JSON.stringify(schema).includes('"default"');
  return (value: unknown) => {
    if (canSkipConversion && checker.Check(value)) return { value };
    const candidate = convert ? Value.Convert(schema, Value.Default(schema, value)) : value;
    if (checker.Check(candidate)) return { value: candidate };
    return { error: [...checker.Errors(candidate)] as unknown as Error };
  };
};

type Validate = (value: unknown) => unknown;

function validatorsFor(
  schema: TSchema,
  httpPart = 'querystring',
): { current: Validate; reference: Validate } {
  const route = { schema, httpPart, method: 'GET', url: '/test' };
  return {
    current: typeBoxValidatorCompiler(route) as Validate,
    reference: referenceValidatorCompiler(route) as Validate,
  };
}

type Entries = Array<[string, unknown]>;

// Built twice from the same entries so each implementation gets its own object
// (the reference mutates its input). defineProperty keeps "__proto__" an own
// key, as fast-querystring leaves it.
function buildInput(entries: Entries, hasNullPrototype: boolean): Record<string, unknown> {
  const input = (hasNullPrototype ? Object.create(null) : {}) as Record<string, unknown>;
  for (const [key, value] of entries) {
    Object.defineProperty(input, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return input;
}

function referenceConversion(schema: TSchema, entries: Entries, hasNullPrototype: boolean): unknown {
  return Value.Convert(schema, Value.Default(schema, buildInput(entries, hasNullPrototype)));
}

// Mulberry32: small, seeded, so a failing case reproduces from its seed.
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGE_STRINGS = [
  '',
  ' ',
  '  20',
  '20 ',
  '\t1\n',
  '0',
  '00',
  '020',
  '-0',
  '+5',
  '1',
  '-3',
  '20',
  '50',
  '51',
  '1.0',
  '1.5',
  '-1.5',
  '.5',
  '5.',
  '1e3',
  '1E3',
  '1e-7',
  '0x10',
  '0b11',
  '0o7',
  'Infinity',
  '-Infinity',
  'NaN',
  '12n',
  '-12n',
  '0n',
  '1.5n',
  '9007199254740993n',
  '99999999999999999999n',
  '9007199254740993',
  '99999999999999999999',
  '9'.repeat(400),
  `${'9'.repeat(400)}.5`,
  'abc',
  '1_000',
  '1,5',
  '١٢',
  'true',
  'false',
  'TRUE',
  'False',
  'yes',
  'null',
  'undefined',
  'relevance',
  'RATING',
  'hour',
  'de',
  'EUR',
  '2025-01-31',
  '2025-01-31T10:00:00Z',
  'Europe/Berlin',
  '3f1c7a52-0d51-4c4e-9a57-6f0c3e0e8d11',
  'a\u0000b',
  'x'.repeat(301),
];

const STRICT_FORMS: Record<'integer' | 'number' | 'boolean', (raw: string) => boolean> = {
  integer: (raw) => /^-?\d+$/.test(raw) && Number.isSafeInteger(Number(raw)),
  number: (raw) => /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(raw) && Number.isFinite(Number(raw)),
  boolean: (raw) => ['true', 'false', '1', '0'].includes(raw),
};

function scalarKindOf(schema: TSchema): keyof typeof STRICT_FORMS | 'string' {
  if (Type.IsInteger(schema)) return 'integer';
  if (Type.IsNumber(schema)) return 'number';
  if (Type.IsBoolean(schema)) return 'boolean';
  return 'string';
}

describe('compileStringPartCoercion', () => {
  const KindsQuery = Type.Object(
    {
      text: Type.Optional(Type.String({ maxLength: 10 })),
      whole: Type.Optional(Type.Integer()),
      real: Type.Optional(Type.Number()),
      flag: Type.Optional(Type.Boolean()),
      choice: Type.Optional(Type.Union([Type.Literal('a'), Type.Literal('5'), Type.Literal('true')])),
      limit: Type.Integer({ minimum: 1, maximum: 50, default: 20 }),
      shown: Type.Boolean({ default: false }),
      order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' }),
    },
    { additionalProperties: false },
  );
  const coerce = compileStringPartCoercion(KindsQuery);

  it('converts the strict forms exactly as Value.Convert does and keeps every other string as sent', () => {
    expect(coerce).toBeDefined();
    const properties = KindsQuery.properties as Record<string, TSchema>;
    let converted = 0;
    let kept = 0;
    for (const raw of EDGE_STRINGS) {
      for (const [key, propertySchema] of Object.entries(properties)) {
        const kind = scalarKindOf(propertySchema);
        for (const hasNullPrototype of [true, false]) {
          const entries: Entries = [[key, raw]];
          const actual = coerce?.(buildInput(entries, hasNullPrototype)) as Record<string, unknown>;
          const label = `${key}=${JSON.stringify(raw).slice(0, 40)}`;
          if (kind === 'string' || STRICT_FORMS[kind](raw)) {
            expect(actual, label).toStrictEqual(referenceConversion(KindsQuery, entries, hasNullPrototype));
            if (kind !== 'string') converted++;
          } else {
            expect(actual[key], label).toBe(raw);
            kept++;
          }
        }
      }
    }
    // Both branches ran for a good share of the edge strings.
    expect(converted).toBeGreaterThan(40);
    expect(kept).toBeGreaterThan(300);
  });

  it('refuses what TypeBox would have changed silently', () => {
    const checker = Compile(KindsQuery);
    const refused: Entries = [
      ['limit', '1.5'],
      ['whole', ''],
      ['limit', ' 20'],
      ['limit', '0x10'],
      ['limit', '1e1'],
      ['limit', '12n'],
      ['limit', 'true'],
      ['real', '.5'],
      ['real', '0x10'],
      ['whole', '9007199254740993'],
      ['flag', 'TRUE'],
    ];
    for (const entry of refused) {
      const label = `${entry[0]}=${JSON.stringify(entry[1])}`;
      expect(checker.Check(referenceConversion(KindsQuery, [entry], true)), label).toBe(true);
      expect(checker.Check(coerce?.(buildInput([entry], true))), label).toBe(false);
    }
  });

  it('fills defaults for missing properties and keeps extra properties as sent', () => {
    const entries: Entries = [
      ['whole', '7'],
      ['extra', '1'],
    ];
    const actual = coerce?.(buildInput(entries, true));
    expect(actual).toStrictEqual(referenceConversion(KindsQuery, entries, true));
    expect({ ...(actual as object) }).toEqual({
      whole: 7,
      extra: '1',
      limit: 20,
      shown: false,
      order: 'asc',
    });
  });

  it('keeps a null prototype and leaves the input unchanged', () => {
    const input = buildInput([['limit', '5']], true);
    const actual = coerce?.(input) as Record<string, unknown>;
    expect(Object.getPrototypeOf(actual)).toBeNull();
    expect(actual.limit).toBe(5);
    expect(input.limit).toBe('5');
  });

  it('leaves repeated keys and non-string values to the checker, and only non-objects to TypeBox', () => {
    expect(coerce?.(buildInput([['limit', ['1', '2']]], true))).toMatchObject({ limit: ['1', '2'] });
    expect(coerce?.(buildInput([['whole', 1.5]], false))).toMatchObject({ whole: 1.5 });
    expect(coerce?.(null)).toBe(NOT_HANDLED);
    expect(coerce?.(['limit'])).toBe(NOT_HANDLED);
    const Required = Type.Object({ page: Type.Integer() });
    const present = compileStringPartCoercion(Required)?.(buildInput([['page', undefined]], false));
    expect(present).toStrictEqual({ page: undefined });
    expect(Compile(Required).Check(present)).toBe(false);
  });

  it('wraps a single value of a repeatable key in an array, as Value.Convert does', () => {
    const Listing = Type.Object(
      {
        status: Type.Optional(Type.Array(Type.Union([Type.Literal('OPEN'), Type.Literal('DONE')]))),
        tag: Type.Optional(Type.Array(Type.String())),
      },
      { additionalProperties: false },
    );
    const listing = compileStringPartCoercion(Listing);
    for (const entries of [
      [['status', 'OPEN']],
      [['status', ['OPEN', 'DONE']]],
      [['tag', 'x']],
      [
        ['tag', ['x', 'y']],
        ['status', 'DONE'],
      ],
    ] as Entries[]) {
      expect(listing?.(buildInput(entries, true))).toStrictEqual(referenceConversion(Listing, entries, true));
    }
  });

  it('declines schemas outside the flat shape, so they keep the TypeBox walk', () => {
    const declined: Record<string, TSchema> = {
      arrayOfIntegers: Type.Object({ page: Type.Optional(Type.Array(Type.Integer())) }),
      arrayWithItemDefault: Type.Object({ tag: Type.Array(Type.String({ default: 'x' })) }),
      nested: Type.Object({ page: Type.Object({ size: Type.Integer() }) }),
      unionOfTypes: Type.Object({ id: Type.Union([Type.Integer(), Type.String()]) }),
      unionWithNumberLiteral: Type.Object({ id: Type.Union([Type.Literal('a'), Type.Literal(1)]) }),
      literal: Type.Object({ kind: Type.Literal('a') }),
      ref: Type.Object({ id: Type.Ref('Id') }),
      patternProperties: Type.Object({ a: Type.String() }, { patternProperties: { '^x-': Type.Integer() } }),
      additionalSchema: Type.Object({ a: Type.String() }, { additionalProperties: Type.Integer() }),
      functionDefault: Type.Object({ at: Type.Integer({ default: () => 1 }) }),
      objectDefault: Type.Object({ at: Type.Integer({ default: { n: 1 } }) }),
      regexKey: Type.Object({ 'a.b': Type.Integer() }),
      invalidRegexKey: Type.Object({ 'x(': Type.Integer({ default: 1 }) }),
      prototypeKey: Type.Object({ constructor: Type.String() }),
      record: Type.Record(Type.String(), Type.Integer()),
      notObject: Type.Integer(),
    };
    for (const [name, schema] of Object.entries(declined)) {
      expect(compileStringPartCoercion(schema), name).toBeUndefined();
    }
    // Without TypeBox's `~kind` marker, Value.Convert leaves a plain JSON schema alone; so must this.
    const plain = { type: 'object', properties: { limit: { type: 'integer' } } } as unknown as TSchema;
    expect(compileStringPartCoercion(plain)).toBeUndefined();
  });

  it('stores a default that Convert would change already converted', () => {
    const schema = Type.Object({ page: Type.Integer({ default: '2' }) });
    expect(compileStringPartCoercion(schema)?.({})).toStrictEqual(
      Value.Convert(schema, Value.Default(schema, {})),
    );
  });
});

describe('typeBoxValidatorCompiler', () => {
  it('answers a typical doctor search from the compiled coercion', () => {
    const { current } = validatorsFor(SearchDoctorsQuery);
    const input = buildInput(
      [
        ['q', 'cardio'],
        ['fee_max', '5000'],
        ['sort', 'fee'],
        ['limit', '20'],
      ],
      true,
    );
    const coerced = compileStringPartCoercion(SearchDoctorsQuery)?.(input);
    expect(Compile(SearchDoctorsQuery).Check(coerced)).toBe(true);
    expect(current(input)).toStrictEqual({ value: coerced });
  });

  it('rejects a bad query with the same errors as the TypeBox walk', () => {
    const { current, reference } = validatorsFor(SearchDoctorsQuery);
    const entries: Entries = [
      ['limit', '51'],
      ['sort', 'cheapest'],
    ];
    const result = current(buildInput(entries, true)) as { error: unknown[] };
    expect(result.error.length).toBeGreaterThan(0);
    expect(result).toStrictEqual(reference(buildInput(entries, true)));
  });

  it('never converts a body', () => {
    const schema = Type.Object({ limit: Type.Integer({ default: 20 }) });
    const { current, reference } = validatorsFor(schema, 'body');
    const result = current({ limit: '20' }) as { error?: unknown[] };
    expect(result.error).toBeDefined();
    expect(result).toStrictEqual(reference({ limit: '20' }));
  });

  const FiltersQuery = Type.Object(
    {
      open_only: Type.Optional(Type.Boolean()),
      include_archived: Type.Boolean({ default: false }),
      granularity: Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'hour' }),
      from: Type.String({ format: 'date-time' }),
      ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
      page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
    },
    { additionalProperties: false },
  );
  const HeadersLike = Type.Object(
    {
      'if-match': Type.Optional(Type.String({ maxLength: 20 })),
      'x-retry-count': Type.Integer({ minimum: 0, maximum: 5, default: 0 }),
    },
    { additionalProperties: true },
  );
  const ParamsLike = Type.Object(
    { doctorId: Type.String({ format: 'uuid' }), page: Type.Integer({ minimum: 0 }) },
    { additionalProperties: false },
  );

  // Values each property would plausibly receive, valid and just out of
  // range, so a good share of the random queries pass and exercise the fast
  // path, not only the errors.
  const VALID: Record<string, string[]> = {
    q: ['cardio', '"heart surgeon" -kids', ''],
    specialty: ['Cardiology', 'dermatology'],
    language: ['de', 'EN'],
    fee_min: ['0', '1500', ''],
    fee_max: ['5000', '10000000'],
    currency: ['EUR'],
    min_rating: ['4.5', '0', '5', '1e0'],
    available_on: ['2025-01-31'],
    time_zone: ['Europe/Berlin', 'UTC'],
    available_within_days: ['7', '60'],
    sort: ['relevance', 'fee', 'rating', 'next_available'],
    limit: ['20', '1', '50', '020'],
    cursor: ['eyJpZCI6MX0'],
    open_only: ['true', 'false', '1', '0'],
    include_archived: ['true', 'false'],
    granularity: ['hour', 'day'],
    from: ['2025-01-31T10:00:00Z'],
    ratio: ['0.5', '1', '2.5e-1'],
    page: ['1', '2'],
    'if-match': ['"3"', 'W/"3"'],
    'x-retry-count': ['0', '3'],
    doctorId: ['3f1c7a52-0d51-4c4e-9a57-6f0c3e0e8d11'],
  };
  const NEAR_MISS: Record<string, string[]> = {
    language: ['deu'],
    fee_min: ['-1', ''],
    fee_max: ['10000001', '0x10'],
    currency: ['usd'],
    min_rating: ['5.1'],
    available_on: ['2025-02-30', '31.01.2025'],
    available_within_days: ['61', '0', '1.9'],
    sort: ['cheapest', 'Fee'],
    limit: ['0', '51', '0.5', '1.5', 'true'],
    cursor: [''],
    open_only: ['yes', 'TRUE'],
    granularity: ['week'],
    from: ['2025-01-31'],
    ratio: ['0', '2', '.25'],
    page: ['0', '-1', '12n'],
    'x-retry-count': ['6', ' '],
    doctorId: ['not-a-uuid'],
  };
  const EXTRA_KEYS = ['extra', 'toString', '__proto__', 'constructor', 'LIMIT', 'accept'];

  function randomEntries(schema: TSchema, random: () => number): Entries {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const isClean = random() < 0.5;
    const entries: Entries = [];
    for (const key of Object.keys((schema as unknown as { properties: object }).properties)) {
      const roll = random();
      if (roll < 0.4) continue;
      const valid = VALID[key] ?? EDGE_STRINGS;
      if (isClean || roll < 0.7) entries.push([key, pick(valid)]);
      else if (roll < 0.8) entries.push([key, pick(NEAR_MISS[key] ?? valid)]);
      else if (roll < 0.93) entries.push([key, pick(EDGE_STRINGS)]);
      else if (roll < 0.96) entries.push([key, [pick(EDGE_STRINGS), pick(EDGE_STRINGS)]]);
      else if (roll < 0.98) entries.push([key, undefined]);
      else entries.push([key, pick([3, 1.5, true, null])]);
    }
    if (random() < 0.15) entries.push([pick(EXTRA_KEYS), pick(EDGE_STRINGS)]);
    // Query keys arrive in the client's order, not the schema's.
    for (let index = entries.length - 1; index > 0; index--) {
      const other = Math.floor(random() * (index + 1));
      [entries[index], entries[other]] = [
        entries[other] as Entries[number],
        entries[index] as Entries[number],
      ];
    }
    return entries;
  }

  const cases: Array<[string, TSchema, string, number]> = [
    ['SearchDoctorsQuery', SearchDoctorsQuery, 'querystring', 0.3],
    ['a query with booleans, a defaulted union and required properties', FiltersQuery, 'querystring', 0.2],
    ['headers with extra properties allowed', HeadersLike, 'headers', 0.5],
    ['params with a required integer', ParamsLike, 'params', 0.15],
  ];

  // True when some entry is one the strict conversion refuses but TypeBox's
  // Convert could have turned into something valid.
  function hasLenientOnlyEntry(schema: TSchema, entries: Entries): boolean {
    const properties = (schema as unknown as { properties: Record<string, TSchema> }).properties;
    return entries.some(([key, value]) => {
      const propertySchema = properties[key];
      if (propertySchema === undefined) return false;
      if (value === undefined) return !Type.IsOptional(propertySchema) && !('default' in propertySchema);
      if (Type.IsArray(propertySchema)) {
        return Array.isArray(value) && value.some((item) => typeof item !== 'string');
      }
      if (typeof value !== 'string') return true;
      const kind = scalarKindOf(propertySchema);
      return kind !== 'string' && !STRICT_FORMS[kind](value);
    });
  }

  it.each(cases)(
    'accepts only what the TypeBox walk accepts, with the same value, for 3000 random inputs to %s',
    (_name, schema, part, minimumAcceptedShare) => {
      const { current, reference } = validatorsFor(schema, part);
      const random = createRandom(0x5eed);
      let accepted = 0;
      let refusedOnlyByStrictness = 0;
      const iterations = 3000;
      for (let iteration = 0; iteration < iterations; iteration++) {
        const entries = randomEntries(schema, random);
        const hasNullPrototype = random() < 0.7;
        const expected = reference(buildInput(entries, hasNullPrototype)) as { value?: unknown };
        const actual = current(buildInput(entries, hasNullPrototype)) as { value?: unknown };
        const label = JSON.stringify(entries);
        if ('value' in actual) {
          accepted++;
          expect(actual, label).toStrictEqual(expected);
        } else if ('value' in expected) {
          refusedOnlyByStrictness++;
          expect(hasLenientOnlyEntry(schema, entries), label).toBe(true);
        }
      }
      expect(accepted / iterations).toBeGreaterThan(minimumAcceptedShare);
      expect(refusedOnlyByStrictness).toBeGreaterThan(0);
    },
  );
});
