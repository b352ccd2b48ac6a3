/**
 * The life of uploads on S3 beyond single requests, against the project's RGW: the expiry sweeper
 * (expired uploads, orphaned multipart uploads and incomplete parts, paging) and graceful shutdown.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const MiB = 1024 * 1024;
const HOUR = 3600 * 1000;
const TUS = { 'tus-resumable': '1.0.0' };

const client =
  settings &&
  new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

/** Every multipart upload under `prefix`, as `key uploadId` (read with the SDK, page by page). */
async function multipartUploads(prefix: string): Promise<Set<string>> {
  const found = new Set<string>();
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client!.send(
      new ListMultipartUploadsCommand({
        Bucket: settings!.bucket,
        Prefix: prefix,
        ...(keyMarker ? { KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker } : {}),
      }),
    );
    for (const upload of page.Uploads ?? []) found.add(`${upload.Key} ${upload.UploadId}`);
    if (!page.IsTruncated) return found;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

async function exists(key: string): Promise<boolean> {
  try {
    await client!.send(new HeadObjectCommand({ Bucket: settings!.bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw error;
  }
}

async function createMultipart(key: string): Promise<string> {
  const created = await client!.send(
    new CreateMultipartUploadCommand({ Bucket: settings!.bucket, Key: key }),
  );
  return `${key} ${created.UploadId}`;
}

const fakeId = () => randomBytes(16).toString('base64url');

interface Server {
  ferry: Ferry;
  url: string;
  store: S3DataStore;
  dataDir: string;
  clock: { now: number };
  prefix: string;
}

const servers: Server[] = [];
after(async () => {
  for (const server of servers) {
    await server.ferry.close();
    await server.store.close();
    await rm(server.dataDir, { recursive: true, force: true });
  }
  client?.destroy();
});

async function startServer(
  options: {
    prefix?: string;
    dataDir?: string;
    sweepPageSize?: number;
    config?: Record<string, unknown>;
  } = {},
): Promise<Server> {
  const prefix = options.prefix ?? uniqueKeyPrefix('s3-lifecycle');
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ferry-s3-lifecycle-')));
  const store = await createS3DataStore({
    ...s3StoreOptions(settings!, prefix),
    partSize: 5 * MiB,
    ...(options.sweepPageSize ? { sweepPageSize: options.sweepPageSize } : {}),
  });
  const clock = { now: Date.now() };
  const ferry = await createFerry({
    dataDir,
    dataStore: store,
    logLevel: 'silent',
    expirySeconds: 3600,
    sweepIntervalSeconds: 0,
    now: () => clock.now,
    ...options.config,
  });
  const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
  const server = { ferry, url, store, dataDir, clock, prefix };
  servers.push(server);
  return server;
}

async function createTus(url: string, size: number): Promise<{ location: string; id: string }> {
  const created = await fetch(`${url}/files/`, {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(size) },
  });
  assert.equal(created.status, 201);
  const location = new URL(created.headers.get('location')!, url).href;
  return { location, id: location.split('/').pop()! };
}

async function patch(location: string, offset: number, body: Uint8Array<ArrayBuffer>): Promise<Response> {
  return fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body,
  });
}

describe('the expiry sweeper on S3', { skip: settings === undefined }, () => {
  it("aborts an expired upload's multipart upload and deletes its incomplete part", async () => {
    const server = await startServer();
    const { location, id } = await createTus(server.url, 12 * MiB);
    assert.equal((await patch(location, 0, randomBytes(7 * MiB))).status, 204);
    const objectKey = server.prefix + id;
    assert.equal((await multipartUploads(objectKey)).size, 1, 'the multipart upload exists');
    assert.ok(await exists(`${objectKey}.part`), 'the 2 MiB past the first part are an incomplete part');

    server.clock.now += 2 * HOUR;
    assert.equal(await server.ferry.sweep(), 1);
    assert.equal((await multipartUploads(objectKey)).size, 0, 'the multipart upload was aborted');
    assert.equal(await exists(`${objectKey}.part`), false, 'the incomplete part was deleted');
    assert.equal((await fetch(location, { method: 'HEAD', headers: TUS })).status, 404);
  });

  it('aborts orphaned multipart uploads and incomplete parts older than the expiry, page by page, and nothing else', async () => {
    const server = await startServer({ sweepPageSize: 2 });
    const { prefix } = server;
    const started = Date.now();
    // Orphans: multipart uploads under the prefix no record points at (a crash between S3 and the
    // records), one of them with an incomplete part, and an incomplete part on its own.
    const orphans: string[] = [];
    for (let i = 0; i < 5; i++) orphans.push(await createMultipart(prefix + fakeId()));
    const withTail = orphans[0]!.split(' ')[0]!;
    const loneTail = `${prefix + fakeId()}.part`;
    for (const key of [`${withTail}.part`, loneTail]) {
      await client!.send(
        new PutObjectCommand({
          Bucket: settings!.bucket,
          Key: key,
          Body: Buffer.alloc(10),
          Metadata: { 'ferry-start': '0' },
        }),
      );
    }
    // Not Ferry's key shape: never touched.
    const foreign = await createMultipart(`${prefix}not-an-upload/file.bin`);
    // A live upload, created while the records' clock is 90 minutes ahead: its multipart upload is
    // older than the expiry in S3's eyes, but its record has not expired.
    server.clock.now = started + 90 * 60 * 1000;
    const live = await createTus(server.url, 12 * MiB);
    assert.equal((await patch(live.location, 0, randomBytes(6 * MiB))).status, 204);
    const liveUploads = await multipartUploads(prefix + live.id);
    assert.equal(liveUploads.size, 1);

    const firstPage = await client!.send(
      new ListMultipartUploadsCommand({ Bucket: settings!.bucket, Prefix: prefix, MaxUploads: 2 }),
    );
    assert.equal(firstPage.IsTruncated, true, 'the sweep has to read more than one page');

    // 30 minutes in: everything is younger than the one-hour expiry.
    server.clock.now = started + 30 * 60 * 1000;
    assert.equal(await server.ferry.sweep(), 0);
    let left = await multipartUploads(prefix);
    for (const orphan of orphans) assert.ok(left.has(orphan), 'a young orphan is left alone');
    assert.ok(await exists(loneTail));

    // Two hours in: the orphans are older than the expiry (the live record expires at 2h30).
    server.clock.now = started + 2 * HOUR;
    assert.equal(await server.ferry.sweep(), 0, 'no record expired');
    left = await multipartUploads(prefix);
    for (const orphan of orphans) assert.ok(!left.has(orphan), `aborted: ${orphan}`);
    assert.ok(left.has(foreign), 'a key that is not an upload id is not touched');
    for (const upload of liveUploads) assert.ok(left.has(upload), 'the live upload is kept');
    assert.equal(await exists(`${withTail}.part`), false);
    assert.equal(await exists(loneTail), false);

    // The live upload goes on and completes.
    const rest = randomBytes(6 * MiB);
    assert.equal((await patch(live.location, 6 * MiB, rest)).status, 204);
    const head = await fetch(live.location, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers.get('upload-offset'), String(12 * MiB));
    const [key, uploadId] = foreign.split(' ');
    await client!.send(
      new AbortMultipartUploadCommand({ Bucket: settings!.bucket, Key: key, UploadId: uploadId }),
    );
  });
});

describe('the orphan sweep as `ferry serve` configures it', { skip: settings === undefined }, () => {
  it('makes its own S3 store from the options and sweeps orphans at most every s3OrphanSweepIntervalSeconds', async () => {
    // Credentials from the AWS environment, as `ferry serve --storage s3` reads them.
    process.env['AWS_ACCESS_KEY_ID'] = settings!.accessKeyId;
    process.env['AWS_SECRET_ACCESS_KEY'] = settings!.secretAccessKey;
    const prefix = uniqueKeyPrefix('s3-sweep-config');
    const dataDir = await mkdtemp(join(tmpdir(), 'ferry-s3-sweep-config-'));
    const started = Date.now();
    const clock = { now: started };
    const ferry = await createFerry({
      dataDir,
      storage: 's3',
      s3Endpoint: settings!.endpoint,
      s3Bucket: settings!.bucket,
      s3Region: settings!.region,
      s3ForcePathStyle: true,
      s3KeyPrefix: prefix,
      s3SweepPageSize: 2,
      s3OrphanSweepIntervalSeconds: 3600,
      logLevel: 'silent',
      expirySeconds: 3600,
      sweepIntervalSeconds: 0,
      now: () => clock.now,
    });
    try {
      const first: string[] = [];
      for (let i = 0; i < 3; i++) first.push(await createMultipart(prefix + fakeId()));
      clock.now = started + 2 * HOUR;
      await ferry.sweep();
      let left = await multipartUploads(prefix);
      for (const orphan of first) assert.ok(!left.has(orphan), `aborted (over two pages): ${orphan}`);

      const second = await createMultipart(prefix + fakeId());
      clock.now = started + 2 * HOUR + 30 * 60 * 1000;
      await ferry.sweep();
      assert.ok((await multipartUploads(prefix)).has(second), 'within the interval: no storage sweep');
      clock.now = started + 3 * HOUR + 1000;
      await ferry.sweep();
      left = await multipartUploads(prefix);
      assert.ok(!left.has(second), 'the interval is over: swept');
    } finally {
      await ferry.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * Starts a request whose body is `sent` bytes of a declared `length`, and does not end it: the
 * server is stopped while it waits for the rest. Resolves with the status the server answered.
 */
function hangingRequest(
  target: string,
  method: string,
  headers: Record<string, string>,
  sent: Buffer,
  length: number,
): { answered: Promise<number | undefined>; written: Promise<void> } {
  const request = httpRequest(target, { method, headers: { ...headers, 'content-length': String(length) } });
  const answered = new Promise<number | undefined>((resolve) => {
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('error', () => resolve(undefined));
  });
  const written = new Promise<void>((resolve) => request.write(sent, () => resolve()));
  return { answered, written };
}

describe('graceful shutdown on S3', { skip: settings === undefined }, () => {
  it('leaves a tus upload and a parts upload with requests in flight resumable by the next process', async () => {
    const first = await startServer();
    const tusSource = randomBytes(20 * MiB + 3);
    const tus = await createTus(first.url, tusSource.length);
    const tusHeaders = { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' };
    const tusRequest = hangingRequest(
      tus.location,
      'PATCH',
      tusHeaders,
      tusSource.subarray(0, 12 * MiB),
      tusSource.length,
    );

    const partsSource = randomBytes(13 * MiB);
    const created = await fetch(`${first.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: partsSource.length, partSize: 5 * MiB }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { id: partsId } = (await created.json()) as { id: string };
    const partUrl = (n: number) => `${first.url}/uploads/${partsId}/parts/${n}`;
    const part1 = await fetch(partUrl(1), { method: 'PUT', body: partsSource.subarray(0, 5 * MiB) });
    assert.equal(part1.status, 200);
    const partRequest = hangingRequest(
      partUrl(2),
      'PUT',
      {},
      partsSource.subarray(5 * MiB, 8 * MiB),
      5 * MiB,
    );
    await Promise.all([tusRequest.written, partRequest.written]);
    // Let the server take in what was sent (12 MiB of tus body: two 5 MiB parts and a tail).
    await new Promise((resolve) => setTimeout(resolve, 1000));

    await first.ferry.close();
    const statuses = await Promise.all([tusRequest.answered, partRequest.answered]);
    for (const status of statuses) assert.ok(status === undefined || status >= 400, `answered ${status}`);
    assert.equal(
      (await multipartUploads(first.prefix + tus.id)).size,
      1,
      'the tus multipart upload is still there',
    );
    assert.equal((await multipartUploads(first.prefix + partsId)).size, 1, 'so is the parts one');

    // The next process: the same records, the same bucket and prefix.
    const second = await startServer({ prefix: first.prefix, dataDir: first.dataDir });
    const location = tus.location.replace(first.url, second.url);
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    const offset = Number(head.headers.get('upload-offset'));
    assert.ok(offset > 0 && offset <= 12 * MiB, `kept ${offset} bytes received before the shutdown`);
    assert.equal((await patch(location, offset, tusSource.subarray(offset))).status, 204);
    const download = await fetch(location);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(tusSource), 'the tus file is whole');

    const status = await fetch(`${second.url}/uploads/${partsId}`);
    const parts = ((await status.json()) as { parts: Array<{ n: number }> }).parts.map((part) => part.n);
    assert.deepEqual(parts, [1], 'part 1 is kept; part 2 was cut off and is sent again');
    for (const n of [2, 3]) {
      const start = (n - 1) * 5 * MiB;
      const sent = await fetch(`${second.url}/uploads/${partsId}/parts/${n}`, {
        method: 'PUT',
        body: partsSource.subarray(start, Math.min(start + 5 * MiB, partsSource.length)),
      });
      assert.equal(sent.status, 200);
    }
    const completed = await fetch(`${second.url}/uploads/${partsId}/complete`, { method: 'POST' });
    assert.equal(completed.status, 200, await completed.clone().text());
    const file = await fetch(`${second.url}/files/${partsId}`);
    assert.equal(file.status, 200);
    assert.ok(Buffer.from(await file.arrayBuffer()).equals(partsSource), 'the parts file is whole');
  });
});

describe('a declared SHA-256 of a parts upload on S3', { skip: settings === undefined }, () => {
  const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  async function createParts(url: string, source: Buffer, sha256?: string): Promise<string> {
    const created = await fetch(`${url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: source.length, partSize: 5 * MiB, ...(sha256 ? { sha256 } : {}) }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    return ((await created.json()) as { id: string }).id;
  }

  async function putParts(
    url: string,
    id: string,
    source: Buffer<ArrayBuffer>,
    numbers: number[],
  ): Promise<void> {
    for (const n of numbers) {
      const start = (n - 1) * 5 * MiB;
      const sent = await fetch(`${url}/uploads/${id}/parts/${n}`, {
        method: 'PUT',
        body: source.subarray(start, Math.min(start + 5 * MiB, source.length)),
      });
      assert.equal(sent.status, 200, await sent.text());
    }
  }

  function complete(url: string, id: string, sha256?: string): Promise<Response> {
    return fetch(`${url}/uploads/${id}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sha256 ? { sha256 } : {}),
    });
  }

  it('is verified by reading the completed object back when the server restarted between parts and complete', async () => {
    const first = await startServer();
    const source = randomBytes(12 * MiB + 5);
    const id = await createParts(first.url, source, sha256Of(source));
    await putParts(first.url, id, source, [2, 1]);
    await first.ferry.close();

    const second = await startServer({ prefix: first.prefix, dataDir: first.dataDir });
    await putParts(second.url, id, source, [3]);
    const completed = await complete(second.url, id);
    assert.equal(completed.status, 200, await completed.clone().text());
    const status = (await (await fetch(`${second.url}/uploads/${id}`)).json()) as { state: string };
    assert.equal(status.state, 'finished');
    const file = Buffer.from(await (await fetch(`${second.url}/files/${id}`)).arrayBuffer());
    assert.equal(sha256Of(file), sha256Of(source));
  });

  it('answers ERR_SHA256_MISMATCH for a wrong one after a restart, and removes the object and the upload', async () => {
    const first = await startServer();
    const source = randomBytes(11 * MiB);
    const id = await createParts(first.url, source);
    await putParts(first.url, id, source, [1, 2, 3]);
    await first.ferry.close();

    const second = await startServer({ prefix: first.prefix, dataDir: first.dataDir });
    const wrong = sha256Of(Buffer.from('something else'));
    const completed = await complete(second.url, id, wrong);
    assert.equal(completed.status, 422, await completed.clone().text());
    const body = (await completed.json()) as { error: { code: string; details: Record<string, unknown> } };
    assert.equal(body.error.code, 'ERR_SHA256_MISMATCH');
    assert.equal(body.error.details['actual'], sha256Of(source));
    assert.equal(body.error.details['partsKept'], false);
    assert.equal((await fetch(`${second.url}/uploads/${id}`)).status, 404, 'the upload is gone');
    assert.equal(await exists(second.prefix + id), false, 'no object is left');
    assert.equal((await multipartUploads(second.prefix + id)).size, 0, 'nor a multipart upload');
  });

  it('keeps the parts when the running hash refuses a wrong one, so a right one completes', async () => {
    const server = await startServer();
    const source = randomBytes(11 * MiB);
    const id = await createParts(server.url, source);
    await putParts(server.url, id, source, [3, 1, 2]);
    const refused = await complete(server.url, id, sha256Of(Buffer.from('something else')));
    assert.equal(refused.status, 422);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'ERR_SHA256_MISMATCH');
    assert.equal((await multipartUploads(server.prefix + id)).size, 1, 'the parts are still there');
    const completed = await complete(server.url, id, sha256Of(source));
    assert.equal(completed.status, 200, await completed.clone().text());
  });
});
