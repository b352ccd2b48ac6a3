/**
 * Webhooks end to end, with real `ferry serve` processes: the receiver is down for 30 seconds while
 * uploads are created, finished, terminated, refused and left to expire, and the server is
 * restarted in the middle; once the receiver is up, every event arrives, in order per upload, each
 * correctly signed. And the blocking pre-create webhook's refusal reaches the real tus-js-client
 * as the receiver's status and message.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { verifyWebhook } from '@ferry/server';
import { exeBytes } from '@ferry/testing';
import type { DetailedError } from 'tus-js-client';
import { createFerryGroup, type FerryProcess } from './helpers/ferry-process.ts';
import { runUpload } from './helpers/tus-client.ts';

const SECRET = 'e2e-webhook-secret-0123456789abcdefghij';
const OUTAGE_MS = 30_000;

const group = createFerryGroup();
const receivers: Server[] = [];
after(async () => {
  for (const server of receivers) {
    server.closeAllConnections();
    server.close();
  }
  await group.cleanup();
});

interface Delivery {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  event: { id: string; type: string; upload: { id: string; name: string | null; size: number | null } };
}

/** Listens on `port` (0: any); records every request and answers `answer`'s status and body. */
async function listenReceiver(
  port: number,
  deliveries: Delivery[],
  answer: () => { status: number; body?: string } = () => ({ status: 204 }),
): Promise<number> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ at: Date.now(), headers: req.headers, body, event: JSON.parse(body) });
      const { status, body: reply = '' } = answer();
      res.writeHead(status, { 'content-type': 'application/json' }).end(reply);
    });
  });
  receivers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on now (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function until(check: () => boolean, ms: number, what: string, server?: FerryProcess): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${server?.stderr ?? ''}`);
    await sleep(50);
  }
}

function tusUpload(server: FerryProcess, bytes: Buffer, metadata: Record<string, string>): Promise<string> {
  return runUpload(bytes, { endpoint: server.endpoint, metadata, chunkSize: 64 * 1024 }).done;
}

async function partsUpload(server: FerryProcess, bytes: Buffer, name: string): Promise<string> {
  const created = await fetch(`${server.url}/uploads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ size: bytes.length, name, type: 'text/plain' }),
  });
  assert.equal(created.status, 201);
  const { id, url } = (await created.json()) as { id: string; url: string };
  const put = await fetch(`${url}/parts/1`, { method: 'PUT', body: new Uint8Array(bytes) });
  assert.equal(put.status, 200, await put.text());
  const done = await fetch(`${url}/complete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(done.status, 200, await done.text());
  return id;
}

const idOf = (url: string) => new URL(url).pathname.split('/').pop() ?? '';

describe('webhooks through a receiver outage and a server restart', () => {
  it('delivers every event once the receiver is back: in order per upload, signed', async () => {
    const hookPort = await freePort();
    const dataDir = await group.makeDir('ferry-e2e-hooks-');
    const args = [
      '--hook-url',
      `http://127.0.0.1:${hookPort}/ferry-events`,
      '--hook-retry-max-delay-seconds',
      '2',
      '--allow-types',
      'text/plain,image/*',
      '--expiry-seconds',
      '3',
      '--sweep-interval-seconds',
      '1',
    ];
    const env = { FERRY_HOOK_SECRET: SECRET };
    const outageStarted = Date.now();
    const expected = new Map<string, string[]>();
    const text = (words: string) => Buffer.from(`${words}\n`.repeat(200));

    let server = await group.start({ dataDir, args, env });
    expected.set(
      idOf(await tusUpload(server, text('first'), { filename: 'first.txt', filetype: 'text/plain' })),
      ['created', 'finished'],
    );
    expected.set(await partsUpload(server, text('second'), 'second.txt'), ['created', 'finished']);
    const doomed = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '1000' },
    });
    assert.equal(doomed.status, 201);
    const doomedUrl = new URL(doomed.headers.get('location')!, server.endpoint).href;
    assert.equal(
      (await fetch(doomedUrl, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } })).status,
      204,
    );
    expected.set(idOf(doomedUrl), ['created', 'terminated']);
    const refused = runUpload(exeBytes(), {
      endpoint: server.endpoint,
      metadata: { filename: 'cat.png', filetype: 'image/png' },
    });
    await assert.rejects(refused.done, /ERR_TYPE_NOT_ALLOWED/);
    expected.set(idOf(refused.url()!), ['created', 'rejected']);
    const idle = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '100' },
    });
    assert.equal(idle.status, 201);
    expected.set(idOf(new URL(idle.headers.get('location')!, server.endpoint).href), ['created', 'expired']);

    // Let the expiry sweeper remove the idle upload, then restart the server mid-outage.
    await sleep(5000);
    await server.stop();
    server = await group.start({ dataDir, args, env });
    expected.set(
      idOf(await tusUpload(server, text('after restart'), { filename: 'late.txt', filetype: 'text/plain' })),
      ['created', 'finished'],
    );

    const deliveries: Delivery[] = [];
    await sleep(Math.max(0, outageStarted + OUTAGE_MS - Date.now()));
    const upAt = Date.now();
    await listenReceiver(hookPort, deliveries);
    const total = [...expected.values()].reduce((sum, types) => sum + types.length, 0);
    const distinct = () => new Set(deliveries.map((delivery) => delivery.event.id)).size;
    await until(() => distinct() >= total, 60_000, `${total} events`, server);

    assert.ok(upAt - outageStarted >= OUTAGE_MS, 'the receiver was down for 30 s');
    for (const delivery of deliveries) {
      assert.equal(
        verifyWebhook({
          secret: SECRET,
          signature: delivery.headers['ferry-signature'] as string,
          body: delivery.body,
        }),
        true,
        `signature of ${delivery.event.type} ${delivery.event.id}`,
      );
      assert.equal(delivery.headers['ferry-event-id'], delivery.event.id);
    }
    for (const [id, types] of expected) {
      const seen = new Set<string>();
      const inOrder: string[] = [];
      for (const delivery of deliveries) {
        if (delivery.event.upload.id !== id || seen.has(delivery.event.id)) continue;
        seen.add(delivery.event.id);
        inOrder.push(delivery.event.type);
      }
      assert.deepEqual(inOrder, types, `events of upload ${id}`);
      // The first event of each upload was tried while the receiver was down (the later ones wait
      // behind it, so they may go out at their first attempt).
      const first = deliveries.find((delivery) => delivery.event.upload.id === id);
      assert.ok(
        Number(first?.headers['ferry-delivery-attempt']) >= 2,
        `upload ${id}: an attempt failed first`,
      );
    }
    const finished = deliveries.find(
      (delivery) => delivery.event.type === 'finished' && delivery.event.upload.name === 'late.txt',
    );
    assert.equal(finished?.event.upload.size, Buffer.byteLength('after restart\n') * 200);
    await server.stop();
  });
});

describe('the pre-create webhook with tus-js-client', () => {
  it('refuses the upload with the receiver status and message', async () => {
    const deliveries: Delivery[] = [];
    const port = await listenReceiver(0, deliveries, () => ({
      status: 403,
      body: JSON.stringify({ message: 'this account may not upload videos' }),
    }));
    const server = await group.start({
      args: ['--hook-url', `http://127.0.0.1:${port}/pre`, '--hook-events', 'pre-create'],
      env: { FERRY_HOOK_SECRET: SECRET },
    });
    const run = runUpload(Buffer.alloc(1000, 7), {
      endpoint: server.endpoint,
      metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
    });
    const error = (await run.done.then(
      () => assert.fail('the upload should have been refused'),
      (reason: unknown) => reason,
    )) as DetailedError;
    assert.equal(error.originalResponse?.getStatus(), 403);
    const body = JSON.parse(error.originalResponse?.getBody() ?? '{}') as {
      error: { code: string; message: string };
    };
    assert.deepEqual(body.error, {
      code: 'ERR_HOOK_REJECTED',
      message: 'this account may not upload videos',
    });
    assert.match(error.message, /this account may not upload videos/);
    assert.equal(run.url(), null, 'no upload was created');
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]?.event.type, 'pre-create');
    assert.equal(deliveries[0]?.event.upload.name, 'clip.mp4');
    await server.stop();
  });
});
