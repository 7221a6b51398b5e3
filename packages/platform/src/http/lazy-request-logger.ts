import type { FastifyBaseLogger } from 'fastify';

type ChildOptions = Parameters<FastifyBaseLogger['child']>[1];

const LEVEL_METHODS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
const noop = () => {};

/**
 * Fastify's per-request logger (the request id bound), created on the first
 * call that would write a line instead of with every request.
 *
 * Why: pino serializes a child's bindings through the redaction paths when
 * the child is made, which was 4% of the server's CPU on a cached search,
 * while at the production level (warn) almost no request writes a line.
 * A call at a level the parent has disabled is a no-op without a child (the
 * child inherits the parent's level); everything else goes to the real child,
 * made once. A route with its own log level gets its child at once, since
 * the parent's level says nothing about it.
 */
export function lazyRequestLoggerFactory(
  logger: FastifyBaseLogger,
  bindings: Record<string, unknown>,
  options: ChildOptions = {},
): FastifyBaseLogger {
  if (options?.level !== undefined) return logger.child(bindings, options);
  // pino's; a logger without it gets its child on first use of any method.
  const { isLevelEnabled } = logger as { isLevelEnabled?: (level: string) => boolean };
  let child: FastifyBaseLogger | undefined;
  const real = (): FastifyBaseLogger => {
    const made = child ?? logger.child(bindings, options);
    child = made;
    return made;
  };
  return new Proxy({} as FastifyBaseLogger, {
    get(_target, property) {
      if (child === undefined && typeof property === 'string' && LEVEL_METHODS.has(property)) {
        if (isLevelEnabled !== undefined && !isLevelEnabled.call(logger, property)) return noop;
        return (...args: unknown[]) =>
          (real()[property as 'info'] as (...values: unknown[]) => void)(...args);
      }
      const value = Reflect.get(real(), property);
      return typeof value === 'function' ? value.bind(real()) : value;
    },
    set(_target, property, value) {
      return Reflect.set(real(), property, value);
    },
    has(_target, property) {
      return property in real();
    },
  });
}
