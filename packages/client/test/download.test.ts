/**
 * `downloadFile` against a real Ferry on loopback: parallel ranged fetches, resume after an abort
 * without fetching finished chunks again, and verification against the server's digest (a file
 * changed on disk behind the server's back is refused).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFerry, type Ferry } from '@ferry/server';
import { startFaultProxy } from '@ferry/testing';
import { downloadFile } from '../src/node/download.ts';

const MiB = 1024 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('downloadFile', () => {
  let ferry: Ferry;
  let origin: string;
  let dataDir: string;
  let work: string;
  const file = randomBytes(24 * MiB + 777);
  let verifiedUrl: string;
  let verifiedId: string;

  /** Uploads `bytes` through the parts API, declaring their SHA-256; returns the download URL and id. */
  async function upload(bytes: Buffer, declare: boolean): Promise<{ url: string; id: string }> {
    const created = await fetch(`${origin}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        size: bytes.length,
        name: 'f.bin',
        ...(declare ? { sha256: sha256(bytes) } : {}),
      }),
    });
    const { url, partSize, partCount } = (await created.json()) as {
      url: string;
      partSize: number;
      partCount: number;
    };
    for (let n = 1; n <= partCount; n++) {
      const part = bytes.subarray((n - 1) * partSize, n * partSize);
      const reply = await fetch(`${url}/parts/${n}`, { method: 'PUT', body: new Uint8Array(part) });
      assert.equal(reply.status, 200);
    }
    const done = await fetch(`${url}/complete`, { method: 'POST' });
    assert.equal(done.status, 200);
    const info = (await done.json()) as { file: { url: string; id: string } };
    return { url: info.file.url, id: info.file.id };
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-download-server-'));
    work = await mkdtemp(join(tmpdir(), 'ferry-download-'));
    ferry = await createFerry({ dataDir, logLevel: 'silent' });
    origin = (await ferry.listen({ host: '127.0.0.1', port: 0 })).url;
    ({ url: verifiedUrl, id: verifiedId } = await upload(file, true));
  });
  after(async () => {
    await ferry.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('fetches ranges in parallel and verifies the file against Repr-Digest', async () => {
    const output = join(work, 'whole.bin');
    const seen: number[] = [];
    const result = await downloadFile({
      url: verifiedUrl,
      output,
      parallel: 4,
      chunkSize: MiB,
      progressIntervalMs: 0,
      onProgress: (progress) => seen.push(progress.bytesDone),
    });
    assert.equal(result.verifiedBy, 'repr-digest');
    assert.equal(result.sha256, sha256(file));
    assert.equal(result.bytesFetched, file.length);
    assert.equal(sha256(await readFile(output)), sha256(file));
    assert.equal(existsSync(`${output}.part`), false);
    assert.equal(existsSync(`${output}.part.json`), false);
    assert.equal(seen.at(-1), file.length);
    for (let i = 1; i < seen.length; i++)
      assert.ok(seen[i]! >= seen[i - 1]!, 'progress never goes backwards');
  });

  it('resumes after an abort without fetching finished chunks again', async () => {
    const output = join(work, 'resumed.bin');
    const controller = new AbortController();
    await assert.rejects(
      downloadFile({
        url: verifiedUrl,
        output,
        parallel: 2,
        chunkSize: MiB,
        progressIntervalMs: 0,
        signal: controller.signal,
        onProgress: (progress) => {
          if (progress.bytesDone > file.length / 2) controller.abort(new Error('stopped by the test'));
        },
      }),
      /stopped by the test/,
    );
    assert.ok(existsSync(`${output}.part.json`), 'the state survives the abort');
    const state = JSON.parse(await readFile(`${output}.part.json`, 'utf8')) as { done: number[] };
    assert.ok(state.done.length >= 10, `chunks recorded: ${state.done.length}`);

    const result = await downloadFile({ url: verifiedUrl, output, parallel: 2, chunkSize: MiB });
    assert.equal(result.resumed, true);
    assert.equal(sha256(await readFile(output)), sha256(file));
    // Only chunks not recorded as done are fetched again.
    assert.ok(
      result.bytesFetched <= file.length - state.done.length * MiB + MiB,
      `fetched ${result.bytesFetched} of ${file.length}`,
    );
  });

  it('refuses a file whose bytes do not match the server digest, and keeps no output', async () => {
    const small = randomBytes(3 * MiB);
    const { url, id } = await upload(small, true);
    // Flip one byte of the stored file behind the server's back.
    const handle = await open(join(dataDir, 'files', id), 'r+');
    await handle.write(Buffer.from([small[1000]! ^ 0xff]), 0, 1, 1000);
    await handle.close();
    const output = join(work, 'corrupt.bin');
    await assert.rejects(downloadFile({ url, output, chunkSize: MiB }), { code: 'ERR_VERIFICATION_FAILED' });
    assert.equal(existsSync(output), false);
  });

  it('retries a refused range request and still verifies the file', async () => {
    const proxy = await startFaultProxy({
      target: origin,
      faults: { respond: { status: 503, count: 2, retryAfter: '0', match: { method: 'GET' } } },
    });
    try {
      const retries: string[] = [];
      const output = join(work, 'retried.bin');
      const result = await downloadFile({
        url: verifiedUrl.replace(origin, proxy.url),
        output,
        chunkSize: 4 * MiB,
        retry: { backoff: { initialMs: 5, maxMs: 20, factor: 2 } },
        onRetry: (event) => retries.push(event.operation),
      });
      assert.equal(retries.length, 2);
      assert.equal(proxy.stats.injectedResponses, 2);
      assert.equal(result.verifiedBy, 'repr-digest');
      assert.equal(sha256(await readFile(output)), sha256(file));
    } finally {
      await proxy.close();
    }
  });

  it('checks the size only when the server knows no digest', async () => {
    // Over tus (without hashUploads) the server records no SHA-256; the parts API reports the one
    // its running hash computed even when none was declared.
    const bytes = randomBytes(MiB + 3);
    const created = await fetch(`${origin}/files/`, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length) },
    });
    assert.equal(created.status, 201);
    const url = new URL(created.headers.get('location') ?? '', origin).href;
    const sent = await fetch(url, {
      method: 'PATCH',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
      },
      body: new Uint8Array(bytes),
    });
    assert.equal(sent.status, 204);
    const output = join(work, 'size-only.bin');
    const result = await downloadFile({ url, output });
    assert.equal(result.verifiedBy, 'size');
    assert.equal(sha256(await readFile(output)), sha256(bytes));
  });

  it('fails clearly for a file that does not exist', async () => {
    await assert.rejects(
      downloadFile({
        url: `${origin}/files/${verifiedId.slice(0, -2)}AA`,
        output: join(work, 'missing.bin'),
      }),
      (error: { code?: string; status?: number }) => error.code === 'ERR_HTTP_STATUS' && error.status === 404,
    );
  });
});
