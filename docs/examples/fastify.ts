/**
 * Ferry mounted in a Fastify 5 app. Fastify parses request bodies before a route runs, so two
 * things are needed: a content-type parser for tus bodies that leaves the stream unread, and routes
 * that hand the raw Node request and response to `ferry.handler` after `reply.hijack()` (Fastify
 * then sends nothing itself).
 *
 * Run: `node docs/examples/fastify.ts` — uploads go to ./ferry-data, the tus endpoint is
 * http://127.0.0.1:3000/files/ and the app's own route is http://127.0.0.1:3000/hello.
 */
import { fileURLToPath } from 'node:url';
import { createFerry, type FerryOptions } from '@ferry/server';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';

export async function start(
  port: number,
  options: FerryOptions = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const ferry = await createFerry({ dataDir: './ferry-data', ...options });
  const app = Fastify();

  // tus PATCH (and POST with creation-with-upload) bodies: leave the stream for Ferry to read.
  // Without this Fastify answers 415; with a parser that reads the body, Ferry gets nothing (and
  // Fastify's bodyLimit, 1 MiB by default, would cap the chunk size).
  app.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => done(null));

  const toFerry = (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    ferry.handler(request.raw, reply.raw);
  };
  app.all('/files', toFerry);
  app.all('/files/*', toFerry);

  app.get('/hello', async () => 'hello from fastify');

  await app.listen({ port, host: '127.0.0.1' });
  const address = app.server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  return {
    url: `http://127.0.0.1:${actual}`,
    async close() {
      const closed = app.close(); // stop accepting
      await ferry.close(); // in-flight uploads stop, store what they received and answer 503
      await closed;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const running = await start(3000);
  console.log(`Fastify with Ferry on ${running.url} (tus endpoint ${running.url}/files/)`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void running.close());
}
