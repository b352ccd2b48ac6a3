/**
 * Finds request boundaries in the client→server bytes of one HTTP/1.1 connection, so the fault proxy
 * can act per request while forwarding every byte unchanged. Strict and small on purpose: it reads
 * the request line, the header fields and the body framing (RFC 9112 §6.3: chunked if it is the last
 * transfer coding, else Content-Length, else no body) and nothing more. Whatever it does not
 * understand turns the rest of the connection into raw bytes, which are still forwarded in order.
 */

export interface RequestHead {
  /** 1 for the first request of the connection. */
  readonly index: number;
  readonly method: string;
  readonly target: string;
  /** The target's path without the query; `*` for `OPTIONS *`. */
  readonly path: string;
  /** Field names lower-cased; repeated fields joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
}

/** Consecutive pieces cover the stream exactly: every byte is in one piece, in order. */
export type RequestPiece =
  | { kind: 'head'; head: RequestHead; bytes: Buffer }
  | { kind: 'body'; head: RequestHead; bytes: Buffer }
  | { kind: 'raw'; bytes: Buffer };

type State = 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailer' | 'raw';

/** Larger heads are not HTTP as the proxy knows it (Node's own limit is 16 KiB). */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 8 * 1024;
const MAX_METHOD_LENGTH = 32;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const END_OF_HEAD = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\s]+) HTTP\/1\.[01]$/;
const FIELD_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;[^\r\n]*)?\r\n$/;

export class RequestStreamParser {
  #state: State = 'head';
  /** Head bytes received so far, held back until the head is complete. */
  #held: Buffer | undefined;
  /** The chunk-size or trailer line read so far. */
  #line = '';
  /** Bytes left of the body, of the chunk's data, or of the CRLF after it. */
  #remaining = 0;
  #head: RequestHead | undefined;
  /** After this message the connection is no longer HTTP (Upgrade, CONNECT). */
  #rawAfterMessage = false;
  #count = 0;

  /** Splits `chunk` into pieces, handing each to `emit` in stream order. */
  push(chunk: Buffer, emit: (piece: RequestPiece) => void): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.#state === 'raw') {
        emit({ kind: 'raw', bytes: rest });
        return;
      }
      if (this.#state === 'head') {
        rest = this.#pushHead(rest, emit);
        continue;
      }
      const head = this.#head!;
      const used = this.#scanBody(rest);
      if (used > 0) emit({ kind: 'body', head, bytes: rest.subarray(0, used) });
      rest = rest.subarray(used);
    }
  }

  /** The client stopped sending: a head still held back is passed on as raw bytes. */
  finish(emit: (piece: RequestPiece) => void): void {
    const held = this.#held;
    this.#held = undefined;
    this.#state = 'raw';
    if (held !== undefined && held.length > 0) emit({ kind: 'raw', bytes: held });
  }

  #pushHead(chunk: Buffer, emit: (piece: RequestPiece) => void): Buffer {
    const heldLength = this.#held?.length ?? 0;
    const buffer = this.#held === undefined ? chunk : Buffer.concat([this.#held, chunk]);
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the request-line.
    let start = 0;
    while (buffer[start] === CR && buffer[start + 1] === LF) start += 2;
    const end = buffer.indexOf(END_OF_HEAD, Math.max(start, heldLength - 3));
    if (end === -1) {
      if (plausibleHeadStart(buffer, start)) {
        this.#held = buffer;
        return EMPTY;
      }
      return this.#giveUp(buffer, emit);
    }
    this.#held = undefined;
    const head = parseHead(buffer.toString('latin1', start, end), this.#count + 1);
    if (head === undefined) return this.#giveUp(buffer, emit);
    this.#count += 1;
    emit({ kind: 'head', head, bytes: buffer.subarray(0, end + 4) });
    this.#startBody(head);
    return buffer.subarray(end + 4);
  }

  #giveUp(bytes: Buffer, emit: (piece: RequestPiece) => void): Buffer {
    this.#held = undefined;
    this.#state = 'raw';
    emit({ kind: 'raw', bytes });
    return EMPTY;
  }

  #startBody(head: RequestHead): void {
    this.#head = head;
    this.#rawAfterMessage = head.method === 'CONNECT' || head.headers['upgrade'] !== undefined;
    const framing = bodyFraming(head);
    if (framing === 'invalid') {
      this.#state = 'raw';
    } else if (framing === 'chunked') {
      this.#state = 'chunk-size';
      this.#line = '';
    } else if (framing > 0) {
      this.#state = 'body';
      this.#remaining = framing;
    } else {
      this.#endMessage();
    }
  }

  #endMessage(): void {
    this.#state = this.#rawAfterMessage ? 'raw' : 'head';
    this.#head = undefined;
  }

  /** How many bytes at the start of `bytes` belong to the current message's body. */
  #scanBody(bytes: Buffer): number {
    let position = 0;
    while (position < bytes.length) {
      switch (this.#state) {
        case 'body':
        case 'chunk-data': {
          const n = Math.min(this.#remaining, bytes.length - position);
          position += n;
          this.#remaining -= n;
          if (this.#remaining === 0) {
            if (this.#state === 'body') {
              this.#endMessage();
              return position;
            }
            this.#state = 'chunk-data-end';
            this.#remaining = 2;
          }
          break;
        }
        case 'chunk-data-end': {
          const expected = this.#remaining === 2 ? CR : LF;
          if (bytes[position] !== expected) {
            this.#state = 'raw';
            return position;
          }
          position += 1;
          this.#remaining -= 1;
          if (this.#remaining === 0) {
            this.#state = 'chunk-size';
            this.#line = '';
          }
          break;
        }
        case 'chunk-size':
        case 'trailer': {
          const newline = bytes.indexOf(LF, position);
          const end = newline === -1 ? bytes.length : newline + 1;
          this.#line += bytes.toString('latin1', position, end);
          position = end;
          if (this.#line.length > MAX_LINE_BYTES) {
            this.#state = 'raw';
            return position;
          }
          if (newline === -1) break;
          if (!this.#endLine()) return position;
          break;
        }
        default:
          return position;
      }
    }
    return position;
  }

  /** Acts on a complete chunk-size or trailer line; false when the body ended or was malformed. */
  #endLine(): boolean {
    const line = this.#line;
    this.#line = '';
    if (!line.endsWith('\r\n')) {
      this.#state = 'raw';
      return false;
    }
    if (this.#state === 'trailer') {
      if (line !== '\r\n') return true;
      this.#endMessage();
      return false;
    }
    const size = CHUNK_SIZE_LINE.exec(line);
    if (size === null) {
      this.#state = 'raw';
      return false;
    }
    const length = Number.parseInt(size[1]!, 16);
    if (length === 0) {
      this.#state = 'trailer';
    } else {
      this.#state = 'chunk-data';
      this.#remaining = length;
    }
    return true;
  }
}

/**
 * Could `bytes` (from `start`) still become a request head? Keeps a non-HTTP stream from being held
 * back: its first bytes fail the method token or it grows past the limits without a request-line.
 */
function plausibleHeadStart(bytes: Buffer, start: number): boolean {
  if (bytes.length > MAX_HEAD_BYTES) return false;
  if (start === bytes.length - 1 && bytes[start] === CR) return true; // half of an empty line
  const lineEnd = bytes.indexOf(LF, start);
  if (lineEnd !== -1) {
    return bytes[lineEnd - 1] === CR && REQUEST_LINE.test(bytes.toString('latin1', start, lineEnd - 1));
  }
  if (bytes.length - start > MAX_LINE_BYTES) return false;
  const limit = Math.min(bytes.length, start + MAX_METHOD_LENGTH + 1);
  for (let i = start; i < limit; i += 1) {
    if (bytes[i] === SP) return i > start;
    if (!TCHAR.test(String.fromCharCode(bytes[i]!))) return false;
  }
  return limit - start <= MAX_METHOD_LENGTH;
}

function parseHead(text: string, index: number): RequestHead | undefined {
  const lines = text.split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0] ?? '');
  if (requestLine === null) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    // Obsolete line folding and bare CR/LF are refused by servers; the proxy gives up on them too.
    const field = FIELD_LINE.exec(line);
    if (field === null || /[\r\n]/.test(line)) return undefined;
    const name = field[1]!.toLowerCase();
    const value = field[2]!;
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const method = requestLine[1]!;
  const target = requestLine[2]!;
  return Object.freeze({ index, method, target, path: targetPath(target), headers: Object.freeze(headers) });
}

function targetPath(target: string): string {
  if (target.startsWith('/') || target === '*') {
    const query = target.indexOf('?');
    return query === -1 ? target : target.slice(0, query);
  }
  try {
    return new URL(target).pathname;
  } catch {
    return target;
  }
}

/** RFC 9112 §6.3 for requests: the body length, 'chunked', or 'invalid' when it cannot be known. */
function bodyFraming(head: RequestHead): number | 'chunked' | 'invalid' {
  const transferEncoding = head.headers['transfer-encoding'];
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.split(',').map((coding) => coding.trim().toLowerCase());
    return codings.at(-1) === 'chunked' ? 'chunked' : 'invalid';
  }
  const contentLength = head.headers['content-length'];
  if (contentLength === undefined) return 0;
  const values = new Set(contentLength.split(',').map((value) => value.trim()));
  if (values.size !== 1) return 'invalid';
  const [value = ''] = values;
  if (!/^\d{1,15}$/.test(value)) return 'invalid';
  return Number(value);
}
