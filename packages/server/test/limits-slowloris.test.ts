/**
 * Slowloris over real sockets: connections that send their headers a byte a second, and PATCH
 * bodies that arrive a byte a second, are cut by the server (`headersTimeoutMs`, and
 * `minBodyBytesPerSecond` over windows of `bodyTimeoutMs`) while a normal 64 MiB upload runs at the
 * same time and completes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createUpload, head, send, sha256, startServer, type TestServer, TUS } from './tus-helpers.ts';

const TIMEOUT_MS = 2000;
const MiB = 1024 * 1024;

/** A raw connection that writes `head` then one byte of `drip` a second until the server ends it. */
interface Dripper {
  /** Resolves when the server closed the connection: what it answered, and after how long. */
  closed: Promise<{ answer: string; ms: number; byServer: boolean }>;
  /** Stops dripping and closes from our side (cleanup only). */
  stop(): void;
}

function drip(port: number, head: string, dripByte: string): Dripper {
  const started = performance.now();
  const socket: Socket = connect(port, '127.0.0.1');
  let answer = '';
  let stoppedByTest = false;
  let timer: NodeJS.Timeout | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  // Writing after the server closed fails with EPIPE/ECONNRESET; the close event tells the story.
  socket.on('error', () => {});
  socket.on('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      if (socket.writable) socket.write(dripByte);
    }, 1000);
  });
  const closed = new Promise<{ answer: string; ms: number; byServer: boolean }>((resolve) => {
    // `end`: the server sent FIN; `close` covers a reset as well.
    const done = () => {
      clearInterval(timer);
      resolve({ answer, ms: Math.round(performance.now() - started), byServer: !stoppedByTest });
    };
    socket.once('end', done);
    socket.once('close', done);
  });
  return {
    closed,
    stop() {
      stoppedByTest = true;
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** PATCHes `bytes` at offset 0 in one request, streamed in 1 MiB writes; resolves with status and ms. */
function patchAll(location: string, bytes: Buffer): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      location,
      {
        method: 'PATCH',
        agent: false,
        headers: {
          ...TUS,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': '0',
          'content-length': bytes.length,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, ms: Math.round(performance.now() - started) }),
        );
      },
    );
    req.on('error', reject);
    let at = 0;
    const pump = () => {
      while (at < bytes.length) {
        const end = Math.min(at + MiB, bytes.length);
        const more = req.write(bytes.subarray(at, end));
        at = end;
        if (!more) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

async function uploadAndCheck(server: TestServer, bytes: Buffer): Promise<number> {
  const location = await createUpload(server.endpoint, bytes.length);
  const { status, ms } = await patchAll(location, bytes);
  assert.equal(status, 204);
  const state = await head(location);
  assert.equal(state.headers['upload-offset'], String(bytes.length));
  const download = await send(location);
  assert.equal(download.status, 200);
  assert.equal(sha256(download.body), sha256(bytes), 'the upload stored exactly its bytes');
  return ms;
}

describe('slowloris', () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startServer({ headersTimeoutMs: TIMEOUT_MS, bodyTimeoutMs: TIMEOUT_MS });
    port = Number(new URL(server.url).port);
  });
  after(() => server?.stop());

  it('slow headers and 1-byte-per-second bodies are cut while a 64 MiB upload completes', {
    timeout: 120_000,
  }, async (t) => {
    const bytes = randomBytes(64 * MiB);
    const aloneMs = await uploadAndCheck(server, bytes);

    const slowHeaders = Array.from({ length: 20 }, () =>
      drip(port, `POST ${server.ferry.config.basePath} HTTP/1.1\r\nHost: localhost\r\nX-Slow: `, 'a'),
    );
    const slowBodies: Dripper[] = [];
    const trickled: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const location = new URL(await createUpload(server.endpoint, 10_000));
      trickled.push(location.href);
      slowBodies.push(
        drip(
          port,
          `PATCH ${location.pathname} HTTP/1.1\r\nHost: localhost\r\nTus-Resumable: 1.0.0\r\n` +
            'Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 10000\r\n\r\n',
          'b',
        ),
      );
    }
    const attackers = [...slowHeaders, ...slowBodies];
    try {
      const underAttackMs = await uploadAndCheck(server, bytes);
      const headerCuts = await Promise.all(slowHeaders.map((d) => d.closed));
      const bodyCuts = await Promise.all(slowBodies.map((d) => d.closed));
      for (const cut of headerCuts) {
        assert.ok(cut.byServer, 'the server closed the slow-headers connection');
        assert.match(cut.answer, /^HTTP\/1\.1 408 /, 'answered 408 before closing');
        assert.match(cut.answer, /ERR_REQUEST_TIMEOUT/);
      }
      for (const cut of bodyCuts) {
        assert.ok(cut.byServer, 'the server closed the slow-body connection');
        assert.match(cut.answer, /^HTTP\/1\.1 500 /, cut.answer);
        assert.match(cut.answer, /ERR_BODY_TIMEOUT/);
        assert.match(cut.answer, /bytes per second/);
      }
      const mbps = (ms: number) => (64 / (ms / 1000)).toFixed(0);
      t.diagnostic(
        `64 MiB alone ${aloneMs} ms (${mbps(aloneMs)} MiB/s), under attack ${underAttackMs} ms (${mbps(underAttackMs)} MiB/s); ` +
          `slow headers cut after ${Math.max(...headerCuts.map((c) => c.ms))} ms at most, ` +
          `slow bodies after ${Math.max(...bodyCuts.map((c) => c.ms))} ms at most (timeouts ${TIMEOUT_MS} ms)`,
      );
      // What a trickled body brought is kept: its upload resumes where it stopped.
      for (const location of trickled) {
        const offset = Number((await head(location)).headers['upload-offset']);
        assert.ok(offset >= 1 && offset < 10_000, `offset ${offset} kept`);
      }
    } finally {
      for (const attacker of attackers) attacker.stop();
    }
  });
});
