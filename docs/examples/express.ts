/**
 * Ferry mounted in an Express 5 app. `ferry.handler` answers its own paths (the tus endpoint
 * `/files/`, `/healthz`, `/readyz`, `/metrics`) and passes every other request to `next`, so it can
 * sit in front of the app's routes.
 *
 * Run: `node docs/examples/express.ts` — uploads go to ./ferry-data, the tus endpoint is
 * http://127.0.0.1:3000/files/ and the app's own route is http://127.0.0.1:3000/hello.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createFerry, type FerryOptions } from '@ferry/server';
import express from 'express';

export async function start(
  port: number,
  options: FerryOptions = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const ferry = await createFerry({ dataDir: './ferry-data', ...options });
  const app = express();

  // First, before any body parser: Ferry reads the request body as a stream. A parser in front of
  // it would consume (or reject) upload bodies. Parsers after it only ever see the app's requests.
  app.use(ferry.handler);
  app.use(express.json());

  app.get('/hello', (_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('hello from express');
  });
  app.post('/echo', (request: IncomingMessage & { body?: unknown }, response: ServerResponse) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(request.body));
  });

  // Node's default requestTimeout (300 s) would cut off a long upload; Ferry stops idle bodies
  // itself (bodyTimeoutMs), so the whole-request deadline is turned off.
  const server = createServer({ requestTimeout: 0 }, app);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve())); // stop accepting
      server.closeIdleConnections();
      await ferry.close(); // in-flight uploads stop, store what they received and answer 503
      server.closeAllConnections();
      await closed;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const running = await start(3000);
  console.log(`Express with Ferry on ${running.url} (tus endpoint ${running.url}/files/)`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void running.close());
}
