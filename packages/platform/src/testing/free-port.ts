import { createServer } from 'node:net';

/**
 * Asks the kernel for a free loopback port, for a child process to listen on.
 * Another process could take it before the child binds; rare, and the start
 * then fails loudly.
 *
 * @example
 * const port = await findFreePort();
 * spawn(process.execPath, ['apps/server/src/main.ts'], { env: { ...process.env, PORT: String(port) } });
 */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
