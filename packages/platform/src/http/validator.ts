import type { FastifySchemaCompiler } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

/**
 * Validates with TypeBox's compiled checker. Bodies are checked exactly as
 * sent (a JSON API must not turn "12" into 12, nor drop unknown fields: they
 * are rejected by `additionalProperties: false`); path, query and headers are
 * strings on the wire, so they get defaults and type conversion first.
 */
export const typeBoxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = Compile(schema);
  const convert = httpPart !== 'body';
  // Most requests are already valid as sent; converting first would cost an
  // uncompiled walk of the schema on every request. Schemas with defaults must
  // still get them, so they always take the slow path.
  const canSkipConversion = !convert || !JSON.stringify(schema).includes('"default"');
  const coerce = convert ? compileStringPartCoercion(schema) : undefined;
  return (value: unknown) => {
    if (canSkipConversion && checker.Check(value)) return { value };
    // The walk below costs ~9% of server CPU on list endpoints (every `?limit=20`
    // is a string and every paged query has a default). The compiled coercion
    // gives the same value for the shapes it accepts; anything it cannot vouch
    // for, and every invalid request, goes the old way so that values and
    // error messages stay exactly TypeBox's.
    if (coerce !== undefined) {
      const coerced = coerce(value);
      if (coerced !== NOT_HANDLED && checker.Check(coerced)) return { value: coerced };
    }
    const candidate = convert ? Value.Convert(schema, Value.Default(schema, value)) : value;
    if (checker.Check(candidate)) return { value: candidate };
    return { error: [...checker.Errors(candidate)] as unknown as Error };
  };
};

/** Returned by a compiled coercion for input it leaves to `Value.Default` and `Value.Convert`. */
export const NOT_HANDLED: unique symbol = Symbol('not handled');

type StringCoercion = (raw: string) => unknown;

type CoercedProperty = {
  key: string;
  coerce: StringCoercion | undefined;
  hasDefault: boolean;
  defaultValue: unknown;
  isOptional: boolean;
};

/**
 * Platform-internal (exported for its equivalence tests): compiles, once per
 * route schema, what `Value.Convert(schema, Value.Default(schema, value))` does
 * to a flat object of strings, numbers, integers, booleans and string-literal
 * unions. The result is a function that returns a converted shallow copy, or
 * `NOT_HANDLED` for input it does not model (non-string values, a missing
 * required property); `undefined` means the schema is outside that shape.
 *
 * @example
 * const coerce = compileStringPartCoercion(Type.Object({ limit: Type.Integer({ default: 20 }) }));
 * coerce?.({}); // { limit: 20 }
 */
export function compileStringPartCoercion(schema: TSchema): ((value: unknown) => unknown) | undefined {
  // TypeBox's walkers dispatch on the hidden `~kind` marker, not on JSON Schema
  // keywords, so the same guards decide here: a plain JSON schema that they
  // would not convert must not be converted by this either.
  if (!Type.IsObject(schema)) return undefined;
  const objectSchema = schema as unknown as Record<string, unknown>;
  // Both walkers also visit a schema-valued additionalProperties; pattern
  // properties and references are outside the flat shape modelled here.
  const additional = objectSchema.additionalProperties;
  if (additional !== undefined && typeof additional !== 'boolean') return undefined;
  if ('patternProperties' in objectSchema || '$ref' in objectSchema || '$defs' in objectSchema)
    return undefined;
  const propertySchemas = objectSchema.properties as Record<string, TSchema>;
  const properties: CoercedProperty[] = [];
  for (const key of Object.getOwnPropertyNames(propertySchemas)) {
    // Convert matches value keys against `new RegExp(`^${key}$`)`, unescaped:
    // "a.b" would also convert "aXb". Object.prototype names are read through
    // the prototype by Default on ordinary objects.
    if (!SAFE_PROPERTY_NAME.test(key) || key in Object.prototype) return undefined;
    const propertySchema = propertySchemas[key] as TSchema & { default?: unknown };
    const coerce = coercionFor(propertySchema);
    if (coerce === NOT_HANDLED) return undefined;
    const hasDefault = 'default' in propertySchema;
    // A function default is called on every request, and an object default is
    // cloned; only primitives can be computed once.
    if (hasDefault && !isPrimitive(propertySchema.default)) return undefined;
    properties.push({
      key,
      coerce,
      hasDefault,
      defaultValue: undefined,
      isOptional: Type.IsOptional(propertySchema),
    });
  }
  // Defaults come from TypeBox itself, so a default that Convert would change
  // (a string "20" for an integer) is stored already converted. Only after the
  // checks above: an unsafe key would make Convert's RegExp throw at startup.
  const defaulted = Value.Convert(schema, Value.Default(schema, {})) as Record<string, unknown>;
  for (const property of properties) {
    if (!property.hasDefault) continue;
    property.defaultValue = defaulted[property.key];
    if (!isPrimitive(property.defaultValue)) return undefined;
  }
  return (value) => {
    const copy = copyOwnProperties(value);
    if (copy === NOT_HANDLED) return NOT_HANDLED;
    for (const property of properties) {
      const raw = copy[property.key];
      if (raw === undefined) {
        if (property.hasDefault) copy[property.key] = property.defaultValue;
        // Convert turns a required property that is present but undefined into
        // 0, "" or false; absent, it fails the check either way.
        else if (!property.isOptional) return NOT_HANDLED;
        continue;
      }
      // Repeated query keys arrive as arrays; leave them to TypeBox.
      if (typeof raw !== 'string') return NOT_HANDLED;
      // Assigned even when unchanged: Default makes an inherited value an own property.
      copy[property.key] = property.coerce === undefined ? raw : property.coerce(raw);
    }
    return copy;
  };
}

const SAFE_PROPERTY_NAME = /^[A-Za-z0-9_-]+$/;

// `undefined` is a property that Convert leaves unchanged when it is a string:
// strings, and unions of string literals (a string matching no literal is kept
// as sent for the checker to reject).
function coercionFor(schema: TSchema): StringCoercion | undefined | typeof NOT_HANDLED {
  if (Type.IsString(schema)) return undefined;
  if (Type.IsInteger(schema)) return convertToInteger;
  if (Type.IsNumber(schema)) return convertToNumber;
  if (Type.IsBoolean(schema)) return convertToBoolean;
  if (Type.IsUnion(schema) && isUnionOfStringLiterals(schema)) return undefined;
  return NOT_HANDLED;
}

function isUnionOfStringLiterals(schema: TSchema): boolean {
  const members = (schema as { anyOf?: unknown }).anyOf;
  if (!Array.isArray(members) || members.length === 0) return false;
  // Default runs each member on a missing value, so a member's own default
  // would fill in an optional property.
  return members.every(
    (member: TSchema) => Type.IsLiteral(member) && typeof member.const === 'string' && !('default' in member),
  );
}

function isPrimitive(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

function copyOwnProperties(value: unknown): Record<string, unknown> | typeof NOT_HANDLED {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return NOT_HANDLED;
  const prototype = Object.getPrototypeOf(value);
  if (prototype === Object.prototype) return { ...value };
  // Fastify's query parser builds objects without Object.prototype; the copy
  // keeps that, so "?toString=x" means no more than it did before.
  if (prototype === null || Object.getPrototypeOf(prototype) === null) {
    const copy = Object.create(prototype) as Record<string, unknown>;
    for (const key of Object.keys(value)) copy[key] = (value as Record<string, unknown>)[key];
    return copy;
  }
  return NOT_HANDLED;
}

// The three conversions below mirror TypeBox 1.x `Try.TryNumber` and
// `Try.TryBoolean` for string input, quirks included: "" and " " become 0,
// "1e3" 1000, "0x10" 16, "true" 1, "12n" 12, and integers are truncated ("1.5"
// becomes 1). The equivalence tests pin this against Value.Convert.
function convertToInteger(raw: string): unknown {
  const converted = tryNumber(raw);
  return converted === undefined ? raw : Math.trunc(converted);
}

function convertToNumber(raw: string): unknown {
  return tryNumber(raw) ?? raw;
}

function convertToBoolean(raw: string): unknown {
  const lowercase = raw.toLowerCase();
  if (lowercase === 'false' || raw === '0') return false;
  if (lowercase === 'true' || raw === '1') return true;
  return raw;
}

const BIGINT_LIKE = /^-?(0|[1-9]\d*)n$/;
const DECIMAL_LIKE = /^-?(0|[1-9]\d*)\.\d+$/;
const INTEGER_LIKE = /^-?(0|[1-9]\d*)$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

function tryNumber(raw: string): number | undefined {
  const coerced = +raw;
  if (Number.isFinite(coerced)) return coerced;
  const lowercase = raw.toLowerCase();
  if (lowercase === 'false') return 0;
  if (lowercase === 'true') return 1;
  const big = BIGINT_LIKE.test(raw)
    ? BigInt(raw.slice(0, -1))
    : DECIMAL_LIKE.test(raw)
      ? BigInt(raw.split('.')[0] as string)
      : INTEGER_LIKE.test(raw)
        ? BigInt(raw)
        : undefined;
  if (big === undefined || big > MAX_SAFE || big < MIN_SAFE) return undefined;
  return Number(big);
}
