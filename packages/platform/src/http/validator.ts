import type { FastifySchemaCompiler } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

/**
 * Validates with TypeBox's compiled checker. Bodies are checked exactly as
 * sent (a JSON API must not turn "12" into 12, nor drop unknown fields: they
 * are rejected by `additionalProperties: false`); path, query and headers are
 * strings on the wire, so they get defaults and a strict type conversion
 * first: "20" is an integer, "1.5", "", " 20" and "0x10" are not (TypeBox's
 * own Convert would have answered 1, 0, 20 and 16, silently).
 */
export const typeBoxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = Compile(schema);
  const convert = httpPart !== 'body';
  // Most requests are already valid as sent; converting first would cost a
  // walk of the schema on every request. Schemas with defaults must still get
  // them, so they always take the conversion.
  const canSkipConversion = !convert || !JSON.stringify(schema).includes('"default"');
  const coerce = convert ? compileStringPartCoercion(schema) : undefined;
  return (value: unknown) => {
    if (canSkipConversion && checker.Check(value)) return { value };
    let candidate: unknown;
    if (coerce !== undefined) {
      const coerced = coerce(value);
      // Only input that is not an object at all is left to TypeBox's walk.
      candidate = coerced === NOT_HANDLED ? Value.Convert(schema, Value.Default(schema, value)) : coerced;
    } else {
      // Schemas outside the flat shape (nested objects, unions of types):
      // none of the routes' path, query or header schemas today.
      candidate = convert ? Value.Convert(schema, Value.Default(schema, value)) : value;
    }
    if (checker.Check(candidate)) return { value: candidate };
    return { error: [...checker.Errors(candidate)] as unknown as Error };
  };
};

/** Returned by a compiled coercion for input that is not an object, left to `Value.Default` and `Value.Convert`. */
export const NOT_HANDLED: unique symbol = Symbol('not handled');

type StringCoercion = (raw: string) => unknown;

type CoercedProperty = {
  key: string;
  coerce: StringCoercion | undefined;
  isArray: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
};

/**
 * Platform-internal (exported for its tests): compiles, once per route
 * schema, the defaults and strict conversion of a flat object of strings,
 * numbers, integers, booleans, string-literal unions and arrays of strings or
 * string literals (a repeated query key). The result returns a converted
 * shallow copy for the checker, or `NOT_HANDLED` for a value that is not an
 * object; `undefined` means the schema is outside that shape.
 *
 * Conversion is strict: an integer must be written as decimal digits with an
 * optional minus sign (a safe integer), a number additionally with a fraction
 * and exponent, a boolean as true, false, 1 or 0. Anything else stays the
 * string it was, and the checker rejects it. On the strings it converts, the
 * result equals `Value.Convert(schema, Value.Default(schema, value))`.
 *
 * @example
 * const coerce = compileStringPartCoercion(Type.Object({ limit: Type.Integer({ default: 20 }) }));
 * coerce?.({}); // { limit: 20 }
 * coerce?.({ limit: '1.5' }); // { limit: '1.5' }: the checker answers 400
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
    const isArray = isArrayOfStrings(propertySchema);
    const coerce = isArray ? undefined : coercionFor(propertySchema);
    if (coerce === NOT_HANDLED) return undefined;
    const hasDefault = 'default' in propertySchema;
    // A function default is called on every request, and an object default is
    // cloned; only primitives can be computed once.
    if (hasDefault && !isPrimitive(propertySchema.default)) return undefined;
    properties.push({ key, coerce, isArray, hasDefault, defaultValue: undefined });
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
        // A present-but-undefined required property stays undefined: missing.
        if (property.hasDefault) copy[property.key] = property.defaultValue;
        continue;
      }
      if (typeof raw !== 'string') {
        // A repeated key (an array) for a single value, or a value that never
        // was a string: left as it is for the checker to judge. Assigned even
        // so: Default makes an inherited value an own property.
        copy[property.key] = raw;
        continue;
      }
      if (property.isArray) copy[property.key] = [raw];
      else copy[property.key] = property.coerce === undefined ? raw : property.coerce(raw);
    }
    return copy;
  };
}

const SAFE_PROPERTY_NAME = /^[A-Za-z0-9_-]+$/;

// `undefined` is a property kept as the string it is: strings, and unions of
// string literals (a string matching no literal is kept as sent for the
// checker to reject).
function coercionFor(schema: TSchema): StringCoercion | undefined | typeof NOT_HANDLED {
  if (Type.IsString(schema)) return undefined;
  if (Type.IsInteger(schema)) return convertToInteger;
  if (Type.IsNumber(schema)) return convertToNumber;
  if (Type.IsBoolean(schema)) return convertToBoolean;
  if (Type.IsUnion(schema) && isUnionOfStringLiterals(schema)) return undefined;
  return NOT_HANDLED;
}

/** An array of strings or string literals: what a repeatable query key holds. */
function isArrayOfStrings(schema: TSchema): boolean {
  if (!Type.IsArray(schema)) return false;
  const items = (schema as unknown as { items: TSchema }).items;
  if ('default' in items) return false;
  return Type.IsString(items) || (Type.IsUnion(items) && isUnionOfStringLiterals(items));
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

const INTEGER_TEXT = /^-?\d+$/;
const NUMBER_TEXT = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

// A string that is not in the strict form is returned unchanged: the checker
// then rejects it with "Expected integer" (number, boolean) at its pointer.
function convertToInteger(raw: string): unknown {
  if (!INTEGER_TEXT.test(raw)) return raw;
  const converted = Number(raw);
  return Number.isSafeInteger(converted) ? converted : raw;
}

function convertToNumber(raw: string): unknown {
  if (!NUMBER_TEXT.test(raw)) return raw;
  const converted = Number(raw);
  return Number.isFinite(converted) ? converted : raw;
}

function convertToBoolean(raw: string): unknown {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  return raw;
}
