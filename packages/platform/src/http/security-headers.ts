import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

const POLICY: HelmetOptions = {
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      frameAncestors: ["'none'"],
      objectSrc: ["'none'"],
      // Keel is often served over plain http on localhost, where upgrading would break /docs.
      upgradeInsecureRequests: null,
    },
  },
};

/**
 * Helmet's security headers, computed once. The policy is the same for every
 * response, and @fastify/helmet re-ran helmet (re-parsing the CSP) on every
 * request: about 5% of a GET's CPU in the benchmark profile. Helmet still
 * decides the headers; we only stop recomputing them.
 */
export function computeSecurityHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader(name: string, value: string | number) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(POLICY)({} as IncomingMessage, response as unknown as ServerResponse, () => undefined);
  return headers;
}
