/**
 * Upload tokens against a real Ferry server with an auth secret, over loopback: tus, parts and
 * downloads send `Authorization: Bearer`; a token function is asked again when the server says the
 * token expired, and the request is sent again without counting as a failure (`retry.limit: 0`
 * would fail the upload on any counted failure); other refusals fail at once with the server's
 * code; an upload stored for another subject is started afresh.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mintUploadToken } from '@ferry/server';
import { exeBytes } from '@ferry/testing';
import { TokenSource } from '../src/core/token.ts';
import {
  ClientError,
  createUpload,
  type Protocol,
  type RetryEvent,
  type UploadOptions,
} from '../src/index.ts';
import { downloadFile } from '../src/node-api.ts';
import {
  MiB,
  makeTempDir,
  request,
  sha256,
  startFerry,
  type TestServer,
  tempResumeStore,
} from './helpers.ts';

const SECRET = 'client-token-tests-secret-0123456789abcdef';

function mint(subject: string, ttlSeconds = 60, extra: { maxSize?: number; types?: string[] } = {}) {
  return mintUploadToken({ secret: SECRET, subject, ttlSeconds, ...extra });
}

/** Whether `error` is the client's refusal carrying `status` and the server's `serverCode`. */
function refused(status: number, serverCode: string) {
  return (error: unknown) => {
    assert.ok(error instanceof ClientError, String(error));
    assert.equal(error.code, 'ERR_UNAUTHORIZED', error.message);
    assert.equal(error.status, status, error.message);
    assert.equal(error.serverCode, serverCode, error.message);
    assert.match(error.message, new RegExp(serverCode));
    return true;
  };
}

/** Whether `error` is the client's refusal of the file's type, with the server's 403 and code. */
function typeRefused(error: unknown): boolean {
  assert.ok(error instanceof ClientError, String(error));
  assert.equal(error.code, 'ERR_TYPE_NOT_ALLOWED', error.message);
  assert.equal(error.status, 403, error.message);
  assert.equal(error.serverCode, 'ERR_TYPE_NOT_ALLOWED', error.message);
  assert.equal(error.retryable, false);
  assert.match(error.message, /the server does not accept this type of file/);
  return true;
}

const PROTOCOLS: Protocol[] = ['tus', 'parts'];

describe('upload tokens against Ferry with an auth secret', () => {
  let server: TestServer;
  let dir: string;
  const endpoints: Record<Protocol, string> = { tus: '', parts: '' };

  before(async () => {
    server = await startFerry({ authSecret: SECRET });
    endpoints.tus = server.endpoint;
    endpoints.parts = `${server.origin}/uploads`;
    dir = await makeTempDir();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The stored file, read back with a download authorized by `token`. */
  async function stored(url: string, token: string): Promise<string> {
    const output = join(dir, `check-${Math.random().toString(36).slice(2)}`);
    const result = await downloadFile({ url, output, token });
    assert.equal(result.sha256, sha256(await readFile(output)));
    return result.sha256;
  }

  for (const protocol of PROTOCOLS) {
    it(`${protocol}: uploads with a token; without one the server's 401 fails at once`, async () => {
      const bytes = randomBytes(3 * MiB + 5);
      const token = await mint('alice');
      const result = await createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: bytes,
        name: 'a.bin',
        token,
        resumeStore: false,
      }).start();
      assert.equal(await stored(result.url, token), sha256(bytes));

      const retries: RetryEvent[] = [];
      const bare = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: bytes,
        resumeStore: false,
      });
      bare.on('retry', (event) => retries.push(event));
      await assert.rejects(bare.start(), refused(401, 'ERR_TOKEN_MISSING'));
      assert.deepEqual(retries, [], 'a refused token is not retried');
    });

    it(`${protocol}: the token function is asked again after expiry, and no attempt counts as failed`, async () => {
      // tus: eight PATCHes of 256 KiB at 512 KiB/s; parts: three parts of 5 MiB at 4 MiB/s. About
      // 4 s either way, well past the 1 s tokens.
      const tus = protocol === 'tus';
      const bytes = randomBytes(tus ? 2 * MiB : 15 * MiB);
      let calls = 0;
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: bytes,
        name: 'slow.bin',
        // The first token lives 1 s at most; a renewed one at least 2 s (a whole-second `exp`
        // could leave a 1 s token a few ms, expired again before its request arrives).
        token: async () => {
          calls += 1;
          return mint('alice', calls === 1 ? 1 : 3);
        },
        chunkSize: tus ? 256 * 1024 : 5 * MiB,
        parallel: 1,
        adaptiveConcurrency: false,
        limitRate: tus ? 512 * 1024 : 4 * MiB,
        retry: { limit: 0 },
        resumeStore: false,
      });
      const result = await upload.start();
      assert.ok(calls >= 2, `the token function was called ${calls} times`);
      assert.equal(await stored(result.url, await mint('alice')), sha256(bytes));
    });

    it(`${protocol}: a paused upload resumes with a new token once the old one expired`, async () => {
      const chunk = protocol === 'tus' ? 256 * 1024 : 5 * MiB;
      const bytes = randomBytes(3 * chunk);
      let calls = 0;
      // When the last token handed out expires at the latest (its `exp` is whole seconds from a
      // floored now). On a busy machine the first one may already have been renewed before the
      // pause, so the pause lasts until whichever token the upload holds has expired.
      let lastExpiry = 0;
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: bytes,
        // The first token lives 1 s at most; a renewed one at least 2 s (a whole-second `exp`
        // could leave a 1 s token a few ms, expired again before its request arrives).
        token: async () => {
          calls += 1;
          const ttl = calls === 1 ? 1 : 3;
          lastExpiry = Date.now() + ttl * 1000;
          return mint('alice', ttl);
        },
        chunkSize: chunk,
        parallel: 1,
        adaptiveConcurrency: false,
        limitRate: 4 * chunk,
        retry: { limit: 0 },
        resumeStore: false,
      });
      const done = upload.start();
      while (upload.progress.bytesConfirmed < chunk && upload.state !== 'failed') await sleep(5);
      assert.notEqual(upload.state, 'failed');
      upload.pause();
      const callsBefore = calls;
      await sleep(Math.max(0, lastExpiry - Date.now()) + 1100);
      upload.resume();
      const result = await done;
      // The status read (tus HEAD, parts GET) after the pause met the expired token first.
      assert.ok(calls > callsBefore, `asked again after the pause (${callsBefore} → ${calls})`);
      assert.equal(await stored(result.url, await mint('alice')), sha256(bytes));
    });

    it(`${protocol}: a token renewed into another expired one fails with ERR_TOKEN_EXPIRED after one more ask`, async () => {
      const expired = await mint('alice', 1);
      await sleep(2100);
      let calls = 0;
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: randomBytes(1000),
        token: () => {
          calls += 1;
          return expired;
        },
        resumeStore: false,
      });
      await assert.rejects(upload.start(), refused(401, 'ERR_TOKEN_EXPIRED'));
      assert.equal(calls, 2, 'asked once, and once more after the expiry');
    });

    it(`${protocol}: a file above the token's maxSize fails with 413 ERR_TOKEN_MAX_SIZE`, async () => {
      const retries: RetryEvent[] = [];
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: randomBytes(2000),
        token: await mint('alice', 60, { maxSize: 1000 }),
        resumeStore: false,
      });
      upload.on('retry', (event) => retries.push(event));
      await assert.rejects(upload.start(), refused(413, 'ERR_TOKEN_MAX_SIZE'));
      assert.deepEqual(retries, []);
    });

    it(`${protocol}: a declared type the token does not allow fails with ERR_TYPE_NOT_ALLOWED, not as a vanished upload`, async () => {
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: randomBytes(2000),
        type: 'text/plain',
        token: await mint('alice', 60, { types: ['image/*'] }),
        resumeStore: false,
      });
      const restarts: unknown[] = [];
      upload.on('restart', (event) => restarts.push(event));
      await assert.rejects(upload.start(), typeRefused);
      assert.deepEqual(restarts, []);
    });

    it(`${protocol}: content the token's types do not allow fails at the end with ERR_TYPE_NOT_ALLOWED, not retried, and is forgotten`, async () => {
      const { store: resumeStore, dir: storeDir } = await tempResumeStore();
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: exeBytes(),
        name: 'cat.png',
        type: 'image/png',
        token: await mint('alice', 60, { types: ['image/*'] }),
        resumeStore,
        retry: { statusCodes: [403, 500], limit: 3, backoff: { initialMs: 1 } },
        fingerprintFirst: true,
      });
      const retries: RetryEvent[] = [];
      const restarts: unknown[] = [];
      upload.on('retry', (event) => retries.push(event));
      upload.on('restart', (event) => restarts.push(event));
      await assert.rejects(upload.start(), (error: unknown) => {
        typeRefused(error);
        const details = (error as ClientError).details;
        assert.equal(details?.['sniffed'], 'application/x-msdownload');
        assert.deepEqual(details?.['allowed'], ['image/*']);
        return true;
      });
      assert.deepEqual(retries, [], 'a refused type is not retried, even with 403 in statusCodes');
      assert.deepEqual(restarts, []);
      assert.deepEqual(await resumeStore.list(), [], 'the deleted upload is not kept for resuming');
      await rm(storeDir, { recursive: true, force: true });
    });

    it(`${protocol}: an upload stored for another subject is started afresh (the server answers 404)`, async () => {
      const bytes = randomBytes(3 * MiB);
      const { store, dir: storeDir } = await tempResumeStore();
      try {
        const options: UploadOptions = {
          endpoint: endpoints[protocol],
          protocol,
          source: bytes,
          name: 'shared.bin',
          chunkSize: protocol === 'parts' ? 5 * MiB : 512 * 1024,
          resumeStore: store,
        };
        const alice = await mint('alice');
        const first = createUpload({ ...options, token: alice, limitRate: 1024 * 1024 });
        void first.start().catch(() => {});
        while (first.uploadUrl === undefined || (await store.list()).length === 0) await sleep(5);
        first.pause();
        const aliceUrl = first.uploadUrl;

        const bob = await mint('bob');
        const second = createUpload({ ...options, token: bob });
        const events: string[] = [];
        second.on('resumed', () => events.push('resumed'));
        second.on('restart', (event) => events.push(`restart ${event.error.status}`));
        second.on('created', () => events.push('created'));
        const result = await second.start();
        assert.deepEqual(events, ['resumed', 'restart 404', 'created']);
        assert.notEqual(second.uploadUrl, aliceUrl);
        assert.equal(await stored(result.url, bob), sha256(bytes));
        // Alice's upload is still hers, and bob's file is not hers to read.
        const asAlice = await request(result.url, 'GET', { authorization: `Bearer ${alice}` });
        assert.equal(asAlice.status, 404);
        assert.deepEqual(await store.list(), []);
      } finally {
        await rm(storeDir, { recursive: true, force: true });
      }
    });
  }

  it('downloadFile: sends the token, asks a function again after expiry, and fails clearly without one', async () => {
    const bytes = randomBytes(MiB + 3);
    const token = await mint('carol');
    const { url } = await createUpload({
      endpoint: endpoints.tus,
      source: bytes,
      token,
      resumeStore: false,
    }).start();
    const expired = await mint('carol', 1);
    await sleep(2100);
    let calls = 0;
    const output = join(dir, 'carol.bin');
    const result = await downloadFile({
      url,
      output,
      chunkSize: 256 * 1024,
      token: () => {
        calls += 1;
        return calls === 1 ? expired : mint('carol');
      },
      retry: { limit: 0 },
    });
    assert.equal(result.sha256, sha256(bytes));
    assert.equal(calls, 2);
    // The HEAD that starts a download carries no body to name the code: the status says it.
    await assert.rejects(
      downloadFile({ url, output: join(dir, 'none.bin'), retry: { limit: 0 } }),
      (error: unknown) =>
        error instanceof ClientError && error.code === 'ERR_UNAUTHORIZED' && error.status === 401,
    );
  });

  it('refuses a token option that is neither a string nor a function', () => {
    assert.throws(
      () => createUpload({ endpoint: endpoints.tus, source: new Uint8Array(1), token: '' }),
      (error: unknown) => error instanceof ClientError && error.code === 'ERR_INVALID_OPTIONS',
    );
  });
});

describe('TokenSource', () => {
  it('asks a function once; requests refused with the same token share one renewal', async () => {
    let calls = 0;
    const tokens = new TokenSource(async () => {
      calls += 1;
      await sleep(10);
      return `t${calls}`;
    });
    assert.deepEqual(await Promise.all([tokens.current(), tokens.current()]), ['t1', 't1']);
    assert.deepEqual(await Promise.all([tokens.refresh('t1'), tokens.refresh('t1')]), ['t2', 't2']);
    // A request that still carried t1 gets the renewed token without another call.
    assert.equal(await tokens.refresh('t1'), 't2');
    // t2 was refused before the server ever accepted it: asking again cannot help.
    assert.equal(await tokens.refresh('t2'), undefined);
    tokens.accepted('t2');
    assert.equal(await tokens.refresh('t2'), 't3');
    // A new run (a retry after a failure) may ask again for a token refused in the last one.
    assert.equal(await tokens.refresh('t3'), undefined);
    tokens.newRun();
    assert.equal(await tokens.refresh('t3'), 't4');
    assert.equal(calls, 4);
  });

  it('a function that gives back the refused token is not tried with it again', async () => {
    let calls = 0;
    const tokens = new TokenSource(() => {
      calls += 1;
      return 'same';
    });
    assert.equal(await tokens.current(), 'same');
    assert.equal(await tokens.refresh('same'), undefined);
    assert.equal(await tokens.refresh('same'), undefined);
    assert.equal(calls, 2);
  });

  it('cannot renew a fixed string; a failing function fails with ERR_UNAUTHORIZED and is asked again next time', async () => {
    assert.equal(await new TokenSource('fixed').refresh('fixed'), undefined);
    let fail = true;
    const tokens = new TokenSource(() => {
      if (fail) throw new Error('backend down');
      return 'ok';
    });
    await assert.rejects(tokens.current(), (error: unknown) => {
      assert.ok(error instanceof ClientError);
      assert.equal(error.code, 'ERR_UNAUTHORIZED');
      assert.match(error.message, /backend down/);
      return true;
    });
    fail = false;
    assert.equal(await tokens.current(), 'ok');
  });
});
