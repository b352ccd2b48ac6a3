/**
 * Ferry mounted in a Hono app on Node (@hono/node-server). Hono speaks web `Request`/`Response`,
 * so the routes hand `c.req.raw` to `ferry.fetch`; the body stays an unread stream until Ferry
 * reads it.
 *
 * Run: `node docs/examples/hono.ts` — uploads go to ./ferry-data, the tus endpoint is
 * http://127.0.0.1:3000/files/ and the app's own route is http://127.0.0.1:3000/hello.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createFerry, type FerryOptions } from '@ferry/server';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

export async function start(
  port: number,
  options: FerryOptions = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const ferry = await createFerry({ dataDir: './ferry-data', ...options });
  const app = new Hono();

  app.all('/files/*', (c) => ferry.fetch(c.req.raw));

  app.get('/hello', (c) => c.text('hello from hono'));

  const server = await new Promise<Server>((resolve) => {
    const created = serve(
      {
        fetch: app.fetch,
        port,
        hostname: '127.0.0.1',
        // Node's default requestTimeout (300 s) would cut off a long upload; Ferry stops idle
        // bodies itself (bodyTimeoutMs).
        serverOptions: { requestTimeout: 0 },
      },
      () => resolve(created as Server),
    );
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve())); // stop accepting
      server.closeIdleConnections();
      await ferry.close(); // in-flight uploads stop and store what they received
      server.closeAllConnections();
      await closed;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const running = await start(3000);
  console.log(`Hono with Ferry on ${running.url} (tus endpoint ${running.url}/files/)`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void running.close());
}
