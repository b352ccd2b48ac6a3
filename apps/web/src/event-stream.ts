/**
 * Server-Sent Events over `fetch`, because `EventSource` cannot send an `Authorization` header and
 * Ferry refuses query tokens outside download links (docs/security.md). Parsed as the HTML
 * standard's event-stream format: `event`, `data` (lines joined with \n), `id`, `retry`, comments;
 * lines end in \n, \r\n or \r, and a chunk may end anywhere. Like `EventSource` it reconnects after
 * the `retry` delay with `Last-Event-ID` when the stream gave ids (Ferry's feed gives none: its
 * first event on every connection is a fresh snapshot). An answer that is not a stream (a 401) is
 * handed to `onRefused`, which says whether to try again later.
 */

export interface EventStreamOptions {
  url: string;
  /** Request headers, read on every (re)connection so a new token is used. */
  headers: () => Record<string, string>;
  onEvent: (type: string, data: string) => void;
  /** The stream is open (the answer was `200 text/event-stream`). */
  onOpen?: () => void;
  /** The stream ended or failed; a new connection follows after the retry delay. */
  onDrop?: () => void;
  /** An answer that is not a stream, with the server's error code; `true`: try again later. */
  onRefused?: (status: number, code: string | undefined) => boolean;
  /** Wait before reconnecting, in ms, until the stream says otherwise (`retry:`). Default 2000. */
  retryMs?: number;
  /** Wait after a refused answer, in ms. Default 5000. */
  refusedRetryMs?: number;
}

export interface EventStream {
  close(): void;
}

/** Turns text chunks into events (the standard's "interpret an event stream"). */
export class EventStreamParser {
  readonly #dispatch: (type: string, data: string, id: string) => void;
  readonly #onRetry: (ms: number) => void;
  #buffer = '';
  #type = '';
  #data: string[] = [];
  #id = '';
  /** The last chunk ended in \r: a \n that starts the next one belongs to that line end. */
  #afterCr = false;

  constructor(dispatch: (type: string, data: string, id: string) => void, onRetry: (ms: number) => void) {
    this.#dispatch = dispatch;
    this.#onRetry = onRetry;
  }

  push(chunk: string): void {
    let text = chunk;
    if (this.#afterCr && text.startsWith('\n')) text = text.slice(1);
    this.#afterCr = text.endsWith('\r');
    this.#buffer += text;
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    this.#buffer = lines.pop() ?? '';
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) this.#dispatch(this.#type || 'message', this.#data.join('\n'), this.#id);
      this.#type = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#type = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.#onRetry(Number(value));
  }
}

async function errorCode(response: Response): Promise<string | undefined> {
  try {
    const body = (await response.json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === 'string' ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}

export function openEventStream(options: EventStreamOptions): EventStream {
  const life = new AbortController();
  let retryMs = options.retryMs ?? 2000;
  let lastEventId = '';
  let timer: ReturnType<typeof setTimeout> | undefined;

  const later = (ms: number) => {
    if (!life.signal.aborted) timer = setTimeout(() => void connect(), ms);
  };

  async function connect(): Promise<void> {
    timer = undefined;
    let response: Response;
    try {
      response = await fetch(options.url, {
        headers: {
          accept: 'text/event-stream',
          ...options.headers(),
          ...(lastEventId === '' ? {} : { 'last-event-id': lastEventId }),
        },
        cache: 'no-store',
        signal: life.signal,
      });
    } catch {
      if (life.signal.aborted) return;
      options.onDrop?.();
      later(retryMs);
      return;
    }
    const type = response.headers.get('content-type') ?? '';
    if (!response.ok || !type.startsWith('text/event-stream') || response.body === null) {
      const code = await errorCode(response);
      if (life.signal.aborted) return;
      if (options.onRefused?.(response.status, code) ?? true) later(options.refusedRetryMs ?? 5000);
      return;
    }
    options.onOpen?.();
    const parser = new EventStreamParser(
      (event, data, id) => {
        lastEventId = id;
        options.onEvent(event, data);
      },
      (ms) => {
        retryMs = ms;
      },
    );
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch {
      // Cut off: reconnect below, as when the server ended the stream.
    }
    if (life.signal.aborted) return;
    options.onDrop?.();
    later(retryMs);
  }

  void connect();
  return {
    close() {
      life.abort();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
