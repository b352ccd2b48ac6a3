import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createFerry, type Ferry } from '../src/index.ts';

const TUS = { 'tus-resumable': '1.0.0' };

async function createUpload(base: string, size: number): Promise<string> {
  const response = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(size) },
  });
  assert.equal(response.status, 201);
  return response.headers.get('location')!;
}

function patch(location: string, offset: number, body: Uint8Array<ArrayBuffer>) {
  return fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body,
  });
}

describe('operations: health, readiness, metrics, logs', () => {
  let dir: string;
  let ferry: Ferry;
  let base: string;
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-ops-'));
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line));
        callback();
      },
    });
    ferry = await createFerry({ dataDir: dir, logger: pino({ level: 'info' }, sink) });
    base = (await ferry.listen({ host: '127.0.0.1', port: 0 })).url;
  });

  after(async () => {
    await ferry.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers /healthz and /readyz', async () => {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
  });

  it('counts requests, bytes and uploads in /metrics', async () => {
    const location = await createUpload(base, 5);
    assert.equal((await patch(location, 0, Buffer.from('hello'))).status, 204);
    await createUpload(base, 10); // stays active
    const text = await (await fetch(`${base}/metrics`)).text();
    const value = (line: string) => {
      const found = text.split('\n').find((candidate) => candidate.startsWith(line));
      assert.ok(found, `metrics contain ${line}`);
      return Number(found.slice(line.length).trim());
    };
    assert.ok(value('ferry_http_requests_total{method="PATCH",status="204"}') >= 1);
    assert.ok(value('ferry_received_bytes_total') >= 5);
    assert.ok(value('ferry_uploads_created_total') >= 2);
    assert.ok(value('ferry_uploads_finished_total') >= 1);
    assert.ok(value('ferry_uploads_active') >= 1);
    assert.match(text, /ferry_http_request_duration_seconds_bucket\{le="0\.005",method="POST"\}/);
    assert.match(text, /ferry_uploads_terminated_total 0/);
    assert.match(text, /ferry_uploads_expired_total 0/);
  });

  it('honours and echoes X-Request-ID, and logs it as JSON', async () => {
    const response = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'trace-abc-123' } });
    assert.equal(response.headers.get('x-request-id'), 'trace-abc-123');
    const generated = await fetch(`${base}/healthz`);
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const unsafe = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
    assert.notEqual(unsafe.headers.get('x-request-id'), 'bad id with spaces');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const line = logLines.find((entry) => entry['requestId'] === 'trace-abc-123');
    assert.ok(line, 'a log line carries the request id');
    assert.equal(line['status'], 200);
    assert.equal(line['path'], '/healthz');
  });
});

describe('graceful shutdown', () => {
  it('stops a PATCH in flight, keeps its bytes, answers 503 and the upload stays resumable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-shutdown-'));
    try {
      const first = await createFerry({ dataDir: dir, logLevel: 'silent' });
      const { url, port } = await first.listen({ host: '127.0.0.1', port: 0 });
      const location = await createUpload(url, 1_000_000);
      const path = new URL(location).pathname;
      // A PATCH that sends 300 KB and then waits: shutdown must not wait for the rest.
      const statusPromise = new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'PATCH',
            headers: {
              ...TUS,
              'upload-offset': '0',
              'content-type': 'application/offset+octet-stream',
              'content-length': '1000000',
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write(Buffer.alloc(300_000, 7));
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const closing = first.close();
      assert.equal(await statusPromise, 503);
      await closing;

      const second = await createFerry({ dataDir: dir, logLevel: 'silent' });
      const again = await second.listen({ host: '127.0.0.1', port: 0 });
      const resumed = `${again.url}${path}`;
      const head = await fetch(resumed, { method: 'HEAD', headers: TUS });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), '300000');
      const rest = await patch(resumed, 300_000, Buffer.alloc(700_000, 7));
      assert.equal(rest.status, 204);
      assert.equal(rest.headers.get('upload-offset'), '1000000');
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports not ready while closing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-ready-'));
    try {
      const ferry = await createFerry({ dataDir: dir, logLevel: 'silent' });
      const request = new Request('http://localhost/readyz');
      assert.equal((await ferry.fetch(request)).status, 200);
      const closing = ferry.close();
      assert.equal((await ferry.fetch(new Request('http://localhost/readyz'))).status, 503);
      await closing;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
