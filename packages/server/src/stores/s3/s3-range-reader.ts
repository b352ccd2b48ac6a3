/**
 * Ranged GETs of one object over plain-HTTP keep-alive connections that read into one reused buffer
 * per connection, for reading a finished object back (`sha256Of`).
 *
 * Why: through node:http (and so through the AWS SDK), every socket read of a response becomes a new
 * 64 KiB Buffer. Reading a 1 GiB object back that way cost the reading process 3.6–4.6 CPU-seconds
 * (about 1 of them in V8's collector threads, freeing those Buffers) and took 3.5–4.5 s against the
 * local RGW, whose own share was 1.6 CPU-seconds. With Node's `onread` a socket reads into one
 * buffer the caller owns; the body is copied from there straight into the range's buffer, so
 * nothing is allocated per read: 1.2 CPU-seconds and 1.8–2.1 s for the same GiB.
 *
 * Only what a presigned GET of a range needs is spoken: one request at a time per connection, a
 * `206` answer with a `Content-Length` body. Anything else (another status, a chunked body, a
 * connection that closes early, a stall) rejects the fetch, and the caller fetches that range its
 * usual way; TLS endpoints do not use this reader at all.
 */
import { connect, type Socket } from 'node:net';

/** Bytes each connection reads into at once. */
const READ_BUFFER_BYTES = 256 * 1024;
/** Largest response head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;

export interface RangeReaderOptions {
  /** Connections kept at most (one request each at a time). Default 4. */
  maxConnections?: number;
  /** A request whose connection receives nothing for this long fails. Default 30 s. */
  idleTimeoutMs?: number;
}

interface Request {
  into: Uint8Array;
  at: number;
  /** The response head as received so far, until it is complete. */
  head: Buffer | undefined;
  /** The body's length, once the head was read. */
  length: number;
  resolve: (bytes: Uint8Array) => void;
  reject: (error: Error) => void;
}

class Connection {
  readonly socket: Socket;
  request: Request | undefined;
  /** The answer asked to close the connection, or it failed: not used again. */
  spent = false;

  constructor(url: URL, idleTimeoutMs: number) {
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    this.socket = connect({
      host: url.hostname,
      port: Number(url.port || 80),
      onread: {
        buffer: readBuffer,
        callback: (length) => {
          this.#received(readBuffer.subarray(0, length));
          return true;
        },
      },
    });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(idleTimeoutMs, () => this.fail(new Error('the object store stopped answering')));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new Error('the object store closed the connection')));
  }

  send(target: URL, start: number, end: number, into: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.request = { into, at: 0, head: Buffer.alloc(0), length: -1, resolve, reject };
      this.socket.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nRange: bytes=${start}-${end}\r\n\r\n`,
      );
    });
  }

  fail(error: Error): void {
    this.spent = true;
    const request = this.request;
    this.request = undefined;
    this.socket.destroy();
    request?.reject(error);
  }

  #received(chunk: Buffer): void {
    const request = this.request;
    if (request === undefined) {
      // Bytes nobody asked for: the connection is out of step.
      this.fail(new Error('the object store sent bytes after its answer'));
      return;
    }
    let body = chunk;
    if (request.head !== undefined) {
      // Only a head split across reads is copied, and only its bytes (the first read of an answer
      // is up to the whole read buffer, and a copy of it per range would be garbage again).
      const before = request.head.byteLength;
      const head = before === 0 ? chunk : Buffer.concat([request.head, chunk.subarray(0, MAX_HEAD_BYTES)]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.byteLength > MAX_HEAD_BYTES) this.fail(new Error('the answer has no end of its head'));
        else request.head = Buffer.from(head);
        return;
      }
      const problem = this.#readHead(request, head.subarray(0, end).toString('latin1'));
      if (problem !== undefined) {
        this.fail(new Error(problem));
        return;
      }
      request.head = undefined;
      body = chunk.subarray(end + 4 - before);
    }
    if (request.at + body.byteLength > request.length) {
      this.fail(new Error('the object store sent more bytes than its Content-Length'));
      return;
    }
    request.into.set(body, request.at);
    request.at += body.byteLength;
    if (request.at === request.length) {
      this.request = undefined;
      request.resolve(request.into.subarray(0, request.at));
    }
  }

  /** Takes the head's status and length; a reason to give up on the answer, if any. */
  #readHead(request: Request, head: string): string | undefined {
    const lines = head.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1];
    if (status !== '206') return `the object store answered ${lines[0]?.slice(0, 64)}`;
    let length: number | undefined;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length' && /^\d{1,15}$/.test(value)) length = Number(value);
      else if (name === 'transfer-encoding') return 'the object store sent a chunked answer';
      else if (name === 'connection' && value.toLowerCase() === 'close') this.spent = true;
    }
    if (length === undefined) return 'the answer has no Content-Length';
    if (length > request.into.byteLength) return 'the answer is longer than the range asked for';
    request.length = length;
    if (length === 0) return 'the answer is empty';
    return undefined;
  }
}

/** Reads ranges of the object a presigned GET URL names (plain `http:` only). */
export class RangeReader {
  readonly #url: URL;
  readonly #maxConnections: number;
  readonly #idleTimeoutMs: number;
  readonly #idle: Connection[] = [];
  #open = 0;
  #closed = false;

  constructor(url: URL, options: RangeReaderOptions = {}) {
    if (url.protocol !== 'http:') throw new Error(`RangeReader speaks plain HTTP, not ${url.protocol}`);
    this.#url = url;
    this.#maxConnections = options.maxConnections ?? 4;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  /**
   * Bytes `start..end` (inclusive) into `into` (at least that long); resolves with the view of
   * `into` that holds them. Rejects on anything but a whole `206` answer, and when `signal` aborts.
   */
  async fetch(start: number, end: number, into: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.#closed) throw new Error('the range reader is closed');
    if (end - start + 1 > into.byteLength) throw new RangeError('the buffer is shorter than the range');
    signal?.throwIfAborted();
    const connection = this.#take();
    const onAbort = () =>
      connection.fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const bytes = await connection.send(this.#url, start, end, into);
      if (bytes.byteLength !== end - start + 1) {
        connection.fail(new Error('the answer is not the range asked for'));
        throw new Error(`bytes ${start}-${end}: the object store sent ${bytes.byteLength} bytes`);
      }
      return bytes;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#give(connection);
    }
  }

  /** Closes every connection; fetches in progress reject. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#idle.splice(0)) connection.socket.destroy();
  }

  #take(): Connection {
    for (let idle = this.#idle.pop(); idle !== undefined; idle = this.#idle.pop()) {
      // One the object store closed while it waited is gone.
      if (!idle.spent) return idle;
      this.#open--;
    }
    if (this.#open >= this.#maxConnections) throw new Error('more fetches at once than connections');
    this.#open++;
    return new Connection(this.#url, this.#idleTimeoutMs);
  }

  #give(connection: Connection): void {
    if (connection.spent || connection.request !== undefined || this.#closed) {
      connection.socket.destroy();
      this.#open--;
      return;
    }
    this.#idle.push(connection);
  }
}
