/**
 * The plain-HTTP range reader of S3 read-backs, against a local server that answers ranges of a
 * buffer: whole ranges in order and in parallel over reused connections, and a rejection (never
 * wrong bytes) for every answer it does not take.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RangeReader } from '../src/stores/s3/s3-range-reader.ts';

const data = randomBytes(3 * 1024 * 1024 + 5);

type Behaviour = (request: IncomingMessage, response: ServerResponse, range: [number, number]) => void;

describe('RangeReader', () => {
  let server: Server;
  let base: string;
  let behaviour: Behaviour;
  const connections = new Set<unknown>();

  const serveRange: Behaviour = (_request, response, [start, end]) => {
    response.writeHead(206, {
      'content-length': end - start + 1,
      'content-range': `bytes ${start}-${end}/*`,
    });
    response.end(data.subarray(start, end + 1));
  };

  before(async () => {
    server = createServer((request, response) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(String(request.headers.range));
      assert.ok(match, 'a Range header');
      assert.equal(request.url, '/bucket/key?X-Amz-Signature=abc');
      behaviour(request, response, [Number(match[1]), Number(match[2])]);
    });
    server.on('connection', (socket) => {
      connections.add(socket);
      socket.on('close', () => connections.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bucket/key?X-Amz-Signature=abc`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const fetchInto = (reader: RangeReader, start: number, end: number, signal?: AbortSignal) =>
    reader.fetch(start, end, Buffer.alloc(end - start + 1), signal);

  it('reads ranges in order and four at a time over at most four reused connections', async () => {
    behaviour = serveRange;
    const reader = new RangeReader(new URL(base), { maxConnections: 4 });
    try {
      const range = 256 * 1024;
      const pieces: Buffer[] = [];
      for (let start = 0; start < data.length; start += 4 * range) {
        const batch = [];
        for (let from = start; from < Math.min(data.length, start + 4 * range); from += range) {
          batch.push(fetchInto(reader, from, Math.min(data.length, from + range) - 1));
        }
        for (const bytes of await Promise.all(batch)) pieces.push(Buffer.from(bytes));
      }
      assert.ok(Buffer.concat(pieces).equals(data));
      assert.ok(connections.size <= 4, `${connections.size} connections`);
    } finally {
      reader.close();
    }
  });

  it('opens a new connection after an answer that closes its own', async () => {
    behaviour = (request, response, range) => {
      response.setHeader('connection', 'close');
      serveRange(request, response, range);
    };
    const reader = new RangeReader(new URL(base), { maxConnections: 1 });
    try {
      for (const [start, end] of [
        [0, 99],
        [100, 1_000_000],
        [5, 5],
      ] as const) {
        assert.ok(Buffer.from(await fetchInto(reader, start, end)).equals(data.subarray(start, end + 1)));
      }
    } finally {
      reader.close();
    }
  });

  it('rejects answers it does not take: another status, a chunked body, a short one, a cut one', async () => {
    const cases: Array<[string, Behaviour, RegExp]> = [
      [
        'a 403',
        (_q, response) => {
          response.writeHead(403, { 'content-type': 'application/xml' });
          response.end('<Error><Code>AccessDenied</Code></Error>');
        },
        /answered HTTP\/1\.1 403/,
      ],
      [
        'a whole object (200) instead of the range',
        (_q, response) => {
          response.writeHead(200, { 'content-length': 10 });
          response.end(data.subarray(0, 10));
        },
        /answered HTTP\/1\.1 200/,
      ],
      [
        'a chunked body',
        (_q, response, [start, end]) => {
          response.writeHead(206);
          response.write(data.subarray(start, start + 10));
          response.end(data.subarray(start + 10, end + 1));
        },
        /chunked/,
      ],
      [
        'fewer bytes than asked',
        (_q, response, [start]) => {
          response.writeHead(206, { 'content-length': 10 });
          response.end(data.subarray(start, start + 10));
        },
        /sent 10 bytes/,
      ],
      [
        'a connection cut mid-body',
        (_q, response, [start, end]) => {
          response.writeHead(206, { 'content-length': end - start + 1 });
          response.write(data.subarray(start, start + 1000), () => response.socket?.destroy());
        },
        /closed the connection/,
      ],
    ];
    for (const [name, answer, error] of cases) {
      behaviour = answer;
      const reader = new RangeReader(new URL(base));
      try {
        await assert.rejects(fetchInto(reader, 0, 99_999), error, name);
      } finally {
        reader.close();
      }
    }
  });

  it('gives up on a stalled answer after its idle timeout, and at once on abort', async () => {
    behaviour = (_q, response, [start, end]) => {
      response.writeHead(206, { 'content-length': end - start + 1 });
      response.write(data.subarray(start, start + 10));
    };
    const reader = new RangeReader(new URL(base), { idleTimeoutMs: 300 });
    try {
      await assert.rejects(fetchInto(reader, 0, 99), /stopped answering/);
      const abort = new AbortController();
      const pending = fetchInto(reader, 0, 99, abort.signal);
      setTimeout(() => abort.abort(new Error('the read back stopped')), 50);
      const started = Date.now();
      await assert.rejects(pending, /the read back stopped/);
      assert.ok(Date.now() - started < 250, 'before the idle timeout');
    } finally {
      reader.close();
    }
  });

  it('takes a head that arrives in pieces, the body starting in the same read as its end', async () => {
    const raw = createNetServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 206 Partial Content\r\nContent-Le');
        setTimeout(() => socket.write('ngth: 10\r\n\r'), 20);
        setTimeout(() => socket.write(Buffer.concat([Buffer.from('\n'), data.subarray(0, 10)])), 40);
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const reader = new RangeReader(new URL(`http://127.0.0.1:${(raw.address() as AddressInfo).port}/b/k`));
    try {
      assert.ok(Buffer.from(await fetchInto(reader, 0, 9)).equals(data.subarray(0, 10)));
    } finally {
      reader.close();
      raw.close();
    }
  });

  it('speaks plain HTTP only', () => {
    assert.throws(() => new RangeReader(new URL('https://s3.example.com/b/k')), /plain HTTP/);
  });
});
