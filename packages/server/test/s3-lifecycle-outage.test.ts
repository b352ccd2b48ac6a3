/**
 * An S3 outage in the middle of uploads: the RADOS Gateway (only radosgw; the monitor and the OSD
 * keep the data) is stopped while a tus upload (the real tus-js-client) and a parts upload are in
 * flight, then started again. While it is down the server answers what a client retries (PATCH and
 * PUT 503 ERR_STORAGE_UNAVAILABLE, tus HEAD 423 — never a 5xx on HEAD, after which tus clients
 * start over); once it is back both uploads complete and the objects' SHA-256 equal the sources'.
 *
 * Stopping a gateway would break every other test using it, so this file brings up an RGW of its
 * own (its own directory and ports) with scripts/s3/start and stops it at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseExports, type S3Settings, s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { type DetailedError, Upload } from 'tus-js-client';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';

const MiB = 1024 * 1024;
const scripts = fileURLToPath(new URL('../../../scripts/s3/', import.meta.url));
// Whether the project's RGW can run here at all (installed, or installable): the shared one says.
const available = (await s3Service()) !== undefined;

const rgwDir = join(tmpdir(), `ferry-outage-rgw-${process.pid}`);
const rgwPort = 20_000 + 2 * (process.pid % 5000);
const rgwEnv = {
  ...process.env,
  FERRY_S3_DIR: rgwDir,
  FERRY_S3_PORT: String(rgwPort),
  FERRY_S3_MEMORY_BYTES: String(1024 * MiB),
};

function script(name: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(scripts, name)], { env: rgwEnv, timeout: 120_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${name} failed: ${error.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('an S3 outage mid-upload', { skip: !available }, () => {
  let settings: S3Settings;
  let store: S3DataStore;
  let ferry: Ferry;
  let url: string;
  let dataDir: string;
  let client: S3Client;
  const prefix = uniqueKeyPrefix('s3-outage');

  before(async () => {
    const exported = parseExports((await script('start')).stdout);
    settings = {
      endpoint: exported['S3_ENDPOINT']!,
      bucket: exported['S3_BUCKET']!,
      region: exported['S3_REGION']!,
      forcePathStyle: true,
      accessKeyId: exported['S3_ACCESS_KEY_ID']!,
      secretAccessKey: exported['S3_SECRET_ACCESS_KEY']!,
    };
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-s3-outage-'));
    store = await createS3DataStore({ ...s3StoreOptions(settings, prefix), partSize: 5 * MiB });
    ferry = await createFerry({ dataDir, dataStore: store, logLevel: 'silent' });
    ({ url } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
    client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    });
  });

  after(async () => {
    await ferry?.close();
    await store?.close();
    client?.destroy();
    await script('stop').catch(() => {});
    await rm(rgwDir, { recursive: true, force: true });
    await rm(`${rgwDir}.lock`, { force: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function objectSha256(id: string): Promise<string> {
    const answer = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: prefix + id }));
    const hash = createHash('sha256');
    for await (const chunk of answer.Body as Readable) hash.update(chunk as Uint8Array);
    return hash.digest('hex');
  }

  // How long the gateway is down depends on how fast it stops and starts again (several seconds on
  // a busy machine): the waits below are for conditions, and only this bounds the whole.
  it('tus and parts uploads get retryable answers while the gateway is down and complete once it is back', {
    timeout: 300_000,
  }, async () => {
    // --- tus: a stream source that stops after 12 MiB until the gateway is down.
    const tusSource = randomBytes(30 * MiB + 11);
    let gatewayDown!: () => void;
    const down = new Promise<void>((resolve) => {
      gatewayDown = resolve;
    });
    let reachedPause!: () => void;
    const paused = new Promise<void>((resolve) => {
      reachedPause = resolve;
    });
    async function* slowSource() {
      for (let at = 0; at < tusSource.length; at += MiB) {
        if (at === 12 * MiB) {
          reachedPause();
          await down;
        }
        yield tusSource.subarray(at, Math.min(tusSource.length, at + MiB));
      }
    }
    const answers: string[] = [];
    let tusId = '';
    const tusDone = new Promise<void>((resolve, reject) => {
      const upload = new Upload(Readable.from(slowSource()) as unknown as Blob, {
        endpoint: `${url}/files/`,
        uploadSize: tusSource.length,
        chunkSize: 20 * MiB,
        // Enough tries for an outage of minutes: the client must not give up before the gateway is back.
        retryDelays: Array.from({ length: 400 }, (_, i) => (i < 3 ? 250 : 500)),
        onShouldRetry: (error: DetailedError) => {
          const status = error.originalResponse?.getStatus();
          answers.push(`${error.originalRequest?.getMethod()} ${status ?? 'no answer'}`);
          return status === undefined || status >= 500 || status === 409 || status === 423;
        },
        onUploadUrlAvailable: () => {
          tusId = upload.url!.split('/').pop()!;
        },
        onSuccess: () => resolve(),
        onError: reject,
      });
      upload.start();
    });

    // --- parts: two parts stored before the outage.
    const partsSource = randomBytes(17 * MiB + 3);
    const created = await fetch(`${url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: partsSource.length, partSize: 5 * MiB, sha256: sha256(partsSource) }),
    });
    assert.equal(created.status, 201);
    const { id: partsId } = (await created.json()) as { id: string };
    const part = (n: number) =>
      partsSource.subarray((n - 1) * 5 * MiB, Math.min(partsSource.length, n * 5 * MiB));
    const putPart = (n: number) =>
      fetch(`${url}/uploads/${partsId}/parts/${n}`, { method: 'PUT', body: part(n) });
    for (const n of [1, 2]) assert.equal((await putPart(n)).status, 200);

    // --- the outage
    await paused;
    await script('stop-gateway');
    const outageStarted = Date.now();
    gatewayDown();
    const refused = await putPart(3);
    const refusal = (await refused.json()) as { error: { code: string } };
    assert.equal(refused.status, 503, `a part sent while S3 is down: ${JSON.stringify(refusal)}`);
    assert.equal(refusal.error.code, 'ERR_STORAGE_UNAVAILABLE');
    const completing = await fetch(`${url}/uploads/${partsId}/complete`, { method: 'POST' });
    assert.equal(completing.status, 409, 'complete without every part says which are missing');
    // The tus client meets the outage: its PATCH fails, its HEADs are answered 423.
    while (!answers.some((answer) => answer === 'HEAD 423')) {
      assert.ok(Date.now() - outageStarted < 120_000, `no HEAD 423 seen: ${answers.join(', ')}`);
      await sleep(100);
    }
    await sleep(1000);
    await script('start-gateway');

    // --- back: both complete, with the sources' bytes.
    const backAt = Date.now();
    for (const n of [3, 4]) {
      let sent = await putPart(n);
      while (sent.status === 503 && Date.now() - backAt < 60_000) {
        await sleep(250);
        sent = await putPart(n);
      }
      assert.equal(sent.status, 200, await sent.text());
    }
    const completed = await fetch(`${url}/uploads/${partsId}/complete`, { method: 'POST' });
    assert.equal(completed.status, 200, await completed.text());
    await tusDone;

    assert.ok(answers.length > 0);
    for (const answer of answers) {
      const [method, status] = answer.split(' ');
      if (method === 'HEAD') assert.ok(status === '423', `HEAD answered ${status}, never a 5xx`);
      else assert.ok(status === '503' || status === 'no answer', `${method} answered ${status}`);
    }
    assert.ok(
      answers.some((answer) => answer === 'PATCH 503' || answer === 'PATCH no answer'),
      answers.join(', '),
    );
    assert.equal(await objectSha256(tusId), sha256(tusSource), 'the tus object is the source');
    assert.equal(await objectSha256(partsId), sha256(partsSource), 'the parts object is the source');
  });
});
