/**
 * A Server-Sent Events reader for tests: one GET on its own connection, every event parsed as it
 * arrives (with its arrival time), and a `next` that waits for an event of a given kind.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface SseEvent {
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read the JSON shapes field by field
  data: any;
  /** performance.now() when it arrived */
  at: number;
}

export interface SseClient {
  status: number;
  headers: IncomingHttpHeaders;
  events: SseEvent[];
  /** `retry:` values and comment lines, as they came. */
  retry: number | undefined;
  comments: string[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** The next event (after those already taken) with this name that passes `accept`. */
  next(event: string, accept?: (data: SseEvent['data']) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let buffer = '';
      let taken = 0;
      let endedResolve: () => void = () => {};
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        retry: undefined,
        comments: [],
        ended: new Promise((done) => {
          endedResolve = done;
        }),
        async next(event, accept = () => true, timeoutMs = 5000) {
          const deadline = performance.now() + timeoutMs;
          for (;;) {
            for (let i = taken; i < client.events.length; i++) {
              const candidate = client.events[i]!;
              if (candidate.event === event && accept(candidate.data)) {
                taken = i + 1;
                return candidate;
              }
            }
            if (performance.now() > deadline) {
              throw new Error(
                `no "${event}" event within ${timeoutMs} ms; got ${client.events.map((e) => e.event).join(', ')}`,
              );
            }
            await new Promise((wait) => setTimeout(wait, 5));
          }
        },
        close() {
          req.destroy();
        },
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
            else if (line.startsWith('retry: ')) client.retry = Number(line.slice(7));
          }
          if (data.length > 0)
            client.events.push({ event, data: JSON.parse(data.join('\n')), at: performance.now() });
          end = buffer.indexOf('\n\n');
        }
      });
      res.on('end', () => endedResolve());
      res.on('close', () => endedResolve());
      res.on('error', () => endedResolve());
      resolve(client);
    });
    req.end();
  });
}
