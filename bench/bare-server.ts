// The ceiling every scenario is compared with: plain Fastify on this machine,
// one GET route returning a small JSON object, no plugins, no logger. Whatever
// Keel costs on top of this is what the "ratio to bare" column shows.
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 0);
const app = Fastify({ logger: false });

app.get('/', async () => ({ status: 'ok', service: 'bare' }));

await app.listen({ host: '127.0.0.1', port });

// The harness stops this process with SIGTERM; close so in-flight responses finish.
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
