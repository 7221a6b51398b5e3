import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * How the proxy fails new connections:
 * - `refuse`: nothing listens; connecting fails with ECONNREFUSED (server down, port closed);
 * - `drop`: the connection is accepted and closed at once (a pooler or load
 *   balancer in front of a dead server);
 * - `hang`: the connection is accepted and never answered (a partition or a
 *   firewall silently dropping packets); only the client's timeout ends it.
 */
export type TcpProxyFault = 'refuse' | 'drop' | 'hang';

export type TcpProxy = {
  /** The loopback port the proxy listens on; stays the same across faults. */
  port: number;
  host: string;
  /** `url` with its host and port replaced by the proxy's (e.g. a postgres:// URL). */
  rewriteUrl: (url: string) => string;
  /** Destroys every open connection, both the client's and the target's side. */
  cutConnections: () => void;
  /** Cuts every open connection and fails new ones the given way until `accept()`. */
  refuse: (fault?: TcpProxyFault) => Promise<void>;
  /** Forwards new connections to the target again. */
  accept: () => Promise<void>;
  /** Connections currently open through the proxy, hung ones included. */
  openConnections: () => number;
  /** Connections accepted since the proxy started: proves a client did (not) try. */
  acceptedConnections: () => number;
  close: () => Promise<void>;
};

/**
 * A TCP proxy on 127.0.0.1 for fault-injection tests: point a client at it to
 * make its dependency unreachable and bring it back without touching the real
 * server.
 *
 * @example
 * const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: 5432 });
 * const database = createDatabase({ ...TEST_DATABASE_SETTINGS, url: proxy.rewriteUrl(testDb.url) }, logger);
 * proxy.cutConnections(); // every open connection drops, as in a network blip
 * await proxy.refuse(); // new connections fail with ECONNREFUSED
 * await proxy.accept(); // and work again
 * await proxy.close();
 */
export async function startTcpProxy(options: {
  targetHost: string;
  targetPort: number;
  /** Listen on this port; a free one when omitted. */
  port?: number;
}): Promise<TcpProxy> {
  const host = '127.0.0.1';
  // Every socket, both sides, and the client sides alone (one per connection).
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  let server: Server | undefined;
  let fault: TcpProxyFault | undefined;
  let isClosed = false;
  let accepted = 0;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A destroyed peer's error is the expected outcome here, not a test failure.
    socket.on('error', () => socket.destroy());
  };

  const handle = (client: Socket) => {
    accepted += 1;
    track(client);
    clients.add(client);
    client.once('close', () => clients.delete(client));
    if (fault === 'drop') {
      client.destroy();
      return;
    }
    if (fault === 'hang') return;
    const upstream = tcpConnect({ host: options.targetHost, port: options.targetPort });
    track(upstream);
    // Either side closing tears down the other: a half-open pair would hide
    // the fault from the client.
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const candidate = createServer(handle);
      candidate.once('error', reject);
      candidate.listen(port, host, () => {
        candidate.off('error', reject);
        resolve(candidate);
      });
    });

  const cutConnections = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    clients.clear();
  };

  const stopListening = async () => {
    const current = server;
    server = undefined;
    if (current === undefined) return;
    // close() waits for open connections, so they are cut first.
    const closing = new Promise<void>((resolve) => current.close(() => resolve()));
    cutConnections();
    await closing;
  };

  server = await listen(options.port ?? 0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
  const port = address.port;

  return {
    port,
    host,
    rewriteUrl(url) {
      const parsed = new URL(url);
      parsed.hostname = host;
      parsed.port = String(port);
      return parsed.toString();
    },
    cutConnections,
    async refuse(how = 'refuse') {
      fault = how;
      if (how === 'refuse') await stopListening();
      else cutConnections();
    },
    async accept() {
      if (isClosed) throw new Error('proxy is closed');
      // Hung connections would never recover; drop them like the fault ending would.
      if (fault === 'hang') cutConnections();
      fault = undefined;
      if (server === undefined) server = await listen(port);
    },
    openConnections: () => clients.size,
    acceptedConnections: () => accepted,
    async close() {
      isClosed = true;
      await stopListening();
      cutConnections();
    },
  };
}
