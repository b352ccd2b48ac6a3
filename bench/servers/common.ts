// Shared start-up for the comparison servers of the benchmark: flags, the one "listening" line the
// harness waits for, and exiting with the harness.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

export interface ServerFlags {
  host: string;
  port: number;
  dir: string | undefined;
}

export function serverFlags(): ServerFlags {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      dir: { type: 'string' },
    },
  });
  return { host: values.host, port: Number(values.port), dir: values.dir };
}

/** Listens, then prints `<name> listening on http://HOST:PORT` (the same shape as `ferry serve`). */
export function announce(server: http.Server, name: string, flags: ServerFlags): void {
  server.listen(flags.port, flags.host, () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`${name} listening on http://${flags.host}:${port}\n`);
  });
  // The harness holds our stdin open; when it closes, the harness is gone (even after kill -9).
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}

export function notFound(res: http.ServerResponse): void {
  res.writeHead(404, { 'Tus-Resumable': '1.0.0', 'Content-Length': 0 }).end();
}
