/**
 * The fault proxy between real loopback peers: node:http servers and clients, and raw TCP where a
 * test must count bytes exactly. Timed assertions use wide bands: the suite shares two cores.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, createServer as createHttpServer, type IncomingHttpHeaders, request } from 'node:http';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FaultProxy, startFaultProxy } from '../src/fault-proxy.ts';
import { type RequestPiece, RequestStreamParser } from '../src/fault-proxy-http.ts';

const MiB = 1024 * 1024;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  /** One buffer is sent with Content-Length; several are sent chunked, one write each. */
  body?: Buffer | Buffer[];
  agent?: Agent;
  timeoutMs?: number;
}

function send(url: string, options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = { ...options.headers };
    if (Buffer.isBuffer(options.body)) headers['content-length'] = String(options.body.length);
    const req = request(url, { method: options.method ?? 'GET', headers, agent: options.agent ?? false });
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () => req.destroy(new Error('client timeout')));
    }
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    if (Array.isArray(options.body)) {
      for (const piece of options.body) req.write(piece);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

interface SeenRequest {
  method: string;
  path: string;
  /** The server-side port of the proxy's connection: equal ports mean one connection. */
  port: number;
  bytes: number;
}

interface Target {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A plain node:http server: `/echo` streams the body back, `/bytes/N` answers N bytes, `/ping`
 * answers `pong`, anything else reads the body and answers its length and SHA-256 as JSON.
 */
async function startTarget(): Promise<Target> {
  const seen: SeenRequest[] = [];
  const server = createHttpServer((req, res) => {
    const record = {
      method: req.method ?? '',
      path: req.url ?? '',
      port: req.socket.remotePort ?? 0,
      bytes: 0,
    };
    seen.push(record);
    req.on('data', (chunk: Buffer) => {
      record.bytes += chunk.length;
    });
    if (record.path === '/echo') {
      res.writeHead(200, { 'content-length': req.headers['content-length'] ?? '0' });
      req.pipe(res);
    } else if (record.path.startsWith('/bytes/')) {
      res.end(Buffer.alloc(Number(record.path.slice('/bytes/'.length)), 7));
    } else if (record.path === '/ping') {
      req.resume();
      res.end('pong');
    } else {
      const hash = createHash('sha256');
      req.on('data', (chunk: Buffer) => hash.update(chunk));
      req.on('end', () => res.end(JSON.stringify({ bytes: record.bytes, sha256: hash.digest('hex') })));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface TcpCounter {
  url: string;
  /** Bytes received per connection, in accept order. */
  counts: number[];
  /** Settles when `n` connections have closed. */
  closed(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A raw TCP server that counts what each connection receives. */
async function startTcpCounter(): Promise<TcpCounter> {
  const counts: number[] = [];
  let closedCount = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const server: Server = createTcpServer((socket) => {
    const index = counts.push(0) - 1;
    socket.on('data', (chunk: Buffer) => {
      counts[index]! += chunk.length;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closedCount += 1;
      for (const waiter of waiters.filter((w) => w.n <= closedCount)) waiter.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    counts,
    closed: (n) => new Promise((resolve) => (n <= closedCount ? resolve() : waiters.push({ n, resolve }))),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Raw bytes that no HTTP parser mistakes for a request (a TLS record starts with 0x16). */
function rawBytes(length: number): Buffer {
  const bytes = randomBytes(length);
  bytes[0] = 0x16;
  return bytes;
}

/** Connects to the proxy, writes `bytes`, optionally ends; resolves with the error it ended with. */
function sendRaw(
  proxy: FaultProxy,
  bytes: Buffer,
  end: boolean,
): { socket: Socket; done: Promise<string | undefined> } {
  const socket = connect({ host: '127.0.0.1', port: proxy.port });
  const done = new Promise<string | undefined>((resolve) => {
    let code: string | undefined;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      code = error.code;
    });
    socket.on('close', () => resolve(code));
  });
  socket.resume();
  socket.write(bytes);
  if (end) socket.end();
  return { socket, done };
}

async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function eventually(check: () => boolean, what: string, withinMs = 3000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

describe('RequestStreamParser', () => {
  const stream = Buffer.from(
    'PATCH /files/a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
      'POST /files/b HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' +
      '3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n' +
      '\r\nGET /ping HTTP/1.1\r\nhost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n' +
      'HEAD /x HTTP/1.0\r\n\r\n',
    'latin1',
  );

  function parse(input: Buffer, pieceSize: number): RequestPiece[] {
    const parser = new RequestStreamParser();
    const pieces: RequestPiece[] = [];
    for (let i = 0; i < input.length; i += pieceSize) {
      parser.push(input.subarray(i, i + pieceSize), (piece) => pieces.push(piece));
    }
    return pieces;
  }

  for (const pieceSize of [stream.length, 1, 7, 64]) {
    it(`finds four requests on one connection, fed ${pieceSize} bytes at a time`, () => {
      const pieces = parse(stream, pieceSize);
      assert.ok(
        Buffer.concat(pieces.map((piece) => piece.bytes)).equals(stream),
        'every byte once, in order',
      );
      const heads = pieces.flatMap((piece) => (piece.kind === 'head' ? [piece.head] : []));
      assert.deepEqual(
        heads.map((head) => [head.index, head.method, head.path]),
        [
          [1, 'PATCH', '/files/a'],
          [2, 'POST', '/files/b'],
          [3, 'GET', '/ping'],
          [4, 'HEAD', '/x'],
        ],
      );
      assert.equal(heads[2]!.headers['x-a'], '1, 2');
      const bodyBytes = (index: number) =>
        pieces
          .filter((piece) => piece.kind === 'body' && piece.head.index === index)
          .reduce((sum, piece) => sum + piece.bytes.length, 0);
      assert.equal(bodyBytes(1), 5);
      assert.equal(
        bodyBytes(2),
        '3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n'.length,
      );
      assert.equal(bodyBytes(3), 0);
      assert.ok(pieces.every((piece) => piece.kind !== 'raw'));
    });
  }

  const notUnderstood: [string, string][] = [
    ['binary bytes', '\x16\x03\x01\x02\x00 GET / HTTP/1.1\r\n\r\n'],
    ['conflicting Content-Length values', 'PUT / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello'],
    ['a transfer coding that does not end in chunked', 'PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx'],
    ['a malformed chunk size', 'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello'],
    ['a folded header line', 'GET / HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\nGET / HTTP/1.1\r\n\r\n'],
    ['a request line without a version', 'GET /\r\nHost: h\r\n\r\n'],
  ];
  for (const [what, text] of notUnderstood) {
    it(`forwards ${what} as raw bytes, holding nothing back`, () => {
      const input = Buffer.from(text, 'latin1');
      for (const pieceSize of [input.length, 1]) {
        const pieces = parse(input, pieceSize);
        assert.ok(Buffer.concat(pieces.map((piece) => piece.bytes)).equals(input));
        assert.equal(pieces.at(-1)?.kind, 'raw');
      }
    });
  }

  it('holds an incomplete head back, and passes it on as raw bytes when the client stops', () => {
    const parser = new RequestStreamParser();
    const pieces: RequestPiece[] = [];
    parser.push(Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n'), (piece) => pieces.push(piece));
    assert.equal(pieces.length, 0);
    parser.finish((piece) => pieces.push(piece));
    assert.deepEqual(
      pieces.map((piece) => [piece.kind, piece.bytes.toString()]),
      [['raw', 'GET / HTTP/1.1\r\nHost: h\r\n']],
    );
  });
});

describe('fault proxy', () => {
  let target: Target;
  let proxy: FaultProxy;

  before(async () => {
    target = await startTarget();
    proxy = await startFaultProxy({ target: target.url });
  });

  after(async () => {
    await proxy.close();
    await target.close();
  });

  it('forwards 64 MiB each way byte for byte when no fault is set', async () => {
    proxy.setFaults({});
    proxy.resetStats();
    const body = randomBytes(64 * MiB);
    const reply = await send(`${proxy.url}/echo`, { method: 'POST', body });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.length, body.length);
    assert.equal(sha256(reply.body), sha256(body));
    const stats = proxy.stats;
    assert.equal(stats.bodyBytesToServer, 64 * MiB);
    assert.equal(stats.bytesToServer, stats.bytesFromClient);
    assert.equal(stats.bytesToClient, stats.bytesFromServer);
    assert.equal(stats.requests, 1);
    assert.deepEqual([stats.cuts, stats.stalls, stats.injectedResponses], [0, 0, 0]);
  });

  it('adds latencyMs to each direction: the round trip grows by twice the latency', async (t) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const roundTrip = async () => {
        const times: number[] = [];
        for (let i = 0; i < 5; i += 1) {
          const started = performance.now();
          assert.equal((await send(`${proxy.url}/ping`, { agent })).body.toString(), 'pong');
          times.push(performance.now() - started);
        }
        return times.sort((a, b) => a - b)[2]!;
      };
      proxy.setFaults({});
      await send(`${proxy.url}/ping`, { agent });
      const base = await roundTrip();
      proxy.setFaults({ latencyMs: 40 });
      const slow = await roundTrip();
      t.diagnostic(
        `median round trip ${base.toFixed(1)} ms without latency, ${slow.toFixed(1)} ms with 40 ms`,
      );
      assert.ok(slow >= 79, `round trip ${slow.toFixed(1)} ms with 40 ms each way`);
      assert.ok(slow - base < 80 + 100, `round trip grew by ${(slow - base).toFixed(1)} ms`);
    } finally {
      agent.destroy();
      proxy.setFaults({});
    }
  });

  it('limits bandwidth per connection in each direction, and across connections', async (t) => {
    const rate = async (run: () => Promise<unknown>, bytes: number) => {
      const started = performance.now();
      await run();
      return bytes / ((performance.now() - started) / 1000) / 1e6;
    };
    try {
      proxy.setFaults({ bandwidthBytesPerSec: 4_000_000 });
      const up = await rate(
        () => send(`${proxy.url}/sink`, { method: 'PUT', body: randomBytes(2_000_000) }),
        2e6,
      );
      const down = await rate(async () => {
        assert.equal((await send(`${proxy.url}/bytes/2000000`)).body.length, 2_000_000);
      }, 2e6);
      proxy.setFaults({ totalBandwidthBytesPerSec: 4_000_000 });
      const shared = await rate(
        () =>
          Promise.all(
            [1, 2].map(() => send(`${proxy.url}/sink`, { method: 'PUT', body: randomBytes(1_000_000) })),
          ),
        2e6,
      );
      t.diagnostic(
        `4 MB/s limit: upload ${up.toFixed(2)}, download ${down.toFixed(2)}, shared ${shared.toFixed(2)} MB/s`,
      );
      for (const [what, measured] of [
        ['upload', up],
        ['download', down],
        ['two uploads sharing the limit', shared],
      ] as const) {
        assert.ok(measured > 2 && measured < 4.6, `${what}: ${measured.toFixed(2)} MB/s at a 4 MB/s limit`);
      }
    } finally {
      proxy.setFaults({});
    }
  });

  it('emulates a 1 MiB window at a 50 ms round trip: about 20 MB/s for one upload, bytes intact', async (t) => {
    try {
      proxy.setFaults({ latencyMs: 25, maxInFlightBytes: MiB });
      const body = randomBytes(40 * MiB);
      const started = performance.now();
      const reply = await send(`${proxy.url}/sink`, { method: 'PUT', body });
      const seconds = (performance.now() - started) / 1000;
      const mbPerSec = body.length / seconds / 1e6;
      t.diagnostic(`40 MiB in ${seconds.toFixed(2)} s: ${mbPerSec.toFixed(1)} MB/s`);
      assert.deepEqual(JSON.parse(reply.body.toString()), { bytes: body.length, sha256: sha256(body) });
      // 1 MiB per 50 ms is 21 MB/s; timers only ever fire late, and the machine is shared.
      assert.ok(mbPerSec > 12 && mbPerSec < 28, `window-limited upload ran at ${mbPerSec.toFixed(1)} MB/s`);
    } finally {
      proxy.setFaults({});
    }
  });

  it('answers the next two matching requests with 503 and Retry-After, then forwards again', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      proxy.setFaults({});
      proxy.resetStats();
      const first = target.seen.length;
      assert.equal((await send(`${proxy.url}/ping`, { agent })).status, 200);
      proxy.setFaults({
        respond: { status: 503, count: 2, retryAfter: '3', match: { method: 'PATCH', pathPrefix: '/sink' } },
      });
      assert.equal((await send(`${proxy.url}/ping`, { agent })).status, 200);
      const body = randomBytes(256 * 1024);
      for (let i = 0; i < 2; i += 1) {
        const reply = await send(`${proxy.url}/sink/1`, { method: 'PATCH', body, agent });
        assert.equal(reply.status, 503);
        assert.equal(reply.headers['retry-after'], '3');
        assert.equal(reply.headers.connection, 'close');
        assert.equal(JSON.parse(reply.body.toString()).error.code, 'ERR_INJECTED');
      }
      const passed = await send(`${proxy.url}/sink/1`, { method: 'PATCH', body, agent });
      assert.equal(passed.status, 200);
      assert.deepEqual(JSON.parse(passed.body.toString()), { bytes: body.length, sha256: sha256(body) });
      const seen = target.seen.slice(first);
      assert.deepEqual(
        seen.map((request) => request.method),
        ['GET', 'GET', 'PATCH'],
      );
      assert.equal(seen[0]!.port, seen[1]!.port, 'the two GETs share one keep-alive connection');
      assert.equal(proxy.stats.injectedResponses, 2);
      assert.equal(proxy.stats.connections, 3);
    } finally {
      agent.destroy();
      proxy.setFaults({});
    }
  });

  it('finds request boundaries on keep-alive connections (chunked and Content-Length bodies)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      proxy.setFaults({ respond: { status: 502, every: 2, match: { method: 'POST' } } });
      const first = target.seen.length;
      const chunked = [randomBytes(1000), randomBytes(70_000), randomBytes(3)];
      const statuses: number[] = [];
      statuses.push((await send(`${proxy.url}/sink/a`, { method: 'POST', body: chunked, agent })).status);
      statuses.push((await send(`${proxy.url}/ping`, { agent })).status);
      statuses.push(
        (await send(`${proxy.url}/sink/b`, { method: 'POST', body: randomBytes(5000), agent })).status,
      );
      statuses.push((await send(`${proxy.url}/sink/c`, { method: 'POST', body: chunked, agent })).status);
      statuses.push((await send(`${proxy.url}/sink/d`, { method: 'POST', body: chunked, agent })).status);
      assert.deepEqual(statuses, [200, 200, 502, 200, 502]);
      const seen = target.seen.slice(first);
      assert.deepEqual(
        seen.map((request) => [request.method, request.path, request.bytes]),
        [
          ['POST', '/sink/a', 71_003],
          ['GET', '/ping', 0],
          ['POST', '/sink/c', 71_003],
        ],
      );
      assert.equal(seen[0]!.port, seen[1]!.port);
    } finally {
      agent.destroy();
      proxy.setFaults({});
    }
  });

  it('stalls a matching request after some body bytes; the client gives up, others pass', async () => {
    try {
      proxy.setFaults({ stall: { match: { pathPrefix: '/slow' }, afterBodyBytes: 1000 } });
      proxy.resetStats();
      const first = target.seen.length;
      await assert.rejects(
        send(`${proxy.url}/slow`, { method: 'PUT', body: randomBytes(100_000), timeoutMs: 300 }),
        /client timeout/,
      );
      const reply = await send(`${proxy.url}/sink`, { method: 'PUT', body: randomBytes(1000) });
      assert.equal(reply.status, 200);
      const slow = target.seen.slice(first).find((request) => request.path === '/slow');
      assert.equal(slow?.bytes, 1000);
      assert.equal(proxy.stats.stalls, 1);
    } finally {
      proxy.setFaults({});
    }
  });

  it('refuses invalid rules', () => {
    const invalid = [
      { cutEveryBytes: 0 },
      { cutEveryBytes: 1000, cutJitterBytes: 500 },
      { latencyMs: -1 },
      { maxInFlightBytes: 1.5 },
      { respond: { status: 200 } },
      { respond: { status: 503, retryAfter: '1\r\nX-Evil: 1' } },
      { respond: { status: 503, headers: { 'bad name': 'x' } } },
      { stall: { every: 0 } },
      { match: { method: 'GET /' } },
    ];
    for (const rules of invalid) {
      assert.throws(() => proxy.setFaults(rules), /fault proxy/, JSON.stringify(rules));
    }
  });
});

describe('fault proxy cuts and stalls (raw TCP, exact byte counts)', () => {
  let counter: TcpCounter;
  let proxy: FaultProxy;

  before(async () => {
    counter = await startTcpCounter();
    proxy = await startFaultProxy({ target: counter.url });
  });

  after(async () => {
    await proxy.close();
    await counter.close();
  });

  it('cuts a connection after exactly cutAfterBytes, resetting the client', async () => {
    proxy.setFaults({ cutAfterBytes: 30_000 });
    proxy.resetStats();
    const closedBefore = counter.counts.length;
    const { done } = sendRaw(proxy, rawBytes(100_000), false);
    assert.ok(['ECONNRESET', 'EPIPE'].includes((await within(3000, 'the cut', done)) ?? ''));
    await counter.closed(closedBefore + 1);
    assert.equal(counter.counts[closedBefore], 30_000);
    assert.equal(proxy.stats.cuts, 1);
    assert.equal(proxy.stats.bytesToServer, 30_000);
  });

  it('counts cutEveryBytes across connections', async () => {
    proxy.setFaults({ cutEveryBytes: 40_000 });
    proxy.resetStats();
    const start = counter.counts.length;
    for (const [i, length] of [25_000, 30_000, 10_000].entries()) {
      const { done } = sendRaw(proxy, rawBytes(length), true);
      await within(3000, `connection ${i + 1}`, done);
      await counter.closed(start + i + 1);
    }
    assert.deepEqual(counter.counts.slice(start), [25_000, 15_000, 10_000]);
    assert.equal(proxy.stats.cuts, 1);
  });

  it('stalls after stallAfterBytes, and close() still resolves with the link stalled', async () => {
    const stalling = await startFaultProxy({ target: counter.url, faults: { stallAfterBytes: 50_000 } });
    const start = counter.counts.length;
    const { socket, done } = sendRaw(stalling, rawBytes(2 * MiB), false);
    await eventually(() => stalling.stats.stalls === 1, 'the link stalls');
    await sleep(200);
    assert.equal(counter.counts[start], 50_000);
    assert.equal(socket.destroyed, false, 'the client is left hanging, not disconnected');
    await within(2000, 'close()', stalling.close());
    await within(2000, 'the client noticing the close', done);
    assert.equal(stalling.stats.openConnections, 0);
  });

  it('resets the client when the target refuses, and keeps serving', async () => {
    const gone = await startTcpCounter();
    await gone.close();
    const orphan = await startFaultProxy({ target: gone.url });
    try {
      for (let i = 1; i <= 2; i += 1) {
        await within(3000, 'the reset', sendRaw(orphan, rawBytes(10), false).done);
        assert.equal(orphan.stats.serverConnectErrors, i);
      }
    } finally {
      await within(2000, 'close()', orphan.close());
    }
  });
});

describe('a resuming client through a proxy that cuts every few MiB', () => {
  it('finishes a 24 MiB upload, re-sending at most one chunk per cut', async (t) => {
    const size = 24 * MiB;
    const chunk = MiB;
    const cutEvery = 3 * MiB;
    const jitter = 256 * 1024;
    const file = randomBytes(size);
    const stored: Buffer[] = [];
    let offset = 0;
    // A minimal resumable protocol: HEAD tells the offset; PATCH appends from it and keeps whatever
    // arrived when the connection breaks, as a tus server does.
    const server = createHttpServer((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'upload-offset': String(offset) }).end();
        return;
      }
      if (Number(req.headers['upload-offset']) !== offset) {
        req.resume();
        res.writeHead(409, { 'upload-offset': String(offset) }).end();
        return;
      }
      req.on('data', (data: Buffer) => {
        stored.push(data);
        offset += data.length;
      });
      req.on('error', () => {});
      req.on('end', () => res.writeHead(204, { 'upload-offset': String(offset) }).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const proxy = await startFaultProxy({
      target: origin,
      faults: { cutEveryBytes: cutEvery, cutJitterBytes: jitter, seed: 7, match: { method: 'PATCH' } },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      let failures = 0;
      let position = Number(
        (await send(`${proxy.url}/u`, { method: 'HEAD', agent })).headers['upload-offset'],
      );
      while (position < size) {
        try {
          const reply = await send(`${proxy.url}/u`, {
            method: 'PATCH',
            headers: { 'upload-offset': String(position) },
            body: file.subarray(position, Math.min(position + chunk, size)),
            agent,
          });
          position = Number(reply.headers['upload-offset']);
        } catch {
          failures += 1;
          assert.ok(failures < 100, 'the upload makes progress');
          position = Number(
            (await send(`${proxy.url}/u`, { method: 'HEAD', agent })).headers['upload-offset'],
          );
        }
      }
      assert.equal(sha256(Buffer.concat(stored)), sha256(file));
      const { cuts, bodyBytesToServer } = proxy.stats;
      assert.equal(failures, cuts, 'each cut failed exactly one request');
      assert.ok(cuts >= Math.floor(size / (cutEvery + jitter)), `${cuts} cuts`);
      const resent = bodyBytesToServer - size;
      t.diagnostic(`${cuts} cuts, ${resent} body bytes re-sent`);
      assert.ok(resent >= 0 && resent <= cuts * chunk, `${resent} bytes re-sent over ${cuts} cuts`);
    } finally {
      agent.destroy();
      await proxy.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
