import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { EventSink } from './tracking.hub.ts';
import { formatSseMessage, formatSseRetry, SSE_HEARTBEAT } from './tracking.ts';

export type SseSettings = {
  /** The `retry:` hint: how long a client waits before reconnecting. */
  retryMs: number;
  /** A comment line this often keeps proxies and load balancers from closing an idle stream. */
  heartbeatMs: number;
  /**
   * Streams end after this long and the client reconnects with
   * `Last-Event-ID`, which authenticates it again and checks its access again
   * (a revoked session or a removed staff assignment stops at the next turn).
   */
  maxLifetimeMs: number;
  /** A client this far behind stopped reading: cut it rather than buffer without bound. */
  maxBufferedBytes: number;
};

/**
 * Takes the response over from Fastify (after every check has passed, so
 * refusals are still problem+json) and returns it as an `EventSink`. The
 * platform's onRequest headers (security headers, request id) are kept; the
 * onResponse hook still logs the request when the stream ends.
 */
export function openSseResponse(reply: FastifyReply, settings: SseSettings): EventSink {
  reply.hijack();
  const response = reply.raw;
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) headers[name] = value;
  }
  response.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    // nginx buffers responses by default; a buffered stream delivers nothing.
    'x-accel-buffering': 'no',
    // A stream is never followed by another request on its connection, and
    // without keep-alive a stream ended at shutdown frees its socket at once
    // instead of idling until the server's keep-alive timeout.
    connection: 'close',
  });

  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const heartbeat = setInterval(() => write(SSE_HEARTBEAT), settings.heartbeatMs);
  const lifetime = setTimeout(end, settings.maxLifetimeMs);
  heartbeat.unref();
  lifetime.unref();
  // 'close' comes for every ending: finished, client gone, destroyed.
  response.once('close', () => {
    clearInterval(heartbeat);
    clearTimeout(lifetime);
    resolveClosed();
  });

  function write(text: string): void {
    if (response.writableEnded || response.destroyed) return;
    // Nothing is lost by cutting: the client resumes from its Last-Event-ID.
    if (response.writableLength > settings.maxBufferedBytes) {
      response.destroy();
      return;
    }
    response.write(text);
  }

  function end(): void {
    if (!response.writableEnded && !response.destroyed) response.end();
  }

  write(formatSseRetry(settings.retryMs));
  return {
    write: (messages) => write(messages.map(formatSseMessage).join('')),
    end,
    destroy: () => response.destroy(),
    closed,
  };
}
