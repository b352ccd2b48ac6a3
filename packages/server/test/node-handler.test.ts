/** The node:http handler in front of something that already read the body. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createFerry } from '../src/index.ts';
import { startServer } from './tus-helpers.ts';

const TUS = { 'tus-resumable': '1.0.0' };

it('refuses a PATCH whose body a parser in front of Ferry already read (500 ERR_BODY_CONSUMED)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-consumed-'));
  const ferry = await createFerry({ dataDir: dir, logLevel: 'silent' });
  // What a body parser does: read the whole body, then hand the request on.
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => ferry.handler(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const created = await fetch(`${base}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '5' },
    });
    assert.equal(created.status, 201);
    const location = created.headers.get('location')!;
    const patched = await fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      body: 'hello',
    });
    assert.equal(patched.status, 500);
    assert.equal(((await patched.json()) as { error: { code: string } }).error.code, 'ERR_BODY_CONSUMED');
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers.get('upload-offset'), '0');
  } finally {
    server.close();
    await ferry.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it('answers 408 ERR_REQUEST_TIMEOUT to a client that sends its headers too slowly (slowloris)', async () => {
  const server = await startServer({ headersTimeoutMs: 300 });
  const port = Number(new URL(server.url).port);
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('HEAD /files/abcdefghijklmnopqrstuv HTTP/1.1\r\nHost: x\r\n');
        // …and the rest of the headers never comes.
      });
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk;
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      setTimeout(() => reject(new Error(`no answer in time: ${JSON.stringify(text)}`)), 5000).unref();
    });
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /"code":"ERR_REQUEST_TIMEOUT"/);
    const healthy = await fetch(`${server.url}/healthz`);
    assert.equal(healthy.status, 200);
  } finally {
    await server.stop();
  }
});
