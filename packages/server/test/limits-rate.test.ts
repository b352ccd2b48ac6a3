/**
 * The rate limit on starting uploads, over real HTTP: a burst past `rateLimitBurst` answers 429
 * `ERR_RATE_LIMITED` with `Retry-After` (whole seconds); only creations count; with auth on the
 * token subject is the key (two subjects behind one address are counted apart); behind a trusted
 * proxy the forwarded address is the key, otherwise forwarding headers are ignored. Plus CORS with
 * credentials: `*` is refused at configuration, an exact origin list works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, normalizeConfig } from '../src/config.ts';
import { createRateLimiter, rateLimitKey } from '../src/http/rate-limit.ts';
import { bearer, SECRET, tokenFor } from './auth-helpers.ts';
import { createUpload, head, type Reply, send, startServer, type TestServer, TUS } from './tus-helpers.ts';

const LIMIT = 5;

function tusCreate(server: TestServer, headers: Record<string, string> = {}): Promise<Reply> {
  return send(server.endpoint, { method: 'POST', headers: { ...TUS, 'upload-length': '10', ...headers } });
}

function partsCreate(server: TestServer, headers: Record<string, string> = {}): Promise<Reply> {
  return send(`${server.url}/uploads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ size: 10 }),
  });
}

function assertLimited(reply: Reply): void {
  assert.equal(reply.status, 429);
  assert.equal(reply.code, 'ERR_RATE_LIMITED');
  const retryAfter = reply.headers['retry-after'];
  assert.match(String(retryAfter), /^[1-9][0-9]*$/, 'Retry-After in whole seconds');
  assert.deepEqual((reply.json as { error: { details: unknown } }).error.details, {
    retryAfterSeconds: Number(retryAfter),
  });
}

describe('rate limit per address', () => {
  let server: TestServer;
  before(async () => {
    // One creation a second after a burst of LIMIT.
    server = await startServer({ rateLimitPerSecond: 1, rateLimitBurst: LIMIT });
  });
  after(() => server?.stop());

  it('a burst of LIMIT+10 creations gets 429 ERR_RATE_LIMITED with Retry-After; other requests still pass', async () => {
    const replies = await Promise.all(Array.from({ length: LIMIT + 10 }, () => tusCreate(server)));
    const created = replies.filter((r) => r.status === 201);
    const limited = replies.filter((r) => r.status === 429);
    // A second may pass during the burst on a slow machine: one more token at most.
    assert.ok(created.length >= LIMIT && created.length <= LIMIT + 1, `${created.length} created`);
    assert.equal(created.length + limited.length, replies.length);
    for (const reply of limited) assertLimited(reply);
    // tus errors carry Tus-Resumable like every tus response.
    assert.equal(limited[0]?.headers['tus-resumable'], '1.0.0');
    // The parts API shares the bucket.
    assertLimited(await partsCreate(server));
    // Requests that do not start an upload are not counted: HEAD, PATCH, OPTIONS still answer.
    const location = new URL(String(created[0]?.headers.location), server.endpoint).href;
    for (let i = 0; i < 3; i += 1) assert.equal((await head(location)).status, 200);
    const patched = await send(location, {
      method: 'PATCH',
      headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
      body: '0123456789',
    });
    assert.equal(patched.status, 204);
    assert.equal((await send(server.endpoint, { method: 'OPTIONS', headers: TUS })).status, 204);
  });

  it('after Retry-After seconds a creation succeeds again', async () => {
    let reply = await tusCreate(server);
    while (reply.status === 201) reply = await tusCreate(server);
    assertLimited(reply);
    await new Promise((resolve) => setTimeout(resolve, Number(reply.headers['retry-after']) * 1000));
    assert.equal((await tusCreate(server)).status, 201);
  });

  it('forwarding headers are ignored without trustProxy', async () => {
    let reply = await tusCreate(server, { 'x-forwarded-for': '198.51.100.1' });
    while (reply.status === 201) reply = await tusCreate(server, { 'x-forwarded-for': '198.51.100.1' });
    // A forged X-Forwarded-For does not give a fresh bucket.
    assertLimited(await tusCreate(server, { 'x-forwarded-for': '198.51.100.2' }));
  });
});

describe('rate limit behind a trusted proxy', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ rateLimitPerSecond: 1, rateLimitBurst: LIMIT, trustProxy: true });
  });
  after(() => server?.stop());

  it('counts the address the proxy appended (the last X-Forwarded-For entry, or Forwarded for=)', async () => {
    const as = (entry: string) => ({ 'x-forwarded-for': entry });
    for (let i = 0; i < LIMIT; i += 1) assert.equal((await tusCreate(server, as('203.0.113.7'))).status, 201);
    assertLimited(await tusCreate(server, as('203.0.113.7')));
    // A client prepending its own entries still lands in its real bucket.
    assertLimited(await tusCreate(server, as('10.9.9.9, 203.0.113.7')));
    assertLimited(await tusCreate(server, { forwarded: 'for=10.0.0.1, for="203.0.113.7:4711"' }));
    // Another client behind the same proxy is served.
    assert.equal((await tusCreate(server, as('203.0.113.8'))).status, 201);
    assert.equal((await partsCreate(server, { forwarded: 'for="[2001:db8::1]:4711"' })).status, 201);
  });

  it('IPv6 clients count by their /64: a new interface id is no fresh bucket, another /64 is', async () => {
    const as = (entry: string) => ({ 'x-forwarded-for': entry });
    for (let i = 0; i < LIMIT; i += 1) {
      // Every request from another address of the same /64 (temporary addresses, RFC 8981).
      assert.equal((await tusCreate(server, as(`2001:db8:aa:1::${i + 1}`))).status, 201);
    }
    assertLimited(await tusCreate(server, as('2001:db8:aa:1:ffff:ffff:ffff:ffff')));
    assertLimited(await tusCreate(server, { forwarded: 'for="[2001:DB8:AA:1:0:0:0:99]:4711"' }));
    assert.equal((await tusCreate(server, as('2001:db8:aa:2::1'))).status, 201, 'another /64');
    // IPv4-mapped IPv6 is the IPv4 client.
    for (let i = 0; i < LIMIT; i += 1) assert.equal((await tusCreate(server, as('192.0.2.44'))).status, 201);
    assertLimited(await tusCreate(server, as('::ffff:192.0.2.44')));
  });
});

describe('rate limit keys', () => {
  it('IPv4 as it is; IPv4-mapped IPv6 as IPv4, in every spelling', () => {
    const table: [string, string][] = [
      ['192.0.2.1', '192.0.2.1'],
      ['0.0.0.0', '0.0.0.0'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['::FFFF:192.0.2.1', '192.0.2.1'],
      ['::ffff:c000:201', '192.0.2.1'],
      ['0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1'],
      ['0000:0000:0000:0000:0000:FFFF:C000:0201', '192.0.2.1'],
      ['[::ffff:192.0.2.1]', '192.0.2.1'],
    ];
    for (const [address, key] of table) assert.equal(rateLimitKey(address), key, address);
  });

  it('IPv6 by its /64, from compressed, full, mixed-case, bracketed and zoned forms', () => {
    const table: [string, string][] = [
      ['::1', '0:0:0:0::/64'],
      ['::', '0:0:0:0::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['2001:db8::', '2001:db8:0:0::/64'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0:0::/64'],
      ['2001:DB8::ABCD', '2001:db8:0:0::/64'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:db8:1:2::', '2001:db8:1:2::/64'],
      ['2001:db8:1::2:3:4:5', '2001:db8:1:0::/64'],
      ['2001:db8:1:2:3:4:5::', '2001:db8:1:2::/64'],
      ['::2:3:4:5:6:7:8', '0:2:3:4::/64'],
      ['[2001:db8:1:2::9]', '2001:db8:1:2::/64'],
      ['2001:db8:1:2::9%eth0', '2001:db8:1:2::/64'],
      ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
      ['::192.0.2.1', '0:0:0:0::/64'],
    ];
    for (const [address, key] of table) assert.equal(rateLimitKey(address), key, address);
    // Two addresses of one /64 share a key; the next /64 does not.
    assert.equal(rateLimitKey('2001:db8:5:6::1'), rateLimitKey('2001:db8:5:6:a:b:c:d'));
    assert.notEqual(rateLimitKey('2001:db8:5:6::1'), rateLimitKey('2001:db8:5:7::1'));
  });

  it('link-local addresses count whole, zone id included (every host on the link shares fe80::/64)', () => {
    assert.equal(rateLimitKey('fe80::1'), 'fe80:0:0:0:0:0:0:1');
    assert.equal(rateLimitKey('fe80::1%eth0'), 'fe80:0:0:0:0:0:0:1%eth0');
    assert.equal(rateLimitKey('FE80::A:B%ETH0'), 'fe80:0:0:0:0:0:a:b%eth0');
    assert.equal(rateLimitKey('febf::1'), 'febf:0:0:0:0:0:0:1');
    assert.notEqual(rateLimitKey('fe80::1%eth0'), rateLimitKey('fe80::2%eth0'));
    assert.equal(rateLimitKey('fec0::1'), 'fec0:0:0:0::/64', 'just outside fe80::/10');
  });

  it('anything that is not an IP address is its own key', () => {
    for (const address of [
      'unknown',
      '_hidden',
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '01.2.3.4',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      ':::',
      '1:2:3:4:5:6:7:8::',
      '12345::1',
      'g::1',
      '::ffff:1.2.3.400',
      '1.2.3.4::',
    ]) {
      assert.equal(rateLimitKey(address), address, JSON.stringify(address));
    }
  });
});

describe('rate limit per token subject', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ authSecret: SECRET, rateLimitPerSecond: 1, rateLimitBurst: LIMIT });
  });
  after(() => server?.stop());

  it('two subjects from one address: one exhausted, the other still served', async () => {
    const alice = bearer(await tokenFor('alice'));
    const bob = bearer(await tokenFor('bob'));
    for (let i = 0; i < LIMIT; i += 1) assert.equal((await tusCreate(server, alice)).status, 201);
    assertLimited(await tusCreate(server, alice));
    assertLimited(await partsCreate(server, alice));
    // A fresh token of the same subject is the same client.
    assertLimited(await tusCreate(server, bearer(await tokenFor('alice'))));
    for (let i = 0; i < LIMIT; i += 1) {
      assert.equal((await tusCreate(server, bob)).status, 201);
    }
    assertLimited(await tusCreate(server, bob));
    // A request without a valid token is refused by auth first and takes no one's budget.
    assert.equal((await tusCreate(server)).status, 401);
    const upload = await createUpload(server.endpoint, 10, bearer(await tokenFor('carol')));
    assert.equal((await head(upload, bearer(await tokenFor('carol')))).status, 200);
  });
});

describe('token buckets', () => {
  it('refill at perSecond, wait in whole seconds, forget full buckets', () => {
    let now = 0;
    const limiter = createRateLimiter({ perSecond: 2, burst: 3, now: () => now, pruneAbove: 2 });
    assert.deepEqual([limiter.take('a'), limiter.take('a'), limiter.take('a')], [0, 0, 0]);
    assert.equal(limiter.take('a'), 1, 'half a second to the next token: Retry-After 1');
    now = 500;
    assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 1);
    const slow = createRateLimiter({ perSecond: 1 / 10, burst: 1, now: () => now });
    assert.equal(slow.take('x'), 0);
    assert.equal(slow.take('x'), 10);
    limiter.take('b');
    now = 10_000;
    // A third key finds the table full: full buckets (a and b have refilled) are dropped.
    limiter.take('c');
    assert.equal(limiter.size, 1);
  });
});

describe('CORS with credentials', () => {
  it('is refused with "*" at configuration, naming the fix', () => {
    assert.throws(
      () => normalizeConfig({ corsCredentials: true }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /corsCredentials/.test(error.message) &&
        /exact list of origins/.test(error.message),
    );
    assert.throws(
      () => normalizeConfig({ corsCredentials: true, corsOrigins: ['https://a.example', '*'] }),
      ConfigError,
    );
  });

  it('works with an exact origin list: allowed origins get credentials, others nothing', async () => {
    const server = await startServer({ corsCredentials: true, corsOrigins: ['https://app.example'] });
    try {
      const preflight = await send(server.endpoint, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
      assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
      const created = await tusCreate(server, { origin: 'https://app.example' });
      assert.equal(created.status, 201);
      assert.equal(created.headers['access-control-allow-credentials'], 'true');
      const stranger = await tusCreate(server, { origin: 'https://evil.example' });
      assert.equal(stranger.headers['access-control-allow-origin'], undefined);
      assert.equal(stranger.headers['access-control-allow-credentials'], undefined);
    } finally {
      await server.stop();
    }
  });

  it('without credentials, no Allow-Credentials header is sent', async () => {
    const server = await startServer();
    try {
      const created = await tusCreate(server, { origin: 'https://app.example' });
      assert.equal(created.headers['access-control-allow-origin'], 'https://app.example');
      assert.equal(created.headers['access-control-allow-credentials'], undefined);
    } finally {
      await server.stop();
    }
  });
});
