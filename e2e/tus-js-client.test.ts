/**
 * The real tus-js-client (Node build) against a real `ferry serve` process: its default options,
 * chunked uploads, parallel uploads (concatenation), creation-with-upload, a stream of unknown
 * length, and resuming after the server was killed (SIGKILL) or stopped (SIGTERM) mid-PATCH and
 * restarted on the same port and data directory. Every run ends with the downloaded file's SHA-256
 * equal to the source's. All of it twice: with the fs storage and with S3 storage (the project's
 * Ceph RGW, see @ferry/testing's s3Service), where the data directory must hold nothing but the
 * SQLite database. Also expiry and sweeping at process level.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type S3Settings, s3ProcessEnv, s3Service, uniqueKeyPrefix } from '@ferry/testing';
import { createFerryGroup, type FerryProcess, type StartOptions } from './helpers/ferry-process.ts';
import {
  createThrottledHttpStack,
  downloadDigest,
  runUpload,
  sha256,
  tusHead,
} from './helpers/tus-client.ts';

const MiB = 1024 * 1024;
const group = createFerryGroup();
after(() => group.cleanup());

function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop() ?? '';
}

async function assertStored(url: string, source: Buffer): Promise<void> {
  const file = await downloadDigest(url);
  assert.equal(file.status, 200);
  assert.equal(file.size, source.length);
  assert.equal(file.sha256, sha256(source));
}

/** Adds the server's logs to a failure: a client error alone rarely says why. */
async function settle(done: Promise<string>, server: FerryProcess): Promise<string> {
  try {
    return await done;
  } catch (error) {
    throw new Error(`upload failed: ${(error as Error).message}\nserver stderr:\n${server.stderr}`);
  }
}

const s3 = await s3Service();

/** How one storage backend is started and how its finished files are found. */
interface Storage {
  name: 'fs' | 's3';
  start(options?: StartOptions): Promise<FerryProcess>;
  /** Asserts the finished upload is where this storage keeps finished files. */
  assertFinished(server: FerryProcess, id: string, size: number): Promise<void>;
}

const fsStorage: Storage = {
  name: 'fs',
  start: (options) => group.start(options),
  async assertFinished(server, id, size) {
    const finished = join(server.dataDir, 'files', id);
    if (existsSync(`${finished}.parts`)) return;
    assert.equal((await stat(finished)).size, size, 'finished file at <data-dir>/files/<id>');
  },
};

function s3Storage(settings: S3Settings): Storage {
  const prefix = uniqueKeyPrefix('e2e-tus');
  const client = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
  });
  after(() => client.destroy());
  return {
    name: 's3',
    start: (options = {}) =>
      group.start({
        ...options,
        args: [
          '--storage',
          's3',
          '--s3-endpoint',
          settings.endpoint,
          '--s3-bucket',
          settings.bucket,
          '--s3-region',
          settings.region,
          settings.forcePathStyle ? '--s3-force-path-style' : '--no-s3-force-path-style',
          '--s3-key-prefix',
          prefix,
          ...(options.args ?? []),
        ],
        env: { ...s3ProcessEnv(settings), ...options.env },
      }),
    async assertFinished(server, id, size) {
      const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: prefix + id }));
      assert.equal(head.ContentLength, size, 'finished object at <prefix><id> in the bucket');
      // Upload bytes never touch the local disk: the data directory holds only the database.
      const names = (await readdir(server.dataDir)).filter((name) => !/^ferry\.db(-wal|-shm)?$/.test(name));
      assert.deepEqual(names, [], 'nothing but ferry.db in the data directory');
    },
  };
}

const storages: Storage[] = [fsStorage];
if (s3) storages.push(s3Storage(s3));
else describe('tus-js-client with S3 storage', () => it('needs an S3 server', (t) => t.skip('no S3 server')));

for (const storage of storages) {
  describe(`tus-js-client against ferry serve (${storage.name} storage)`, () => {
    let server: FerryProcess;

    before(async () => {
      server = await storage.start();
    });

    it('default options (one PATCH for the whole file)', async () => {
      const source = randomBytes(8 * MiB + 3);
      const run = runUpload(source, {
        endpoint: server.endpoint,
        metadata: { filename: 'default.bin', filetype: 'application/octet-stream' },
      });
      const url = await settle(run.done, server);
      assert.deepEqual(run.sentOffsets, [0]);
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });

    it('chunkSize 1 MiB from a file on disk', async () => {
      const source = randomBytes(12 * MiB + 17);
      const path = join(await group.makeDir(), 'source.bin');
      await writeFile(path, source);
      const run = runUpload(createReadStream(path), { endpoint: server.endpoint, chunkSize: MiB });
      const url = await settle(run.done, server);
      assert.equal(run.sentOffsets.length, 13);
      assert.deepEqual(
        run.sentOffsets,
        Array.from({ length: 13 }, (_, index) => index * MiB),
      );
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });

    it('parallelUploads 4 (partial uploads concatenated into a final one)', async () => {
      const source = randomBytes(16 * MiB + 5);
      const run = runUpload(source, { endpoint: server.endpoint, parallelUploads: 4 });
      const url = await settle(run.done, server);
      if (storage.name === 'fs') {
        const parts = await readdir(join(server.dataDir, 'files', `${idOf(url)}.parts`));
        assert.equal(parts.length, 4);
      }
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });

    it('uploadDataDuringCreation with chunkSize 2 MiB', async () => {
      const source = randomBytes(6 * MiB + 1);
      const run = runUpload(source, {
        endpoint: server.endpoint,
        chunkSize: 2 * MiB,
        uploadDataDuringCreation: true,
      });
      const url = await settle(run.done, server);
      // The first chunk travels in the POST; PATCHes carry the rest.
      assert.deepEqual(run.sentOffsets, [2 * MiB, 4 * MiB, 6 * MiB]);
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });

    it('a Node Readable of unknown length with uploadLengthDeferred', async () => {
      const source = randomBytes(5 * MiB + 123);
      // Pieces of odd sizes, as a pipe or a socket would deliver them.
      async function* pieces() {
        for (let at = 0; at < source.length; at += 100_003) {
          yield source.subarray(at, at + 100_003);
          await sleep(0);
        }
      }
      const run = runUpload(Readable.from(pieces()), {
        endpoint: server.endpoint,
        chunkSize: MiB,
        uploadLengthDeferred: true,
      });
      const url = await settle(run.done, server);
      assert.ok(run.sentOffsets.length >= 6);
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });
  });

  describe(`resuming after the server went away mid-upload (${storage.name} storage)`, () => {
    it('SIGKILL mid-PATCH, restart on the same port and data dir, resume from the stored offset', async () => {
      const source = randomBytes(48 * MiB);
      let server = await storage.start();
      const { port, dataDir } = server;
      let killed: Promise<unknown> | undefined;
      let sentAtKill = 0;
      const first = runUpload(source, {
        endpoint: server.endpoint,
        chunkSize: 4 * MiB,
        // The kill is decided by the bytes the client has put on the wire, not by progress events
        // (a loaded machine may report a whole chunk at once): 1 MiB into the fifth PATCH, with the
        // rest of that body held until the server is dead. Four chunks are acknowledged by then.
        httpStack: createThrottledHttpStack(16 * MiB, (body, sentBefore) => {
          if (killed !== undefined || body !== 4 || sentBefore < MiB) return killed;
          sentAtKill = 4 * 4 * MiB + sentBefore;
          killed = server.kill();
          return killed;
        }),
      });
      await assert.rejects(first.done);
      assert.ok(killed, 'the kill landed during the upload');
      const status = (await killed) as { signal: string | null };
      assert.equal(status.signal, 'SIGKILL');
      const url = first.url();
      assert.ok(url, 'the upload was created before the crash');
      const acknowledged = first.acknowledged();
      const seen = `sent ${sentAtKill}, acknowledged ${acknowledged}`;
      assert.equal(acknowledged, 16 * MiB, seen);
      assert.ok(sentAtKill > acknowledged, `killed while a PATCH was sending (${seen})`);

      server = await storage.start({ port, dataDir });
      assert.equal(server.port, port);
      const state = await tusHead(url);
      assert.equal(state.status, 200);
      const offset = state.offset ?? -1;
      // Nothing acknowledged is lost to kill -9; bytes of the broken chunk may be kept too.
      assert.ok(offset >= acknowledged && offset < source.length, `offset ${offset} (${seen})`);

      const second = runUpload(source, { endpoint: server.endpoint, uploadUrl: url, chunkSize: 4 * MiB });
      assert.equal(await settle(second.done, server), url);
      assert.equal(
        second.sentOffsets[0],
        offset,
        `resumed where the server was: ${second.sentOffsets.join(',')}`,
      );
      assert.ok(Math.min(...second.progress) >= offset);
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });

    it('SIGTERM during a PATCH: the bytes received are kept, the process exits 0, the upload resumes', async () => {
      const source = randomBytes(64 * MiB);
      let server = await storage.start();
      const { port, dataDir } = server;
      let stopped: Promise<{ code: number | null }> | undefined;
      const first = runUpload(source, {
        endpoint: server.endpoint,
        // SIGTERM once 24 MiB of the one PATCH are handed to the socket (up to ~5 MiB of them may
        // still sit in socket buffers), 0.75 s in; the rest of the body would take 1.25 s more.
        httpStack: createThrottledHttpStack(32 * MiB, (body, sentBefore) => {
          if (body === 0 && sentBefore >= 24 * MiB && stopped === undefined) stopped = server.stop();
          return undefined;
        }),
      });
      await assert.rejects(first.done);
      assert.equal((await stopped)?.code, 0, server.stderr);
      const url = first.url();
      assert.ok(url);

      server = await storage.start({ port, dataDir });
      const state = await tusHead(url);
      assert.equal(state.status, 200);
      const offset = state.offset ?? -1;
      assert.ok(offset >= 16 * MiB && offset < source.length, `offset ${offset}`);

      const second = runUpload(source, { endpoint: server.endpoint, uploadUrl: url });
      await settle(second.done, server);
      assert.deepEqual(second.sentOffsets, [offset]);
      await storage.assertFinished(server, idOf(url), source.length);
      await assertStored(url, source);
    });
  });
}

describe('expiry at process level', () => {
  it('idle unfinished uploads answer 410, then the sweeper removes their bytes and HEAD answers 404', async () => {
    const server = await group.start({ args: ['--expiry-seconds', '1', '--sweep-interval-seconds', '1'] });
    const source = randomBytes(256 * 1024);

    // Three uploads left idle a third of a second apart. The sweeper ticks once a second, so at
    // least one of them expires two thirds of a second or more before the tick that removes it:
    // a window no load on the machine can make the polling below miss.
    const uploads: Array<{
      url: string;
      dataFile: string;
      startedAt: number;
      seen: number[];
      goneAt?: number;
    }> = [];
    for (let index = 0; index < 3; index++) {
      if (index > 0) await sleep(333);
      const startedAt = performance.now();
      const run = runUpload(source, { endpoint: server.endpoint, chunkSize: 64 * 1024 });
      // Stop after the first chunk: the upload stays unfinished.
      await new Promise<void>((resolve, reject) => {
        const poll = setInterval(() => {
          if (run.acknowledged() > 0) {
            clearInterval(poll);
            void run.upload.abort().then(resolve, reject);
          }
        }, 2);
      });
      const url = run.url();
      assert.ok(url);
      const dataFile = join(server.dataDir, 'uploads', idOf(url));
      assert.ok(existsSync(dataFile), 'bytes in progress live in <data-dir>/uploads/<id>');
      uploads.push({ url, dataFile, startedAt, seen: [] });
    }

    // Swept within about 2 s; the deadline only ends the wait for a sweeper that never comes.
    const deadline = performance.now() + 60_000;
    while (uploads.some((upload) => upload.goneAt === undefined) && performance.now() < deadline) {
      for (const upload of uploads) {
        if (upload.goneAt !== undefined) continue;
        const { status } = await tusHead(upload.url);
        if (upload.seen.at(-1) !== status) upload.seen.push(status);
        if (status === 404) upload.goneAt = performance.now();
      }
      await sleep(25);
    }

    const report = uploads.map((upload) => upload.seen.join('→')).join(', ');
    for (const upload of uploads) {
      // Never removed before it expired; 200 (maybe), 410 (maybe), then 404 — never back.
      assert.match(upload.seen.join(','), /^(200,)?(410,)?404$/, report);
      assert.ok((upload.goneAt ?? 0) >= upload.startedAt + 1000, report);
      assert.equal(existsSync(upload.dataFile), false, 'the sweeper removed the bytes');
      assert.equal((await downloadDigest(upload.url)).status, 404);
    }
    assert.ok(
      uploads.some((upload) => upload.seen.includes(410)),
      `an expired upload answers 410 until swept: ${report}`,
    );
  });
});
