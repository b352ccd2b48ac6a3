/**
 * One writer per upload, and no byte lost when a writer goes away: concurrent PATCHes, a stalled
 * PATCH that a resuming client's HEAD or PATCH takes over, a body cut off mid-way, and a body that
 * stops arriving (read timeout). Bodies are sent slowly over node:http so the timing is real.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSse, type SseClient } from './sse-client.ts';
import {
  createUpload,
  head,
  idOf,
  OCTETS,
  patch,
  type Reply,
  send,
  sha256,
  startServer,
  type TestServer,
} from './tus-helpers.ts';

// The races run where no writer is ever taken for stalled: a busy machine can hold a slow writer
// between two chunks for longer than a short stallMs, and the yield would leave no winner at all.
const RACE_STALL_MS = 600_000;
const RACE_LOCK_WAIT_MS = 1500;
// The takeover tests: a holder yields after STALL_MS without bytes; a lock request waits far longer
// than that, so a lock that comes before the wait ends can only have come from the yield, however
// slow the machine.
const STALL_MS = 1000;
const LOCK_WAIT_MS = 20_000;

interface SlowPatch {
  /** The response, or the client-side error if none came. */
  done: Promise<Reply | Error>;
  /** Bytes handed to the socket so far. */
  readonly sent: number;
  /** Destroys the connection mid-body. */
  destroy(): void;
  /** Time (ms, performance.now) the response arrived. */
  readonly answeredAt: number | undefined;
}

/**
 * PATCHes `data` at `offset` with `Content-Length: data.length`, writing `chunkSize` bytes every
 * `intervalMs`; after `stopAfter` bytes it writes nothing more and keeps the connection open.
 */
function slowPatch(
  location: string,
  offset: number,
  data: Buffer,
  options: { chunkSize: number; intervalMs: number; stopAfter?: number },
): SlowPatch {
  let sent = 0;
  let answered = false;
  let answeredAt: number | undefined;
  const req = httpRequest(location, {
    method: 'PATCH',
    agent: false,
    headers: { ...OCTETS, 'upload-offset': String(offset), 'content-length': String(data.length) },
  });
  const done = new Promise<Reply | Error>((resolve) => {
    req.on('response', (res) => {
      answered = true;
      answeredAt = performance.now();
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => resolve(error));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let code: string | undefined;
        let json: unknown;
        if (body.length > 0 && String(res.headers['content-type']).startsWith('application/json')) {
          json = JSON.parse(body.toString());
          code = (json as { error?: { code?: string } }).error?.code;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, code, json });
        req.destroy();
      });
    });
    // After an early answer the server may reset the connection while we still write: not an error.
    req.on('error', (error) => {
      if (!answered) resolve(error);
    });
  });
  const limit = Math.min(options.stopAfter ?? data.length, data.length);
  void (async () => {
    while (sent < limit && !answered && !req.destroyed) {
      const end = Math.min(sent + options.chunkSize, limit);
      req.write(data.subarray(sent, end));
      sent = end;
      if (sent < limit) await sleep(options.intervalMs);
    }
    if (sent === data.length && !req.destroyed) req.end();
  })();
  return {
    done,
    get sent() {
      return sent;
    },
    get answeredAt() {
      return answeredAt;
    },
    destroy() {
      req.destroy();
    },
  };
}

function asReply(value: Reply | Error): Reply {
  if (value instanceof Error) assert.fail(`no response: ${value.message}`);
  return value;
}

async function offsetOf(location: string): Promise<number> {
  const reply = await head(location);
  assert.equal(reply.status, 200, reply.body.toString());
  return Number(reply.headers['upload-offset']);
}

/** The bytes of an unfinished upload as the fs store holds them. */
function storedBytes(server: TestServer, location: string): Promise<Buffer> {
  return readFile(join(server.dataDir, 'uploads', idOf(location)));
}

describe('tus locking: concurrent PATCHes', () => {
  let server: TestServer;

  before(async () => {
    server = await startServer({ stallMs: RACE_STALL_MS, lockWaitMs: RACE_LOCK_WAIT_MS });
  });
  after(() => server.stop());

  const races = [
    // 16 chunks of 4 KiB each: about 0.5 s, or 1.9 s (longer than the lock wait) for the last.
    { name: 'simultaneous starts', delayMs: 0, intervalMs: 30 },
    { name: 'the second starts while the first is half-way', delayMs: 200, intervalMs: 30 },
    { name: 'the first outlasts the lock wait', delayMs: 100, intervalMs: 120 },
  ];
  for (const race of races) {
    it(`two concurrent PATCHes (${race.name}): one wins, the other gets 409/423, no interleaving`, async () => {
      const size = 64 * 1024;
      const location = await createUpload(server.endpoint, size);
      const bodies = [randomBytes(size), randomBytes(size)] as const;
      const first = slowPatch(location, 0, bodies[0], { chunkSize: 4096, intervalMs: race.intervalMs });
      await sleep(race.delayMs);
      const second = slowPatch(location, 0, bodies[1], { chunkSize: 4096, intervalMs: race.intervalMs });
      const replies = [asReply(await first.done), asReply(await second.done)];
      const statuses = replies.map((reply) => reply.status);
      const winners = statuses.flatMap((status, index) => (status === 204 ? [index] : []));
      assert.equal(winners.length, 1, `exactly one winner, got statuses ${statuses.join(', ')}`);
      const winner = winners[0]!;
      const loser = replies[1 - winner]!;
      assert.ok(loser.status === 409 || loser.status === 423, `loser status ${loser.status}`);
      assert.ok(
        ['ERR_OFFSET_MISMATCH', 'ERR_UPLOAD_LOCKED', 'ERR_LOCK_LOST'].includes(String(loser.code)),
        String(loser.code),
      );
      const file = await send(location);
      assert.equal(file.status, 200);
      assert.equal(sha256(file.body), sha256(bodies[winner]!));
    });
  }
});

describe('tus locking and interrupted bodies', () => {
  let server: TestServer;
  let feed: SseClient;

  before(async () => {
    server = await startServer({ stallMs: STALL_MS, lockWaitMs: LOCK_WAIT_MS });
    feed = await openSse(`${server.url}/uploads/events`);
    await feed.next('snapshot', undefined, 60_000);
  });
  after(async () => {
    feed?.close();
    await server.stop();
  });

  /** Waits until the server reads a PATCH body of this upload (it holds the upload's lock then). */
  async function receiving(location: string): Promise<void> {
    const id = idOf(location);
    await feed.next('progress', (data) => data.upload.id === id, 60_000);
  }

  it('a stalled PATCH yields to a new HEAD, which reports every byte that arrived', async () => {
    const size = 200 * 1024;
    const source = randomBytes(size);
    const location = await createUpload(server.endpoint, size);
    const stalled = slowPatch(location, 0, source, { chunkSize: 10_000, intervalMs: 5, stopAfter: 50_000 });
    await receiving(location);
    while (stalled.sent < 50_000) await sleep(10);

    const asked = performance.now();
    const state = await head(location);
    const waited = performance.now() - asked;
    assert.equal(state.status, 200, state.body.toString());
    assert.equal(state.headers['upload-offset'], '50000');
    // The holder yields once it has been idle for stallMs (checked every 100 ms): long before the
    // lock wait ends. A HEAD that waited for the whole lock wait would have got a 423 instead.
    assert.ok(waited < LOCK_WAIT_MS, `HEAD waited ${Math.round(waited)} ms`);

    const old = asReply(await stalled.done);
    assert.equal(old.status, 423);
    assert.equal(old.code, 'ERR_LOCK_LOST');
    assert.ok(stalled.answeredAt !== undefined && stalled.answeredAt - asked < STALL_MS + LOCK_WAIT_MS);

    const rest = await patch(location, 50_000, source.subarray(50_000));
    assert.equal(rest.status, 204, rest.body.toString());
    assert.equal(sha256((await send(location)).body), sha256(source));
  });

  it('a stalled PATCH yields to a new PATCH from the stalled offset, which completes', async () => {
    const size = 120 * 1024;
    const source = randomBytes(size);
    const location = await createUpload(server.endpoint, size);
    const stalled = slowPatch(location, 0, source, { chunkSize: 8192, intervalMs: 5, stopAfter: 40_960 });
    await receiving(location);
    while (stalled.sent < 40_960) await sleep(10);
    const resumed = await patch(location, 40_960, source.subarray(40_960));
    assert.equal(resumed.status, 204, resumed.body.toString());
    assert.equal(resumed.headers['upload-offset'], String(size));
    assert.equal(asReply(await stalled.done).status, 423);
    assert.equal(sha256((await send(location)).body), sha256(source));
  });

  it('an active PATCH is not cut off by a HEAD: the HEAD waits and the PATCH completes', async () => {
    const size = 64 * 1024;
    const source = randomBytes(size);
    const location = await createUpload(server.endpoint, size);
    // A chunk every 50 ms for about 1.6 s: longer than stallMs in all, never idle for it, done
    // well within the lock wait.
    const active = slowPatch(location, 0, source, { chunkSize: 2048, intervalMs: 50 });
    await receiving(location);
    const state = await head(location);
    const reply = asReply(await active.done);
    assert.equal(reply.status, 204, reply.body.toString());
    assert.equal(state.status, 200);
    assert.equal(state.headers['upload-offset'], String(size));
    assert.equal(sha256((await send(location)).body), sha256(source));
  });

  it('a PATCH cut off mid-body keeps every byte that arrived', async () => {
    const size = 256 * 1024;
    const source = randomBytes(size);
    const location = await createUpload(server.endpoint, size);
    const cut = slowPatch(location, 0, source, { chunkSize: 16_384, intervalMs: 5, stopAfter: 98_304 });
    await receiving(location);
    while (cut.sent < 98_304) await sleep(10);
    await sleep(100);
    cut.destroy();
    assert.ok((await cut.done) instanceof Error, 'the client saw its own connection end');

    const offset = await offsetOf(location);
    assert.ok(offset >= 16_384 && offset <= 98_304, `offset ${offset}`);
    const stored = await storedBytes(server, location);
    assert.equal(stored.length, offset);
    assert.ok(stored.equals(source.subarray(0, offset)), 'the stored prefix is the source prefix');

    assert.equal((await patch(location, offset, source.subarray(offset))).status, 204);
    assert.equal(sha256((await send(location)).body), sha256(source));
  });

  it('a checksummed PATCH cut off mid-body keeps nothing of that body', async () => {
    const size = 64 * 1024;
    const source = randomBytes(size);
    const location = await createUpload(server.endpoint, size);
    const req = httpRequest(location, {
      method: 'PATCH',
      agent: false,
      headers: {
        ...OCTETS,
        'upload-offset': '0',
        'content-length': String(size),
        'upload-checksum': `sha256 ${Buffer.from(sha256(source), 'hex').toString('base64')}`,
      },
    });
    req.on('error', () => {});
    req.write(source.subarray(0, 30_000));
    await sleep(150);
    req.destroy();
    assert.equal(await offsetOf(location), 0);
  });
});

describe('tus body read timeout', () => {
  let server: TestServer;
  const BODY_TIMEOUT_MS = 400;

  before(async () => {
    server = await startServer({ bodyTimeoutMs: BODY_TIMEOUT_MS, stallMs: 5000, lockWaitMs: 5000 });
  });
  after(() => server.stop());

  it('a body that stops arriving is answered 500 ERR_BODY_TIMEOUT and its bytes are kept', async () => {
    const size = 100 * 1024;
    const source = randomBytes(size);
    const location = await createUpload(server.endpoint, size);
    const started = performance.now();
    const idle = slowPatch(location, 0, source, { chunkSize: 12_345, intervalMs: 5, stopAfter: 37_035 });
    const reply = asReply(await idle.done);
    const took = performance.now() - started;
    assert.equal(reply.status, 500, reply.body.toString());
    assert.equal(reply.code, 'ERR_BODY_TIMEOUT');
    // Stopped by this timeout, not by the 60 s default nor any later one (a busy machine may
    // answer a few seconds late).
    assert.ok(
      took >= BODY_TIMEOUT_MS && took < BODY_TIMEOUT_MS + 20_000,
      `answered after ${Math.round(took)} ms`,
    );
    idle.destroy();

    assert.equal(await offsetOf(location), 37_035);
    assert.ok((await storedBytes(server, location)).equals(source.subarray(0, 37_035)));
    assert.equal((await patch(location, 37_035, source.subarray(37_035))).status, 204);
    assert.equal(sha256((await send(location)).body), sha256(source));
  });
});
