/**
 * JSON bodies (parts API create / complete / presign / ETag reports, Uppy's S3 routes) have one
 * deadline for the whole body, `bodyTimeoutMs`: a body that trickles in — a byte at a time, each
 * well within any idle timer — is answered `408 ERR_REQUEST_TIMEOUT` and its connection closed.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PART_REPORT_CONTENT_TYPE } from '@ferry/protocol';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';
import { send, startServer, type TestServer } from './tus-helpers.ts';

const TIMEOUT_MS = 1500;

/**
 * Sends `head` (a whole request head announcing a body of 200 bytes) on a raw connection, then one
 * byte of JSON every 200 ms: far more often than any idle timer allows, far too slowly to finish.
 * Resolves with what the server answered once it closed the connection.
 */
function trickle(port: number, head: string): Promise<{ answer: string; byServer: boolean }> {
  const socket: Socket = connect(port, '127.0.0.1');
  let answer = '';
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    answer += chunk;
  });
  socket.on('error', () => {});
  socket.on('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      sent += 1;
      if (socket.writable) socket.write(sent === 1 ? '{' : ' ');
      // Never cut by the server after 199 bytes (40 s): give up, and the assertions fail.
      if (sent >= 199) socket.destroy();
    }, 200);
  });
  return new Promise((resolve) => {
    const done = () => {
      clearInterval(timer);
      resolve({ answer, byServer: sent < 199 });
    };
    socket.once('end', done);
    socket.once('close', done);
  });
}

function requestHead(method: string, path: string, contentType = 'application/json'): string {
  return (
    `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${contentType}\r\n` +
    'content-length: 200\r\n\r\n'
  );
}

function assertCut(result: { answer: string; byServer: boolean }): void {
  assert.ok(result.byServer, 'the server closed the connection before the body was complete');
  assert.match(result.answer, /^HTTP\/1\.1 408 /, result.answer);
  assert.match(result.answer, /connection: close/i);
  assert.match(result.answer, /"code":"ERR_REQUEST_TIMEOUT"/);
  assert.match(result.answer, /the JSON request body did not arrive within 1500 ms/);
}

const postJson = (url: string, value: unknown) =>
  send(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });

describe('JSON body deadline (fs storage)', () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startServer({ bodyTimeoutMs: TIMEOUT_MS });
    port = Number(new URL(server.url).port);
  });
  after(() => server?.stop());

  it('parts API create: a trickling body is answered 408 ERR_REQUEST_TIMEOUT and the connection closed', async () => {
    assertCut(await trickle(port, requestHead('POST', '/uploads')));
    // The server still serves: a normal creation right after.
    assert.equal((await postJson(`${server.url}/uploads`, { size: 10 })).status, 201);
  });

  it('parts API complete: the same', async () => {
    const created = (await postJson(`${server.url}/uploads`, { size: 10 })).json as { id: string };
    assertCut(await trickle(port, requestHead('POST', `/uploads/${created.id}/complete`)));
  });

  it('the fetch adapter: a body stream that never ends is answered 408 as well', async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls += 1;
        // One byte, then nothing more, ever.
        if (pulls === 1) controller.enqueue(new TextEncoder().encode('{'));
        return new Promise(() => {});
      },
    });
    const answer = await server.ferry.fetch(
      new Request(`${server.url}/uploads`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit),
    );
    assert.equal(answer.status, 408);
    const body = (await answer.json()) as { error: { code: string; details: unknown } };
    assert.equal(body.error.code, 'ERR_REQUEST_TIMEOUT');
    assert.deepEqual(body.error.details, { timeoutMs: TIMEOUT_MS });
  });

  it('a body that arrives in time is read as before', async () => {
    const reply = await postJson(`${server.url}/uploads`, { size: 3, name: 'a.txt' });
    assert.equal(reply.status, 201, reply.body.toString());
  });
});

const settings = await s3Service();

describe('JSON body deadline (S3 routes, real RGW)', { skip: settings === undefined }, () => {
  let server: TestServer;
  let store: S3DataStore;
  let port: number;
  before(async () => {
    store = await createS3DataStore(s3StoreOptions(settings!, uniqueKeyPrefix('json-deadline')));
    server = await startServer({ dataStore: store, bodyTimeoutMs: TIMEOUT_MS });
    port = Number(new URL(server.url).port);
  });
  after(async () => {
    await server?.stop();
    await store?.close();
  });

  it('presign, ETag report and Uppy create: a trickling body is cut with 408', async () => {
    const created = (await postJson(`${server.url}/uploads`, { size: 10 })).json as { id: string };
    const [presign, report, uppy] = await Promise.all([
      trickle(port, requestHead('POST', `/uploads/${created.id}/presign`)),
      trickle(port, requestHead('PUT', `/uploads/${created.id}/parts/1`, PART_REPORT_CONTENT_TYPE)),
      trickle(port, requestHead('POST', '/s3/multipart')),
    ]);
    assertCut(presign);
    assertCut(report);
    assertCut(uppy);
    // Nothing was presigned, reported or created: the upload is as it was, and still usable.
    const presigned = await postJson(`${server.url}/uploads/${created.id}/presign`, { parts: [1] });
    assert.equal(presigned.status, 200, presigned.body.toString());
  });
});
