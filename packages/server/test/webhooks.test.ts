/**
 * HTTP webhooks against a real receiver on loopback: signed events delivered through the outbox
 * (again after a 500, in order per upload), the blocking pre-create call (refusing with the
 * receiver's status and message, adjusting metadata, failing closed on a timeout), and the
 * signature helpers a receiver uses.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConfigError, normalizeConfig } from '../src/config.ts';
import { type HookEvent, signWebhook, verifyWebhook } from '../src/index.ts';
import {
  createUpload,
  head,
  idOf,
  metadataHeader,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

const SECRET = 'webhook-secret-for-tests-0123456789abcdef';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: HookEvent & { type: string };
}

type Answer = (request: Received) => { status: number; body?: string } | 'hang';

/** A webhook receiver that records every request and answers as `answer` says. */
async function startReceiver(answer: Answer = () => ({ status: 204 })) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const entry: Received = { headers: req.headers, body, event: JSON.parse(body) };
      received.push(entry);
      const reply = state.answer(entry);
      if (reply === 'hang') return;
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.body ?? '');
    });
  });
  const state = { answer };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function until(check: () => boolean, ms = 15_000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const eventsOf = (received: Received[], id: string) =>
  received.filter((entry) => entry.event.upload?.id === id).map((entry) => entry.event.type);

describe('webhook signatures', () => {
  const body = JSON.stringify({ id: 'e1', type: 'finished' });
  const now = () => 1_800_000_000_000;

  it('verifies what was signed, within the replay window', () => {
    const signature = signWebhook(SECRET, body, now() / 1000);
    assert.match(signature, /^t=1800000000,v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhook({ secret: SECRET, signature, body, now }), true);
    assert.equal(verifyWebhook({ secret: SECRET, signature, body: Buffer.from(body), now }), true);
    // 4 minutes later: inside the default 5-minute window; 6 minutes: outside.
    assert.equal(verifyWebhook({ secret: SECRET, signature, body, now: () => now() + 240_000 }), true);
    assert.equal(verifyWebhook({ secret: SECRET, signature, body, now: () => now() + 360_000 }), false);
    assert.equal(
      verifyWebhook({ secret: SECRET, signature, body, now: () => now() + 360_000, toleranceSeconds: 600 }),
      true,
    );
  });

  it('refuses a changed body, another secret, a changed timestamp and malformed headers', () => {
    const signature = signWebhook(SECRET, body, now() / 1000);
    assert.equal(
      verifyWebhook({ secret: SECRET, signature, body: body.replace('finished', 'created'), now }),
      false,
    );
    assert.equal(verifyWebhook({ secret: `${SECRET}x`, signature, body, now }), false);
    assert.equal(
      verifyWebhook({
        secret: SECRET,
        signature: signature.replace('t=1800000000', 't=1800000001'),
        body,
        now,
      }),
      false,
    );
    for (const bad of [undefined, null, '', 'v1=abc', 't=1800000000', 't=x,v1=00', signature.slice(0, -1)]) {
      assert.equal(verifyWebhook({ secret: SECRET, signature: bad, body, now }), false, String(bad));
    }
    assert.equal(verifyWebhook({ secret: '', signature, body, now }), false);
  });
});

describe('webhook configuration', () => {
  it('needs a secret of 32+ bytes, an http(s) URL and known event names', () => {
    assert.throws(() => normalizeConfig({ hookUrl: 'http://127.0.0.1:9/hooks' }), ConfigError);
    assert.throws(
      () => normalizeConfig({ hookUrl: 'http://127.0.0.1:9/hooks', hookSecret: 'short' }),
      ConfigError,
    );
    assert.throws(() => normalizeConfig({ hookUrl: 'ftp://example.com/', hookSecret: SECRET }), ConfigError);
    assert.throws(() => normalizeConfig({ hookEvents: ['created', 'finshed'] as never }), /finshed/);
    const config = normalizeConfig({
      hookUrl: 'https://app.example.com/ferry',
      hookSecret: SECRET,
      hookEvents: ['Pre-Create', 'finished'] as never,
    });
    assert.deepEqual(config.hookEvents, ['pre-create', 'finished']);
    assert.deepEqual(normalizeConfig().hookEvents, [
      'created',
      'finished',
      'terminated',
      'expired',
      'rejected',
    ]);
  });
});

describe('webhook events', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let server: TestServer;

  before(async () => {
    receiver = await startReceiver();
    server = await startServer({
      hookUrl: receiver.url,
      hookSecret: SECRET,
      hookRetryMaxDelaySeconds: 1,
      hashUploads: true,
    });
  });
  after(async () => {
    await server.stop();
    await receiver.close();
  });

  it('posts signed events with the finalization payload', async () => {
    const location = await uploadWhole(server.endpoint, 'hello webhook', {
      'upload-metadata': metadataHeader({ filename: 'hello.txt', filetype: 'text/plain' }),
    });
    const id = idOf(location);
    await until(() => eventsOf(receiver.received, id).length === 2, 15_000, 'two events');
    assert.deepEqual(eventsOf(receiver.received, id), ['created', 'finished']);
    for (const entry of receiver.received.filter((item) => item.event.upload.id === id)) {
      assert.equal(entry.headers['content-type'], 'application/json');
      assert.equal(entry.headers['ferry-event-id'], entry.event.id);
      assert.equal(entry.headers['ferry-event-type'], entry.event.type);
      assert.equal(entry.headers['ferry-delivery-attempt'], '1');
      assert.equal(
        verifyWebhook({
          secret: SECRET,
          signature: entry.headers['ferry-signature'] as string,
          body: entry.body,
        }),
        true,
      );
    }
    const finished = receiver.received.find(
      (entry) => entry.event.upload.id === id && entry.event.type === 'finished',
    )!;
    const upload = finished.event.upload;
    assert.equal(upload.name, 'hello.txt');
    assert.equal(upload.size, 13);
    assert.equal(upload.sha256, createHash('sha256').update('hello webhook').digest('hex'));
    assert.equal(upload.sniffedType, 'text/plain');
    assert.equal(upload.owner, '');
    assert.equal(upload.storage?.store, 'fs');
    assert.deepEqual(upload.metadata, { filename: 'hello.txt', filetype: 'text/plain' });
  });

  it('a 500 is followed by exactly one more delivery of that event, and the next event waits for it', async () => {
    const failed = new Set<string>();
    receiver.state.answer = (entry) => {
      if (entry.event.type === 'created' && !failed.has(entry.event.id)) {
        failed.add(entry.event.id);
        return { status: 500, body: '{"error":"try later"}' };
      }
      return { status: 200 };
    };
    try {
      const location = await uploadWhole(server.endpoint, 'retry me');
      const id = idOf(location);
      await until(() => eventsOf(receiver.received, id).includes('finished'), 15_000, 'the finished event');
      const forUpload = receiver.received.filter((entry) => entry.event.upload.id === id);
      assert.deepEqual(
        forUpload.map((entry) => [entry.event.type, entry.headers['ferry-delivery-attempt']]),
        [
          ['created', '1'],
          ['created', '2'],
          ['finished', '1'],
        ],
      );
      assert.equal(forUpload[0]?.event.id, forUpload[1]?.event.id, 'the same event id on both attempts');
      assert.equal(forUpload[0]?.body, forUpload[1]?.body, 'the same body on both attempts');
      await server.ferry.outbox.idle();
      const metrics = await server.ferry.metrics.registry.metrics();
      assert.match(metrics, /ferry_hook_deliveries_total\{sink="webhook",result="failed"\} 1/);
    } finally {
      receiver.state.answer = () => ({ status: 204 });
    }
  });

  it('terminated uploads are told', async () => {
    const location = await createUpload(server.endpoint, 10);
    assert.equal((await send(location, { method: 'DELETE', headers: TUS })).status, 204);
    const id = idOf(location);
    await until(() => eventsOf(receiver.received, id).length === 2, 15_000, 'created and terminated');
    assert.deepEqual(eventsOf(receiver.received, id), ['created', 'terminated']);
  });
});

describe('the pre-create webhook', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let server: TestServer;

  before(async () => {
    receiver = await startReceiver();
    server = await startServer({
      hookUrl: receiver.url,
      hookSecret: SECRET,
      hookEvents: ['pre-create'],
      hookTimeoutMs: 1000,
    });
  });
  after(async () => {
    await server.stop();
    await receiver.close();
  });

  it('is asked before anything is stored, signed, and its refusal reaches the client', async () => {
    receiver.state.answer = () => ({
      status: 403,
      body: JSON.stringify({ message: 'quota exceeded for this account' }),
    });
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: {
        ...TUS,
        'upload-length': '2048',
        'upload-metadata': metadataHeader({ filename: 'big.iso' }),
      },
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'ERR_HOOK_REJECTED');
    assert.equal(
      (reply.json as { error: { message: string } }).error.message,
      'quota exceeded for this account',
    );
    const asked = receiver.received.at(-1)!;
    assert.equal(asked.headers['ferry-event-type'], 'pre-create');
    assert.equal(
      verifyWebhook({
        secret: SECRET,
        signature: asked.headers['ferry-signature'] as string,
        body: asked.body,
      }),
      true,
    );
    assert.deepEqual(asked.event.upload, {
      owner: '',
      protocol: 'tus',
      size: 2048,
      name: 'big.iso',
      declaredType: null,
      metadata: { filename: 'big.iso' },
      concat: null,
    });
    // Plain-text refusals and other 4xx statuses pass through too.
    receiver.state.answer = () => ({ status: 413, body: 'too big for your plan' });
    const plain = await send(`${server.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: 10 }),
    });
    assert.equal(plain.status, 413);
    assert.equal((plain.json as { error: { message: string } }).error.message, 'too big for your plan');
  });

  it('may set the metadata; only pre-create is sent when only it is selected', async () => {
    receiver.state.answer = (entry) => ({
      status: 200,
      body: JSON.stringify({
        metadata: { ...(entry.event.upload as unknown as { metadata: object }).metadata, tenant: 't-42' },
      }),
    });
    const before = receiver.received.length;
    const location = await uploadWhole(server.endpoint, 'tagged', {
      'upload-metadata': metadataHeader({ filename: 'a.txt' }),
    });
    const status = await head(location);
    assert.equal(status.headers['upload-metadata'], metadataHeader({ filename: 'a.txt', tenant: 't-42' }));
    await server.ferry.outbox.idle();
    assert.deepEqual(
      receiver.received.slice(before).map((entry) => entry.event.type),
      ['pre-create'],
    );
  });

  it('fails closed: no answer in time, a 5xx or a redirect answers 503 ERR_HOOK_FAILED', async () => {
    for (const answer of [() => 'hang' as const, () => ({ status: 502 }), () => ({ status: 302 })]) {
      receiver.state.answer = answer;
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': '1' },
      });
      assert.equal(reply.status, 503);
      assert.equal(reply.code, 'ERR_HOOK_FAILED');
      assert.equal(reply.headers['retry-after'], '5');
    }
    receiver.state.answer = () => ({ status: 204 });
  });
});
