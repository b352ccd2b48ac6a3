/**
 * The parts transport against Ferry's parts API: edge sizes, parallel parts, part digests only
 * when asked or after the file's SHA-256 was refused (then only differing parts are re-sent), dedup
 * by the whole-file SHA-256, resume sending only missing parts, cancel, a 200 MB file, and the clear
 * error for a stream of unknown length. The stored file's SHA-256 always equals the source's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpRequest, Platform } from '../src/core/seams.ts';
import { HASH_FIRST_UP_TO } from '../src/core/upload.ts';
import {
  createUpload,
  createUploadWith,
  type Hasher,
  type UploadProgress,
  type UploadResult,
  type UploadSource,
  type UploadState,
} from '../src/index.ts';
import { nodePlatform } from '../src/node-api.ts';
import {
  ferryBytesReceived,
  fileDigest,
  MiB,
  makeTempDir,
  request,
  sha256,
  startFerry,
  type TestServer,
  tempResumeStore,
  writeRandomFile,
} from './helpers.ts';

describe('parts client against Ferry', () => {
  let server: TestServer;
  let endpoint: string;
  let dir: string;

  before(async () => {
    server = await startFerry();
    endpoint = `${server.origin}/uploads`;
    dir = await makeTempDir();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function assertStored(
    result: UploadResult,
    expected: { sha256: string; size: number },
  ): Promise<void> {
    assert.equal(result.protocol, 'parts');
    assert.equal(result.size, expected.size);
    assert.equal(result.sha256, expected.sha256);
    assert.deepEqual(await server.stored(result.url), expected);
  }

  for (const [label, size, chunkSize] of [
    ['0 B', 0, 5 * MiB],
    ['1 B', 1, 5 * MiB],
    ['exactly one part', 5 * MiB, 5 * MiB],
    ['three parts and a remainder', 15 * MiB + 3, 5 * MiB],
  ] as const) {
    it(`${label} from a Buffer`, async () => {
      const bytes = randomBytes(size);
      const result = await createUpload({
        endpoint,
        protocol: 'parts',
        source: bytes,
        chunkSize,
        resumeStore: false,
      }).start();
      await assertStored(result, { sha256: sha256(bytes), size });
      assert.equal(result.deduplicated, false);
    });
  }

  it('progress counts the parts the server confirmed', async () => {
    const bytes = randomBytes(15 * MiB + 3);
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      source: bytes,
      chunkSize: 5 * MiB,
      resumeStore: false,
    });
    const counts: number[] = [];
    upload.on('progress', (event) => {
      assert.equal(event.parts?.total, 4);
      counts.push(event.parts?.confirmed ?? -1);
    });
    await upload.start();
    assert.deepEqual(upload.progress.parts, { confirmed: 4, total: 4 });
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => a - b),
      'never goes back',
    );
    assert.equal(counts[counts.length - 1], 4);
  });

  it('200 MB from disk in parallel parts (the server picks the part size)', async (t) => {
    const path = join(dir, 'large.bin');
    const size = 200 * 1000 * 1000;
    await writeRandomFile(path, size);
    const expected = await fileDigest(path);
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      source: path,
      parallel: 4,
      resumeStore: false,
    });
    const progress: UploadProgress[] = [];
    upload.on('progress', (event) => progress.push(event));
    const started = performance.now();
    const result = await upload.start();
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`parts: 200 MB in ${seconds.toFixed(2)} s = ${(size / 1e6 / seconds).toFixed(0)} MB/s`);
    await assertStored(result, expected);
    let previous = 0;
    for (const event of progress) {
      assert.ok(event.bytesConfirmed >= previous && event.bytesConfirmed + event.bytesInFlight <= size);
      previous = event.bytesConfirmed;
    }
    assert.equal(progress[progress.length - 1]?.fraction, 1);
    await rm(path, { force: true });
  });

  it('the same file again is deduplicated: no part is sent', async () => {
    const bytes = randomBytes(6 * MiB);
    const { store } = await tempResumeStore();
    const first = await createUpload({
      endpoint,
      protocol: 'parts',
      source: bytes,
      resumeStore: store,
    }).start();
    assert.equal(first.deduplicated, false);
    const before = await ferryBytesReceived(server);
    const second = await createUpload({
      endpoint,
      protocol: 'parts',
      source: bytes,
      resumeStore: store,
    }).start();
    assert.equal(second.deduplicated, true);
    assert.equal(second.sha256, sha256(bytes));
    assert.equal((await ferryBytesReceived(server)) - before, 0);
    assert.deepEqual(await server.stored(second.url), { sha256: sha256(bytes), size: bytes.length });
  });

  it('pause and a second run with the resume store send only the missing parts', async () => {
    const bytes = randomBytes(30 * MiB);
    const { store } = await tempResumeStore();
    const options = {
      endpoint,
      protocol: 'parts' as const,
      source: bytes,
      name: 'resume.bin',
      chunkSize: 5 * MiB,
      parallel: 2,
      adaptiveConcurrency: false,
      resumeStore: store,
    };
    const first = createUpload({ ...options, limitRate: 16 * MiB });
    const states: UploadState[] = [];
    first.on('state', (event) => states.push(event.state));
    void first.start();
    while (first.progress.bytesConfirmed < 10 * MiB) await sleep(5);
    first.pause();
    assert.equal(first.state, 'paused');
    // Let the requests the pause cut end on the server, then ask what it holds.
    await sleep(300);
    const status = JSON.parse((await request(first.uploadUrl as string, 'GET')).body) as {
      receivedBytes: number;
    };
    assert.ok(status.receivedBytes >= first.progress.bytesConfirmed);
    const before = await ferryBytesReceived(server);

    const second = createUpload(options);
    const resumed: string[] = [];
    second.on('resumed', (event) => resumed.push(event.url));
    const result = await second.start();
    assert.deepEqual(resumed, [first.uploadUrl]);
    const sent = (await ferryBytesReceived(server)) - before;
    assert.equal(sent, bytes.length - status.receivedBytes, 'exactly the missing parts were sent');
    await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(states, ['creating', 'uploading', 'paused']);
  });

  it('a source too big to fingerprint first sends at once, and is resumable once its fingerprint is ready', async () => {
    const bytes = randomBytes(HASH_FIRST_UP_TO + 5 * MiB);
    const { store } = await tempResumeStore();
    let releaseHash = () => {};
    const hashGate = new Promise<void>((resolve) => {
      releaseHash = resolve;
    });
    const platform = nodePlatform();
    const slowHasher: Hasher = {
      ...platform.hasher,
      hashSource: async (source, signal) => {
        const hex = await platform.hasher.hashSource(source, signal);
        await hashGate;
        return hex;
      },
    };
    const options = {
      endpoint,
      protocol: 'parts' as const,
      source: bytes,
      name: 'big.bin',
      chunkSize: 5 * MiB,
      parallel: 2,
      adaptiveConcurrency: false,
      resumeStore: store,
    };
    const first = createUploadWith({ ...platform, hasher: slowHasher }, { ...options, limitRate: 32 * MiB });
    void first.start();
    while (first.progress.bytesConfirmed < 10 * MiB) await sleep(5);
    assert.deepEqual(await store.list(), [], 'not recorded before the fingerprint is known');
    releaseHash();
    let entries = await store.list();
    while (entries.length === 0) {
      await sleep(5);
      entries = await store.list();
    }
    assert.equal(entries[0]?.entry.uploadUrl, first.uploadUrl);
    assert.equal(entries[0]?.entry.sha256, sha256(bytes));
    first.pause();
    await sleep(300);

    const second = createUpload(options);
    const resumed: string[] = [];
    second.on('resumed', (event) => resumed.push(event.url));
    const result = await second.start();
    assert.deepEqual(resumed, [first.uploadUrl], 'the second run found the first upload');
    await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
    assert.deepEqual(await store.list(), []);
  });

  it('fingerprintFirst: a big file the server already holds is deduplicated, no part sent', async () => {
    const bytes = randomBytes(HASH_FIRST_UP_TO + MiB);
    const options = { endpoint, protocol: 'parts' as const, source: bytes, resumeStore: false as const };
    const first = await createUpload(options).start();
    await assertStored(first, { sha256: sha256(bytes), size: bytes.length });
    const before = await ferryBytesReceived(server);
    const again = await createUpload({ ...options, fingerprintFirst: true }).start();
    assert.equal(again.deduplicated, true);
    assert.equal((await ferryBytesReceived(server)) - before, 0, 'no byte was sent');
    await assertStored(again, { sha256: sha256(bytes), size: bytes.length });
  });

  interface RecordedPut {
    n: number;
    digest: string | undefined;
    want: string | undefined;
    /** What the seam was given to send. */
    body: 'bytes' | 'blob' | 'range';
  }

  /** A platform whose HTTP seam records each part PUT: its number, Content-Digest, Want-Content-Digest and body kind. */
  function recordingPlatform(): { platform: Platform; puts: RecordedPut[] } {
    const base = nodePlatform();
    const puts: RecordedPut[] = [];
    const http = {
      request(req: HttpRequest) {
        const part = /\/parts\/(\d+)$/.exec(req.url);
        if (req.method === 'PUT' && part) {
          puts.push({
            n: Number(part[1]),
            digest: req.headers['content-digest'],
            want: req.headers['want-content-digest'],
            body: req.body instanceof Uint8Array ? 'bytes' : req.body instanceof Blob ? 'blob' : 'range',
          });
        }
        return base.http.request(req);
      },
      sendsRanges: base.http.sendsRanges,
      close: () => base.http.close(),
    };
    return { platform: { ...base, http }, puts };
  }

  /** Bytes in memory whose part `n` reads wrong `times` times (a flaky read before sending). */
  function flakySource(bytes: Buffer, partSize: number, n: number, times: number): UploadSource {
    let wrong = times;
    const start = (n - 1) * partSize;
    return {
      size: bytes.length,
      name: undefined,
      streamedSha256: undefined,
      async read(from, to) {
        const view = bytes.subarray(from, Math.min(to, bytes.length));
        if (from !== start || to !== start + partSize || wrong === 0) return view;
        wrong -= 1;
        const copy = Buffer.from(view);
        copy[100] = (copy[100] ?? 0) ^ 0xff;
        return copy;
      },
      release() {},
      async close() {},
    };
  }

  it("by default parts carry no Content-Digest and decline the server's; checksum: true sends one with each", async () => {
    const bytes = randomBytes(11 * MiB);
    for (const checksum of [undefined, true]) {
      const { platform, puts } = recordingPlatform();
      const result = await createUploadWith(platform, {
        endpoint,
        protocol: 'parts',
        source: bytes,
        chunkSize: 5 * MiB,
        resumeStore: false,
        ...(checksum === undefined ? {} : { checksum }),
      }).start();
      await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
      assert.deepEqual(puts.map((put) => put.n).sort(), [1, 2, 3]);
      for (const put of puts) {
        if (checksum) {
          assert.match(put.digest ?? '', /^sha-256=:[A-Za-z0-9+/]{43}=:$/);
          assert.equal(put.want, undefined);
        } else {
          assert.equal(put.digest, undefined);
          assert.equal(put.want, 'sha-256=0', 'the server need not hash a part nobody compares');
        }
      }
    }
  });

  it("a big file: Node puts no Content-Digest even on the parts sent before its fingerprint is ready; a browser's default does", async () => {
    // Above HASH_FIRST_UP_TO the upload starts before the file is hashed, so its first parts go out
    // while the fingerprint is still running.
    const path = join(dir, 'digests.bin');
    await writeRandomFile(path, HASH_FIRST_UP_TO + 16 * MiB);
    const expected = await fileDigest(path);
    const sent: Record<string, (string | undefined)[]> = {};
    for (const partChecksum of [false, 'until-sha256'] as const) {
      const { platform, puts } = recordingPlatform();
      const result = await createUploadWith(
        { ...platform, partChecksum },
        { endpoint, protocol: 'parts', source: path, chunkSize: 8 * MiB, resumeStore: false },
      ).start();
      await assertStored(result, expected);
      puts.sort((a, b) => a.n - b.n);
      sent[String(partChecksum)] = puts.map((put) => put.digest);
      // A part is read from the file first only when its digest is made; the others are read as
      // they go out.
      for (const put of puts) assert.equal(put.body, put.digest === undefined ? 'range' : 'bytes');
    }
    assert.ok(
      sent['false']!.every((digest) => digest === undefined),
      'Node (partChecksum false): no part carries a digest',
    );
    assert.match(
      sent['until-sha256']![0] ?? '',
      /^sha-256=:/,
      'the first part, sent before the fingerprint, carries one',
    );
    assert.equal(nodePlatform().partChecksum, false, "Node's platform default");
    await rm(path);
  });

  it('a part sent wrong is found after the file SHA-256 is refused, and only it is sent again', async () => {
    const bytes = randomBytes(16 * MiB + 7);
    const { platform, puts } = recordingPlatform();
    const before = await ferryBytesReceived(server);
    const result = await createUploadWith(platform, {
      endpoint,
      protocol: 'parts',
      source: flakySource(bytes, 5 * MiB, 2, 1),
      chunkSize: 5 * MiB,
      resumeStore: false,
    }).start();
    await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
    assert.deepEqual(
      puts.map((put) => put.n),
      [...puts.slice(0, 4).map((put) => put.n), 2],
      'the four parts, then part 2 once more',
    );
    assert.equal(puts.length, 5);
    assert.match(puts[4]?.digest ?? '', /^sha-256=:/, 'the re-sent part carries its digest');
    assert.equal((await ferryBytesReceived(server)) - before, bytes.length + 5 * MiB);
  });

  it('a source that reads differently than it hashed fails with ERR_VERIFICATION_FAILED', async () => {
    const bytes = randomBytes(11 * MiB);
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      source: flakySource(bytes, 5 * MiB, 2, Number.POSITIVE_INFINITY),
      chunkSize: 5 * MiB,
      resumeStore: false,
    });
    await assert.rejects(upload.start(), (error: { code?: string; message?: string }) => {
      assert.equal(error.code, 'ERR_VERIFICATION_FAILED');
      assert.match(error.message ?? '', /source changed/);
      return true;
    });
  });

  it('cancel deletes the upload on the server', async () => {
    const bytes = randomBytes(20 * MiB);
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      source: bytes,
      chunkSize: 5 * MiB,
      limitRate: 16 * MiB,
      resumeStore: false,
    });
    const done = upload.start();
    while (upload.progress.bytesConfirmed < 5 * MiB) await sleep(5);
    const url = upload.uploadUrl as string;
    await upload.cancel();
    await assert.rejects(done, { code: 'ERR_CANCELLED' });
    const status = await request(url, 'GET');
    assert.equal(status.status, 404);
  });

  it('a stream of unknown length is refused with ERR_SIZE_REQUIRED', async () => {
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      source: Readable.from([Buffer.from('abc')]),
      resumeStore: false,
    });
    await assert.rejects(upload.start(), { code: 'ERR_SIZE_REQUIRED' });
  });

  it('a part size outside the S3 limits is refused before anything is sent', async () => {
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      source: randomBytes(3 * MiB),
      chunkSize: MiB,
      resumeStore: false,
    });
    await assert.rejects(upload.start(), { code: 'ERR_INVALID_OPTIONS' });
  });
});
