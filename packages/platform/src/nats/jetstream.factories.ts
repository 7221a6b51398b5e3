import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { EventEnvelope } from '@keel/contracts';
import { deadLetterStreamName, eventStreamName } from './jetstream.ts';
import type { NatsClient } from './nats.connection.ts';

export const TEST_NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * A service name no other test run uses: streams live on the shared NATS
 * server, so runs (and tests) must not read each other's events.
 */
export function uniqueService(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** Test data: an envelope of `<service>.thing_happened.v1` with fresh ids. */
export function buildEnvelope(service: string, overrides: Partial<EventEnvelope> = {}): EventEnvelope {
  return {
    id: randomUUID(),
    type: `${service}.thing_happened.v1`,
    aggregateType: 'thing',
    aggregateId: randomUUID(),
    occurredAt: '2025-03-04T05:06:07.089Z',
    schemaVersion: 1,
    payload: { note: 'hello', amountMinor: 1250 },
    ...overrides,
  };
}

/** Deletes the event and dead-letter streams of the given services, if they exist. */
export async function deleteServiceStreams(nats: NatsClient, services: Iterable<string>): Promise<void> {
  const jsm = await nats.manager();
  for (const service of services) {
    for (const name of [eventStreamName(service), deadLetterStreamName(service)]) {
      await jsm.streams.delete(name).catch(() => false);
    }
  }
}

/** A port nothing listens on (bound, then released). */
export async function findClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP proxy in front of the NATS server that a test can take down and
 * bring back on the same port: a NATS outage without touching the server.
 */
export type TcpProxy = { url: string; stop(): Promise<void>; resume(): Promise<void> };

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    const listening = createServer((client) => {
      const upstream = tcpConnect(Number(targetPort || 4222), hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => listening.listen(port, '127.0.0.1', resolve));
    port = (listening.address() as { port: number }).port;
    server = listening;
  };
  await listen();
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      const closing = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      if (closing !== undefined) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    async resume() {
      if (server === undefined) await listen();
    },
  };
}
