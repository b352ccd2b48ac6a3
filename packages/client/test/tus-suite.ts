/**
 * The tus client tests every tus server must pass (Ferry and @tus/server run the same suite):
 * sizes at the edges, every source kind, a 200 MB file, pause/resume, cancel, resume-store
 * bookkeeping and honest progress. Every upload ends with the stored file's SHA-256 equal to the
 * source's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, type UploadProgress, type UploadResult, type UploadState } from '../src/index.ts';
import {
  fileDigest,
  MiB,
  makeTempDir,
  sha256,
  type TestServer,
  tempResumeStore,
  tusHead,
  writeRandomFile,
} from './helpers.ts';

export function describeTusClient(name: string, start: () => Promise<TestServer>): void {
  describe(`tus client against ${name}`, () => {
    let server: TestServer;
    let dir: string;

    before(async () => {
      server = await start();
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
      assert.equal(result.size, expected.size);
      assert.equal(result.sha256, expected.sha256, 'the client computed the source SHA-256');
      assert.deepEqual(await server.stored(result.url), expected, 'the server stored exactly the source');
    }

    for (const [label, size, chunkSize] of [
      ['0 B', 0, MiB],
      ['1 B', 1, MiB],
      ['exactly one chunk', MiB, MiB],
      ['one chunk and one byte', MiB + 1, MiB],
      ['five chunks and a remainder', 5 * MiB + 12_345, MiB],
    ] as const) {
      it(`${label} from a Buffer`, async () => {
        const bytes = randomBytes(size);
        const upload = createUpload({
          endpoint: server.endpoint,
          source: bytes,
          chunkSize,
          resumeStore: false,
        });
        const result = await upload.start();
        assert.equal(upload.state, 'done');
        assert.equal(result.protocol, 'tus');
        await assertStored(result, { sha256: sha256(bytes), size });
      });
    }

    it('without creation-with-upload and without checksums (the plain core protocol)', async () => {
      const bytes = randomBytes(3 * MiB + 7);
      const result = await createUpload({
        endpoint: server.endpoint,
        source: bytes,
        chunkSize: MiB,
        creationWithUpload: false,
        checksum: false,
        resumeStore: false,
      }).start();
      await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
    });

    it('a file path: read by positional reads, named by its base name', async () => {
      const path = join(dir, 'report final.pdf');
      await writeRandomFile(path, 3 * MiB + 99);
      const result = await createUpload({
        endpoint: server.endpoint,
        source: path,
        chunkSize: MiB,
        resumeStore: false,
      }).start();
      await assertStored(result, await fileDigest(path));
    });

    for (const [label, size] of [
      ['empty', 0],
      ['ending inside a chunk', 2 * MiB + 5],
      ['ending exactly at a chunk boundary', 2 * MiB],
    ] as const) {
      it(`a stream of unknown length (Upload-Defer-Length), ${label}`, async () => {
        const bytes = randomBytes(size);
        const pieces = Array.from({ length: Math.ceil(size / 65_536) }, (_, i) =>
          bytes.subarray(i * 65_536, (i + 1) * 65_536),
        );
        const source = Readable.from(pieces);
        const upload = createUpload({
          endpoint: server.endpoint,
          source,
          chunkSize: MiB,
          resumeStore: false,
        });
        const progress: UploadProgress[] = [];
        upload.on('progress', (event) => progress.push(event));
        const result = await upload.start();
        await assertStored(result, { sha256: sha256(bytes), size });
        assert.equal(progress[progress.length - 1]?.totalBytes, size);
      });
    }

    it('200 MB file from disk: SHA-256 matches; progress is monotonic and ends at 100 %', async (t) => {
      const path = join(dir, 'large.bin');
      const size = 200 * 1000 * 1000;
      await writeRandomFile(path, size);
      const expected = await fileDigest(path);
      const { store } = await tempResumeStore();
      const upload = createUpload({ endpoint: server.endpoint, source: path, resumeStore: store });
      const progress: UploadProgress[] = [];
      upload.on('progress', (event) => progress.push(event));
      const started = performance.now();
      const result = await upload.start();
      const seconds = (performance.now() - started) / 1000;
      t.diagnostic(`${name}: 200 MB in ${seconds.toFixed(2)} s = ${(size / 1e6 / seconds).toFixed(0)} MB/s`);
      await assertStored(result, expected);
      let previous = 0;
      for (const event of progress) {
        assert.ok(event.bytesConfirmed >= previous && event.bytesConfirmed <= size);
        assert.ok(event.bytesConfirmed + event.bytesInFlight <= size);
        previous = event.bytesConfirmed;
      }
      assert.equal(progress[progress.length - 1]?.fraction, 1);
      assert.deepEqual(await store.list(), [], 'the resume entry is removed on success');
      await rm(path, { force: true });
    });

    it('pause stops sending; resume continues from what the server has', async () => {
      const bytes = randomBytes(8 * MiB);
      const upload = createUpload({
        endpoint: server.endpoint,
        source: bytes,
        chunkSize: MiB,
        limitRate: 8 * MiB,
        resumeStore: false,
      });
      const states: UploadState[] = [];
      upload.on('state', (event) => states.push(event.state));
      const done = upload.start();
      while (upload.progress.bytesConfirmed < 2 * MiB) await sleep(10);
      upload.pause();
      assert.equal(upload.state, 'paused');
      await sleep(100);
      const paused = upload.progress.bytesConfirmed;
      assert.ok(paused < bytes.length);
      await sleep(400);
      assert.equal(upload.progress.bytesConfirmed, paused, 'nothing is confirmed while paused');
      const url = upload.uploadUrl as string;
      const head = await tusHead(url);
      assert.equal(head.status === 200 || head.status === 204, true);
      upload.resume();
      const result = await done;
      assert.equal(result.url, url, 'the same upload was continued');
      await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
      assert.deepEqual(states, ['creating', 'uploading', 'paused', 'uploading', 'done']);
    });

    it('cancel deletes the upload on the server and rejects start()', async () => {
      const bytes = randomBytes(8 * MiB);
      const { store } = await tempResumeStore();
      const upload = createUpload({
        endpoint: server.endpoint,
        source: bytes,
        chunkSize: MiB,
        limitRate: 8 * MiB,
        resumeStore: store,
      });
      const done = upload.start();
      while (upload.progress.bytesConfirmed < 2 * MiB) await sleep(10);
      assert.equal((await store.list()).length, 1, 'the upload is in the resume store while it runs');
      const url = upload.uploadUrl as string;
      await upload.cancel();
      await assert.rejects(done, { code: 'ERR_CANCELLED' });
      assert.equal(upload.state, 'cancelled');
      const head = await tusHead(url);
      assert.ok(head.status === 404 || head.status === 410, `HEAD after cancel answered ${head.status}`);
      assert.deepEqual(await store.list(), [], 'the resume entry is removed on cancel');
    });

    it('cancel while the creation request still sends its bytes deletes the upload it made', async () => {
      const bytes = randomBytes(4 * MiB);
      const { store } = await tempResumeStore();
      const upload = createUpload({
        endpoint: server.endpoint,
        source: bytes,
        chunkSize: 4 * MiB,
        limitRate: 4 * MiB,
        resumeStore: store,
      });
      const states: UploadState[] = [];
      upload.on('state', (event) => states.push(event.state));
      const done = upload.start();
      // The first chunk goes with the creation request (creation-with-upload): cancel mid-body.
      while (upload.progress.bytesInFlight < MiB) await sleep(10);
      assert.equal(upload.uploadUrl, undefined, 'the creation request has no answer yet');
      await upload.cancel();
      await assert.rejects(done, { code: 'ERR_CANCELLED' });
      const url = upload.uploadUrl;
      assert.ok(url !== undefined, 'cancel waited for the answer that says where the upload is');
      const head = await tusHead(url);
      assert.ok(head.status === 404 || head.status === 410, `HEAD after cancel answered ${head.status}`);
      assert.deepEqual(await store.list(), [], 'no resume entry is left');
      assert.deepEqual(states, ['creating', 'cancelled']);
    });

    it('a second run with the same resume store continues the first upload', async () => {
      const bytes = randomBytes(6 * MiB);
      const { store } = await tempResumeStore();
      const options = {
        endpoint: server.endpoint,
        source: bytes,
        name: 'again.bin',
        chunkSize: MiB,
        resumeStore: store,
      };
      const first = createUpload({ ...options, limitRate: 8 * MiB });
      const firstDone = first.start();
      while (first.progress.bytesConfirmed < 2 * MiB) await sleep(10);
      first.pause();
      void firstDone;
      const second = createUpload(options);
      const resumed: string[] = [];
      second.on('resumed', (event) => resumed.push(event.url));
      const progress: UploadProgress[] = [];
      second.on('progress', (event) => progress.push(event));
      const result = await second.start();
      assert.deepEqual(resumed, [first.uploadUrl]);
      assert.equal(result.url, first.uploadUrl);
      assert.ok((progress[0]?.bytesConfirmed ?? 0) >= 2 * MiB, 'the confirmed bytes were not sent again');
      await assertStored(result, { sha256: sha256(bytes), size: bytes.length });
    });
  });
}
