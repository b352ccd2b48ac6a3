/**
 * Upload tokens on a server with an auth secret, over real HTTP: every route of every protocol
 * refuses a request without a valid token (missing, expired, tampered, another algorithm, another
 * secret, malformed claims) with 401 and a code, before it touches an upload; the query string
 * carries a token on download links only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTokenVerifier, mintUploadToken } from '../src/auth/upload-token.ts';
import {
  bearer,
  claims,
  createAs,
  hmacWith,
  jsonAs,
  patchAs,
  rawJwt,
  rs256,
  SECRET,
  tokenFor,
} from './auth-helpers.ts';
import { head, idOf, OCTETS, type Reply, send, startServer, type TestServer, TUS } from './tus-helpers.ts';

interface Route {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

describe('upload tokens', () => {
  let server: TestServer;
  let alice: string;
  /** An unfinished tus upload, a finished one, and an unfinished parts upload, all alice's. */
  let tusId: string;
  let finishedId: string;
  let partsId: string;
  let routes: Route[];

  before(async () => {
    server = await startServer({ authSecret: SECRET });
    alice = await tokenFor('alice');
    tusId = idOf(await createAs(server.endpoint, alice, 10));
    assert.equal((await patchAs(`${server.endpoint}${tusId}`, alice, 0, 'hello')).status, 204);
    const finished = await createAs(server.endpoint, alice, 3);
    assert.equal((await patchAs(finished, alice, 0, 'abc')).status, 204);
    finishedId = idOf(finished);
    const created = await jsonAs(`${server.url}/uploads`, alice, 'POST', { size: 8 });
    assert.equal(created.status, 201, created.body.toString());
    partsId = (created.json as { id: string }).id;
    routes = [
      { name: 'tus POST', method: 'POST', path: '/files/', headers: { ...TUS, 'upload-length': '1' } },
      { name: 'tus OPTIONS', method: 'OPTIONS', path: '/files/', headers: TUS },
      { name: 'tus HEAD', method: 'HEAD', path: `/files/${tusId}`, headers: TUS },
      {
        name: 'tus PATCH',
        method: 'PATCH',
        path: `/files/${tusId}`,
        headers: { ...OCTETS, 'upload-offset': '5' },
        body: 'world',
      },
      { name: 'tus DELETE', method: 'DELETE', path: `/files/${tusId}`, headers: TUS },
      { name: 'download GET', method: 'GET', path: `/files/${finishedId}` },
      { name: 'download HEAD', method: 'HEAD', path: `/files/${finishedId}` },
      {
        name: 'parts create',
        method: 'POST',
        path: '/uploads',
        headers: { 'content-type': 'application/json' },
        body: '{"size":1}',
      },
      { name: 'parts status', method: 'GET', path: `/uploads/${partsId}` },
      { name: 'parts PUT', method: 'PUT', path: `/uploads/${partsId}/parts/1`, body: '12345678' },
      {
        name: 'parts complete',
        method: 'POST',
        path: `/uploads/${partsId}/complete`,
        headers: { 'content-type': 'application/json' },
        body: '{}',
      },
      { name: 'parts DELETE', method: 'DELETE', path: `/uploads/${partsId}` },
      { name: 'parts events', method: 'GET', path: `/uploads/${partsId}/events` },
      {
        name: 'presign',
        method: 'POST',
        path: `/uploads/${partsId}/presign`,
        headers: { 'content-type': 'application/json' },
        body: '{"parts":[1]}',
      },
      { name: 'uploads list', method: 'GET', path: '/uploads' },
      { name: 'uploads feed', method: 'GET', path: '/uploads/events' },
    ];
  });
  after(() => server?.stop());

  function call(route: Route, headers: Record<string, string>, query = ''): Promise<Reply> {
    return send(`${server.url}${route.path}${query}`, {
      method: route.method,
      headers: { ...route.headers, ...headers },
      ...(route.body === undefined ? {} : { body: route.body }),
    });
  }

  /** Every route answers `status` with `code` for these headers; nothing of alice's changed. */
  async function refusedEverywhere(
    headers: Record<string, string>,
    code: string,
    query = '',
    status = 401,
  ): Promise<void> {
    for (const route of routes) {
      const reply = await call(route, headers, query);
      assert.equal(reply.status, status, `${route.name}: ${reply.status} ${reply.body.toString()}`);
      // A HEAD answer has no body: the status and the challenge must do.
      if (route.method !== 'HEAD') assert.equal(reply.code, code, `${route.name}: code`);
      if (status === 401) assert.match(String(reply.headers['www-authenticate']), /^Bearer realm="ferry"/);
    }
    await untouched();
  }

  async function untouched(): Promise<void> {
    const state = await head(`${server.endpoint}${tusId}`, bearer(alice));
    assert.equal(state.status, 200);
    assert.equal(state.headers['upload-offset'], '5');
    const file = await send(`${server.endpoint}${finishedId}`, { headers: bearer(alice) });
    assert.equal(file.body.toString(), 'abc');
    const parts = await jsonAs(`${server.url}/uploads/${partsId}`, alice, 'GET');
    assert.equal(parts.status, 200);
    assert.equal((parts.json as { receivedBytes: number }).receivedBytes, 0);
  }

  it('a missing token: 401 ERR_TOKEN_MISSING with a Bearer challenge on every route', async () => {
    await refusedEverywhere({}, 'ERR_TOKEN_MISSING');
  });

  it('an expired token: 401 ERR_TOKEN_EXPIRED', async () => {
    const expired = await mintUploadToken({
      secret: SECRET,
      subject: 'alice',
      ttlSeconds: 60,
      now: () => Date.now() - 120_000,
    });
    await refusedEverywhere(bearer(expired), 'ERR_TOKEN_EXPIRED');
  });

  it('a HEAD, which has no body to name its code, says in its challenge that the token expired', async () => {
    const expired = await mintUploadToken({
      secret: SECRET,
      subject: 'alice',
      ttlSeconds: 60,
      now: () => Date.now() - 120_000,
    });
    const late = await head(`${server.endpoint}${tusId}`, bearer(expired));
    assert.equal(late.status, 401);
    assert.match(
      String(late.headers['www-authenticate']),
      /error="invalid_token", error_description="[^"]*expired"/,
    );
    const forged = await head(`${server.endpoint}${tusId}`, bearer(`${alice}x`));
    assert.equal(forged.status, 401);
    assert.match(String(forged.headers['www-authenticate']), /error="invalid_token"/);
    assert.doesNotMatch(String(forged.headers['www-authenticate']), /expired/);
  });

  it('a tampered token (payload or signature changed): 401 ERR_TOKEN_INVALID', async () => {
    const [header, , signature] = alice.split('.');
    const otherPayload = Buffer.from(JSON.stringify(claims('mallory'))).toString('base64url');
    await refusedEverywhere(bearer(`${header}.${otherPayload}.${signature}`), 'ERR_TOKEN_INVALID');
    const flipped = `${signature!.slice(0, -2)}${signature!.endsWith('AA') ? 'BB' : 'AA'}`;
    const [h, p] = alice.split('.');
    await refusedEverywhere(bearer(`${h}.${p}.${flipped}`), 'ERR_TOKEN_INVALID');
  });

  it('another algorithm: none, RS256 signed with the secret as HMAC key, real RS256, HS512', async () => {
    const forged = [
      rawJwt({ alg: 'none', typ: 'JWT' }, claims('alice')),
      rawJwt({ alg: 'RS256', typ: 'JWT' }, claims('alice'), hmacWith(SECRET)),
      rawJwt({ alg: 'RS256', typ: 'JWT' }, claims('alice'), rs256),
      rawJwt({ alg: 'HS512', typ: 'JWT' }, claims('alice'), hmacWith(SECRET, 'sha512')),
    ];
    for (const token of forged) await refusedEverywhere(bearer(token), 'ERR_TOKEN_INVALID');
  });

  it('the right algorithm but another secret: 401 ERR_TOKEN_INVALID', async () => {
    const token = rawJwt({ alg: 'HS256', typ: 'JWT' }, claims('alice'), hmacWith(`${SECRET}-not`));
    await refusedEverywhere(bearer(token), 'ERR_TOKEN_INVALID');
  });

  it('a hand-made HS256 token with the secret is accepted (the forgeries above fail for their flaw only)', async () => {
    const token = rawJwt({ alg: 'HS256', typ: 'JWT' }, claims('alice'), hmacWith(SECRET));
    const reply = await head(`${server.endpoint}${tusId}`, bearer(token));
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['upload-offset'], '5');
  });

  it('missing or malformed claims: 401 ERR_TOKEN_INVALID', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payloads = [
      { exp: now + 60 }, // no subject
      claims(''), // an empty subject would be the open namespace
      { sub: 'alice', iat: now }, // no expiry
      claims('alice', { maxSize: 'big' }),
      claims('alice', { maxSize: -1 }),
      claims('alice', { types: 'image/*' }),
      claims('alice', { types: ['not a type'] }),
      claims('alice', { uploadId: '../etc' }),
    ];
    for (const payload of payloads) {
      const token = rawJwt({ alg: 'HS256', typ: 'JWT' }, payload, hmacWith(SECRET));
      const reply = await head(`${server.endpoint}${tusId}`, bearer(token));
      assert.equal(reply.status, 401, JSON.stringify(payload));
      const list = await jsonAs(`${server.url}/uploads`, token, 'GET');
      assert.equal(list.code, 'ERR_TOKEN_INVALID', JSON.stringify(payload));
    }
  });

  it('an Authorization header that is not a Bearer token: 401 ERR_TOKEN_INVALID', async () => {
    for (const value of ['Basic YWxpY2U6cHc=', 'Bearer', 'Bearer a b', alice]) {
      const reply = await send(`${server.url}/uploads`, { headers: { authorization: value } });
      assert.equal(reply.status, 401, value);
      assert.equal(reply.code, 'ERR_TOKEN_INVALID', value);
    }
  });

  it('?token= is read on download GET and HEAD only', async () => {
    const query = `?token=${alice}`;
    const file = await send(`${server.endpoint}${finishedId}${query}`);
    assert.equal(file.status, 200);
    assert.equal(file.body.toString(), 'abc');
    const probe = await send(`${server.endpoint}${finishedId}${query}`, { method: 'HEAD' });
    assert.equal(probe.status, 200);
    assert.equal(probe.headers['content-length'], '3');
    // Everywhere else the query token is refused, even a valid one.
    const downloads = new Set(['download GET', 'download HEAD']);
    for (const route of routes.filter((entry) => !downloads.has(entry.name))) {
      const reply = await call(route, {}, query);
      assert.equal(reply.status, 401, `${route.name}: ${reply.status}`);
      if (route.method !== 'HEAD') assert.equal(reply.code, 'ERR_TOKEN_MISSING', route.name);
    }
    await untouched();
  });

  it('a download link with an expired or forged query token is refused', async () => {
    const expired = await mintUploadToken({
      secret: SECRET,
      subject: 'alice',
      ttlSeconds: 1,
      now: () => Date.now() - 10_000,
    });
    const late = await send(`${server.endpoint}${finishedId}?token=${expired}`);
    assert.equal(late.code, 'ERR_TOKEN_EXPIRED');
    const forged = rawJwt({ alg: 'none' }, claims('alice'));
    const none = await send(`${server.endpoint}${finishedId}?token=${forged}`);
    assert.equal(none.code, 'ERR_TOKEN_INVALID');
  });

  it('health checks and CORS preflights need no token', async () => {
    assert.equal((await send(`${server.url}/healthz`)).status, 200);
    const preflight = await send(`${server.endpoint}${tusId}`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'PATCH' },
    });
    assert.equal(preflight.status, 204);
    assert.match(String(preflight.headers['access-control-allow-headers']), /Authorization/);
  });

  it('a 401 answered to another origin carries CORS headers, so the browser app can read it', async () => {
    const reply = await send(`${server.url}/uploads`, { headers: { origin: 'https://app.example' } });
    assert.equal(reply.status, 401);
    assert.equal(reply.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(reply.headers['access-control-expose-headers']), /WWW-Authenticate/);
  });

  it('with a valid token the whole tus and parts flows work', async () => {
    const location = await createAs(server.endpoint, alice, 4);
    assert.equal((await patchAs(location, alice, 0, 'data')).status, 204);
    const file = await send(location, { headers: bearer(alice) });
    assert.equal(file.body.toString(), 'data');
    const created = await jsonAs(`${server.url}/uploads`, alice, 'POST', { size: 4 });
    const id = (created.json as { id: string }).id;
    const part = await send(`${server.url}/uploads/${id}/parts/1`, {
      method: 'PUT',
      headers: bearer(alice),
      body: 'wxyz',
    });
    assert.equal(part.status, 200, part.body.toString());
    const done = await jsonAs(`${server.url}/uploads/${id}/complete`, alice, 'POST', {});
    assert.equal(done.status, 200, done.body.toString());
  });
});

describe('the token verifier', () => {
  it('refuses a token it verified before once the token has expired (the cache re-checks expiry)', async () => {
    let clock = Date.now();
    const verifier = createTokenVerifier({ secret: SECRET, now: () => clock });
    const token = await mintUploadToken({
      secret: SECRET,
      subject: 'alice',
      ttlSeconds: 60,
      now: () => clock,
    });
    const grant = await verifier.verify(token);
    assert.equal(grant.subject, 'alice');
    assert.equal(await verifier.verify(token), grant);
    clock += 61_000;
    await assert.rejects(verifier.verify(token), { code: 'ERR_TOKEN_EXPIRED' });
    await assert.rejects(verifier.verify(token), { code: 'ERR_TOKEN_EXPIRED' });
  });

  it('refuses a short secret when minting or verifying', async () => {
    await assert.rejects(
      mintUploadToken({ secret: 'short', subject: 'a', ttlSeconds: 1 }),
      /at least 32 bytes/,
    );
    assert.throws(() => createTokenVerifier({ secret: 'x'.repeat(31) }), /at least 32 bytes/);
  });
});

describe('a server without an auth secret', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it('needs no token and does not read one (every upload is in the open namespace)', async () => {
    assert.equal(server.ferry.authRequired, false);
    const location = await createAs(server.endpoint, 'not-a-token', 2);
    assert.equal((await patchAs(location, 'also-not', 0, 'ok')).status, 204);
    assert.equal((await send(location)).body.toString(), 'ok');
    await assert.rejects(server.ferry.mintToken({ subject: 'alice', ttlSeconds: 60 }), /no authSecret/);
  });
});
