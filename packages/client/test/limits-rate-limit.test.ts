/**
 * The client against a Ferry with a rate limit on starting uploads: when the server's budget is
 * spent, the creation answers 429 `ERR_RATE_LIMITED` with `Retry-After`; the client waits what the
 * server asks (a retry event) and completes with the right bytes. A parallel upload at default
 * settings starts one upload, so it never meets the limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ClientError, createUpload, type Protocol, type RetryEvent } from '../src/index.ts';
import { MiB, request, sha256, startFerry, type TestServer } from './helpers.ts';

const BURST = 5;
const PROTOCOLS: Protocol[] = ['tus', 'parts'];

describe('rate limit: the client backs off and completes', () => {
  let server: TestServer;
  const endpoints: Record<Protocol, string> = { tus: '', parts: '' };

  before(async () => {
    server = await startFerry({ rateLimitPerSecond: 1, rateLimitBurst: BURST });
    endpoints.tus = server.endpoint;
    endpoints.parts = `${server.origin}/uploads`;
  });
  after(() => server?.stop());

  /** Spends this address's budget: a burst of BURST+10 creations, at least one of them refused. */
  async function exhaust(): Promise<void> {
    const replies = await Promise.all(
      Array.from({ length: BURST + 10 }, () =>
        request(endpoints.tus, 'POST', { 'tus-resumable': '1.0.0', 'upload-length': '1' }),
      ),
    );
    const limited = replies.filter((reply) => reply.status === 429);
    assert.ok(limited.length >= 1, 'the burst met the limit');
    for (const reply of limited) {
      assert.match(String(reply.headers['retry-after']), /^[1-9][0-9]*$/);
      assert.equal(JSON.parse(reply.body).error.code, 'ERR_RATE_LIMITED');
    }
  }

  /**
   * One upload started while other creations keep the budget spent (the budget refills by one a
   * second, so on a busy machine the upload's own creation could otherwise find it refilled); the
   * others stop at the upload's first retry, so its retry finds a creation again.
   */
  async function uploadWhileSpent(protocol: Protocol, bytes: Buffer): Promise<RetryEvent[]> {
    await exhaust();
    const retries: RetryEvent[] = [];
    let spending = true;
    const spend = (async () => {
      while (spending)
        await request(endpoints.tus, 'POST', { 'tus-resumable': '1.0.0', 'upload-length': '1' });
    })();
    const upload = createUpload({
      endpoint: endpoints[protocol],
      protocol,
      source: bytes,
      resumeStore: false,
    });
    upload.on('retry', (event) => {
      spending = false;
      retries.push(event);
    });
    try {
      const result = await upload.start();
      assert.equal(result.sha256, sha256(bytes));
      assert.deepEqual(await server.stored(result.url), { sha256: sha256(bytes), size: bytes.length });
    } finally {
      spending = false;
      await spend;
    }
    return retries;
  }

  for (const protocol of PROTOCOLS) {
    it(`${protocol}: a 429 with Retry-After on creation is waited out, and the upload completes`, async () => {
      const bytes = randomBytes(3 * MiB + 7);
      // The creation may still, rarely, take the one token that came back between two others: try again.
      let retries: RetryEvent[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        retries = await uploadWhileSpent(protocol, bytes);
        if (retries.some((event) => (event.error as ClientError).status === 429)) break;
      }
      const limited = retries.filter((event) => (event.error as ClientError).status === 429);
      assert.ok(limited.length >= 1, `saw a 429 (retries: ${retries.map((e) => e.operation).join(', ')})`);
      for (const event of limited) {
        assert.ok(event.error instanceof ClientError);
        assert.equal(event.error.serverCode, 'ERR_RATE_LIMITED');
        // The wait is the server's Retry-After (whole seconds), not the client's own backoff.
        assert.ok(event.delayMs >= 1000 && event.delayMs % 1000 === 0, `waited ${event.delayMs} ms`);
      }
    });
  }

  it('parts: a 64 MiB parallel upload at default settings meets no limit', async () => {
    // A quiet second: the budget has refilled to at least one creation.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const bytes = randomBytes(64 * MiB);
    const retries: RetryEvent[] = [];
    const upload = createUpload({
      endpoint: endpoints.parts,
      protocol: 'parts',
      source: bytes,
      resumeStore: false,
    });
    upload.on('retry', (event) => retries.push(event));
    const result = await upload.start();
    assert.equal(result.sha256, sha256(bytes));
    assert.deepEqual(
      retries.filter((event) => (event.error as ClientError).status === 429),
      [],
      'one upload takes one creation; its parts are not counted',
    );
  });
});
