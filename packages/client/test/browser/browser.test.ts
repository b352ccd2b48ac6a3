/**
 * The browser build in a real Chromium against a real Ferry on another origin: uploads over tus and
 * parts, resume state in IndexedDB across a reload and a browser restart (the file kept, or
 * re-attached when picked again), pausing while offline, the hashing worker on a 200 MB file, a
 * file changed after it was picked, and cancel.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import {
  ferryBytesReceived,
  fileDigest,
  MiB,
  makeTempDir,
  request,
  startFerry,
  type TestServer,
  writeRandomFile,
} from '../helpers.ts';
import { type BrowserHarness, browserSkipReason, startBrowserHarness } from './harness.ts';
import type { TestApi, UploadSpec, UploadStatus } from './page-entry.ts';

const skip = browserSkipReason();

/** `window.testApi` in the page. */
const api = (page: Page) => ({
  beginPicked: (id: string, spec: UploadSpec) =>
    page.evaluate(
      ([id, spec]) => (globalThis as unknown as { testApi: TestApi }).testApi.beginPicked(id, spec),
      [id, spec] as const,
    ),
  beginRandom: (id: string, spec: UploadSpec, size: number) =>
    page.evaluate(
      ([id, spec, size]) =>
        (globalThis as unknown as { testApi: TestApi }).testApi.beginRandom(id, spec, size),
      [id, spec, size] as const,
    ),
  beginKept: (id: string, key: string, spec: Omit<UploadSpec, 'endpoint'>) =>
    page.evaluate(
      ([id, key, spec]) => (globalThis as unknown as { testApi: TestApi }).testApi.beginKept(id, key, spec),
      [id, key, spec] as const,
    ),
  resumable: () => page.evaluate(() => (globalThis as unknown as { testApi: TestApi }).testApi.resumable()),
  status: (id: string) =>
    page.evaluate((id) => (globalThis as unknown as { testApi: TestApi }).testApi.status(id), id),
  pause: (id: string) =>
    page.evaluate((id) => (globalThis as unknown as { testApi: TestApi }).testApi.pause(id), id),
  resume: (id: string) =>
    page.evaluate((id) => (globalThis as unknown as { testApi: TestApi }).testApi.resume(id), id),
  cancel: (id: string) =>
    page.evaluate((id) => (globalThis as unknown as { testApi: TestApi }).testApi.cancel(id), id),
  hashPicked: () => page.evaluate(() => (globalThis as unknown as { testApi: TestApi }).testApi.hashPicked()),
});

/** Polls the upload's status until `done` holds (or it ended otherwise); returns the last status. */
async function waitFor(
  page: Page,
  id: string,
  done: (status: UploadStatus) => boolean,
  timeoutMs = 60_000,
): Promise<UploadStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await api(page).status(id);
    if (done(status)) return status;
    if (status.error !== undefined) throw new Error(`upload ${id} failed: ${JSON.stringify(status.error)}`);
    if (Date.now() > deadline) throw new Error(`upload ${id}: timed out at ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const finished = (status: UploadStatus) => status.result !== undefined;

describe('the browser build in Chromium', { skip }, () => {
  let harness: BrowserHarness;
  let ferry: TestServer;
  let files: string;

  before(async () => {
    files = await makeTempDir('ferry-browser-files-');
    harness = await startBrowserHarness();
    ferry = await startFerry({ corsOrigins: [harness.origin] });
  });

  after(async () => {
    await harness?.close();
    await ferry?.stop();
    if (files !== undefined) await rm(files, { recursive: true, force: true });
  });

  const tusSpec = (): UploadSpec => ({ endpoint: ferry.endpoint });
  const partsSpec = (): UploadSpec => ({ endpoint: `${ferry.origin}/uploads/`, protocol: 'parts' });

  it('uploads over tus and over parts across origins; the stored SHA-256 equals the file', async () => {
    const { page, context } = await harness.open();
    try {
      const cases: [string, UploadSpec, number][] = [
        ['tus-empty', tusSpec(), 0],
        ['tus-one-byte', tusSpec(), 1],
        ['tus-chunks', { ...tusSpec(), chunkSize: 1 * MiB }, 5 * MiB + 17],
        ['parts', { ...partsSpec(), chunkSize: 5 * MiB, parallel: 3 }, 17 * MiB + 3],
      ];
      for (const [id, spec, size] of cases) {
        const expected = await api(page).beginRandom(id, spec, size);
        const status = await waitFor(page, id, finished);
        assert.equal(status.result?.sha256, expected, id);
        assert.equal(status.result?.size, size, id);
        assert.equal(status.progressHonest, true, id);
        const stored = await ferry.stored(status.result?.url as string);
        assert.deepEqual(stored, { sha256: expected, size }, id);
      }
      assert.deepEqual(await api(page).resumable(), [], 'finished uploads are forgotten');
    } finally {
      await context.close();
    }
  });

  it('resumes after a reload mid-upload from the file IndexedDB kept, without re-sending what the server has', async () => {
    const path = join(files, 'kept.bin');
    const size = 6 * MiB;
    await writeRandomFile(path, size);
    const { page, context } = await harness.open();
    try {
      await page.setInputFiles('#file', path);
      const before = await ferryBytesReceived(ferry);
      const spec = { ...tusSpec(), chunkSize: 256 * 1024, limitRate: 2 * MiB };
      await api(page).beginPicked('first', spec);
      const interrupted = await waitFor(page, 'first', (status) => status.bytesConfirmed >= 2 * MiB);
      assert.equal(interrupted.created.length, 1);

      await page.reload();
      await page.waitForFunction(() => 'testApi' in globalThis);
      const listed = await api(page).resumable();
      assert.equal(listed.length, 1, 'one unfinished upload in IndexedDB');
      const [entry] = listed as [(typeof listed)[number]];
      assert.equal(entry.url, interrupted.created[0]);
      assert.equal(entry.keptBytes, size, 'the file itself is in IndexedDB');

      await api(page).beginKept('second', entry.key, { chunkSize: 256 * 1024 });
      const done = await waitFor(page, 'second', finished);
      assert.deepEqual(done.resumed, [entry.url], 'continued the same upload');
      assert.deepEqual(done.created, []);
      const source = await fileDigest(path);
      assert.equal(done.result?.sha256, source.sha256);
      assert.deepEqual(await ferry.stored(done.result?.url as string), source);
      // Only what the reload cut off mid-request may arrive twice: at most one chunk.
      const received = (await ferryBytesReceived(ferry)) - before;
      assert.ok(received <= size + 256 * 1024, `received ${received} bytes for a ${size}-byte file`);
      assert.deepEqual(await api(page).resumable(), []);
    } finally {
      await context.close();
    }
  });

  it('re-attaches by fingerprint after a browser restart when the file was too big to keep', async () => {
    const path = join(files, 'big.bin');
    const size = 8 * MiB;
    await writeRandomFile(path, size);
    const first = await harness.open();
    const spec = { ...tusSpec(), chunkSize: 256 * 1024, limitRate: 2 * MiB, keepFilesUpTo: 1 * MiB };
    let url: string;
    try {
      await first.page.setInputFiles('#file', path);
      await api(first.page).beginPicked('first', spec);
      const interrupted = await waitFor(first.page, 'first', (status) => status.bytesConfirmed >= 2 * MiB);
      url = interrupted.created[0] as string;
    } finally {
      await first.context.close(); // the browser quits mid-upload
    }

    const second = await harness.open(first.profileDir);
    try {
      const listed = await api(second.page).resumable();
      assert.deepEqual(
        listed.map(({ url, size, keptBytes }) => ({ url, size, keptBytes })),
        [{ url, size, keptBytes: undefined }],
        'the entry survived the restart; the file was not kept',
      );
      const offset = Number(
        (await request(url, 'HEAD', { 'tus-resumable': '1.0.0' })).headers['upload-offset'],
      );
      assert.ok(offset >= 2 * MiB && offset < size, `server offset ${offset}`);

      await second.page.setInputFiles('#file', path); // the user picks the same file again
      const before = await ferryBytesReceived(ferry);
      await api(second.page).beginPicked('again', { ...spec, limitRate: 64 * MiB });
      const done = await waitFor(second.page, 'again', finished);
      assert.deepEqual(done.resumed, [url]);
      assert.equal(
        (await ferryBytesReceived(ferry)) - before,
        size - offset,
        'only the missing bytes were sent',
      );
      const source = await fileDigest(path);
      assert.deepEqual(await ferry.stored(done.result?.url as string), source);
    } finally {
      await second.context.close();
    }
  });

  it('pauses when the network goes offline and resumes by itself when it is back', async () => {
    const { page, context } = await harness.open();
    try {
      const spec = { ...partsSpec(), chunkSize: 5 * MiB, parallel: 2, limitRate: 8 * MiB };
      const expected = await api(page).beginRandom('offline', spec, 30 * MiB);
      await waitFor(page, 'offline', (status) => status.bytesConfirmed >= 5 * MiB);
      await context.setOffline(true);
      const paused = await waitFor(page, 'offline', (status) => status.state === 'paused', 10_000);
      assert.equal(paused.pausedOffline, true);
      assert.deepEqual(paused.states.at(-1), { state: 'paused', offline: true });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const still = await api(page).status('offline');
      assert.equal(still.state, 'paused', 'stays paused while offline');
      assert.equal(still.bytesConfirmed, paused.bytesConfirmed, 'no progress while offline');

      await context.setOffline(false);
      const done = await waitFor(page, 'offline', finished);
      assert.equal(done.result?.sha256, expected);
      assert.ok(done.states.some(({ state }) => state === 'uploading'));
      assert.equal(done.progressHonest, true);
      assert.deepEqual(await ferry.stored(done.result?.url as string), { sha256: expected, size: 30 * MiB });
    } finally {
      await context.close();
    }
  });

  it('stays paused when the user paused, through offline and back online', async () => {
    const { page, context } = await harness.open();
    try {
      const spec = { ...tusSpec(), chunkSize: 256 * 1024, limitRate: 2 * MiB };
      const expected = await api(page).beginRandom('user', spec, 4 * MiB);
      await waitFor(page, 'user', (status) => status.bytesConfirmed > 0);
      await api(page).pause('user');
      await context.setOffline(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await context.setOffline(false);
      await new Promise((resolve) => setTimeout(resolve, 700));
      const paused = await api(page).status('user');
      assert.equal(paused.state, 'paused');
      assert.equal(paused.pausedOffline, false);
      await api(page).resume('user');
      const done = await waitFor(page, 'user', finished);
      assert.equal(done.result?.sha256, expected);
    } finally {
      await context.close();
    }
  });

  it('hashes a 200 MB file in a Web Worker', async (t) => {
    const path = join(files, 'large.bin');
    await writeRandomFile(path, 200 * 1000 * 1000);
    const { page, context } = await harness.open();
    try {
      const workers: string[] = [];
      page.on('worker', (worker) => workers.push(worker.url()));
      await page.setInputFiles('#file', path);
      const hashed = await api(page).hashPicked();
      const source = await fileDigest(path);
      assert.equal(hashed.sha256, source.sha256);
      assert.equal(hashed.size, source.size);
      assert.ok(
        workers.some((url) => url.endsWith('/assets/hash-worker.js')),
        `a hashing worker ran: ${workers.join(', ')}`,
      );
      t.diagnostic(`200 MB hashed in ${hashed.ms.toFixed(0)} ms (${(200_000 / hashed.ms).toFixed(0)} MB/s)`);
    } finally {
      await context.close();
      await rm(path, { force: true });
    }
  });

  it('cuts the request bodies of a picked file in its worker, never on the page thread', async () => {
    const path = join(files, 'sliced.bin');
    const size = 6 * MiB + 5;
    await writeRandomFile(path, size);
    const { page, context } = await harness.open();
    try {
      await page.setInputFiles('#file', path);
      // Chromium registers each new Blob with its browser process in a synchronous call: a slice
      // cut on this thread stalls the page while the browser is busy reading the file.
      await page.evaluate(() => {
        const scope = globalThis as unknown as { slicesHere: number };
        scope.slicesHere = 0;
        const slice = Blob.prototype.slice;
        Blob.prototype.slice = function (this: Blob, ...args: Parameters<Blob['slice']>) {
          scope.slicesHere++;
          return slice.apply(this, args);
        };
      });
      const source = await fileDigest(path);
      const cases: [string, UploadSpec][] = [
        ['sliced-tus', { ...tusSpec(), chunkSize: 1 * MiB }],
        ['sliced-parts', { ...partsSpec(), chunkSize: 5 * MiB, parallel: 2 }],
      ];
      for (const [id, spec] of cases) {
        await api(page).beginPicked(id, spec);
        const status = await waitFor(page, id, finished);
        assert.equal(status.result?.sha256, source.sha256, id);
        assert.deepEqual(
          await ferry.stored(status.result?.url as string),
          { sha256: source.sha256, size },
          id,
        );
      }
      const slicesHere = await page.evaluate(
        () => (globalThis as unknown as { slicesHere: number }).slicesHere,
      );
      assert.equal(slicesHere, 0, 'slices cut on the page thread');
    } finally {
      await context.close();
      await rm(path, { force: true });
    }
  });

  it('asks to re-select a file that changed after it was picked', async () => {
    const path = join(files, 'changing.bin');
    await writeRandomFile(path, 1 * MiB);
    const { page, context } = await harness.open();
    try {
      await page.setInputFiles('#file', path);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await writeFile(path, randomBytes(2 * MiB));
      await api(page).beginPicked('changed', tusSpec());
      const status = await waitFor(page, 'changed', (status) => status.error !== undefined);
      assert.equal(status.error?.code, 'ERR_SOURCE_UNREADABLE');
      assert.match(status.error?.message ?? '', /re-select the file/);
      assert.match(status.error?.message ?? '', /changing\.bin/);
    } finally {
      await context.close();
    }
  });

  it('cancel deletes the upload on the server and forgets it', async () => {
    const { page, context } = await harness.open();
    try {
      await api(page).beginRandom(
        'cancel',
        { ...tusSpec(), chunkSize: 256 * 1024, limitRate: 1 * MiB },
        4 * MiB,
      );
      const running = await waitFor(page, 'cancel', (status) => status.bytesConfirmed > 0);
      const url = running.created[0] as string;
      await api(page).cancel('cancel');
      const status = await api(page).status('cancel');
      assert.equal(status.state, 'cancelled');
      assert.equal(status.error?.code, 'ERR_CANCELLED');
      const head = await request(url, 'HEAD', { 'tus-resumable': '1.0.0' });
      assert.ok(head.status === 404 || head.status === 410, `HEAD after cancel: ${head.status}`);
      assert.deepEqual(await api(page).resumable(), []);
    } finally {
      await context.close();
    }
  });
});
