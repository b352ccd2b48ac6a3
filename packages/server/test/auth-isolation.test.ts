/**
 * Owner isolation over real HTTP: an upload is resumed, read, listed or deleted only by the
 * subject of the token that made it; everyone else gets 404, on every route, before any lock is
 * taken. The feed and dedup stay within a namespace, and a token for one upload reaches that
 * upload only.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { bearer, createAs, jsonAs, patchAs, SECRET, tokenFor } from './auth-helpers.ts';
import { openSse } from './sse-client.ts';
import { head, idOf, OCTETS, type Reply, send, startServer, type TestServer, TUS } from './tus-helpers.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('owner isolation', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;

  before(async () => {
    server = await startServer({ authSecret: SECRET, stallMs: 200 });
    alice = await tokenFor('alice');
    bob = await tokenFor('bob');
  });
  after(() => server?.stop());

  /** alice's uploads: tus unfinished (5 of 10 bytes), tus finished, parts unfinished (no part yet). */
  async function aliceUploads() {
    const tus = await createAs(server.endpoint, alice, 10);
    assert.equal((await patchAs(tus, alice, 0, 'hello')).status, 204);
    const finished = await createAs(server.endpoint, alice, 3);
    assert.equal((await patchAs(finished, alice, 0, 'abc')).status, 204);
    const created = await jsonAs(`${server.url}/uploads`, alice, 'POST', { size: 8 });
    assert.equal(created.status, 201, created.body.toString());
    const partsId = (created.json as { id: string }).id;
    return { tusId: idOf(tus), finishedId: idOf(finished), partsId };
  }

  it("another owner gets 404 on every route of alice's uploads, and changes nothing", async () => {
    const { tusId, finishedId, partsId } = await aliceUploads();
    const files = server.endpoint;
    const uploads = `${server.url}/uploads/`;
    const json = { 'content-type': 'application/json' };
    const attempts: Array<[string, string, Parameters<typeof send>[1]]> = [
      ['tus HEAD', `${files}${tusId}`, { method: 'HEAD', headers: TUS }],
      [
        'tus PATCH',
        `${files}${tusId}`,
        { method: 'PATCH', headers: { ...OCTETS, 'upload-offset': '5' }, body: 'world' },
      ],
      ['tus DELETE', `${files}${tusId}`, { method: 'DELETE', headers: TUS }],
      ['download GET', `${files}${finishedId}`, { method: 'GET' }],
      ['download HEAD', `${files}${finishedId}`, { method: 'HEAD' }],
      ['download of an unfinished upload', `${files}${tusId}`, { method: 'GET' }],
      ['parts status', `${uploads}${partsId}`, { method: 'GET' }],
      ['parts PUT', `${uploads}${partsId}/parts/1`, { method: 'PUT', body: 'abcdefgh' }],
      ['parts complete', `${uploads}${partsId}/complete`, { method: 'POST', headers: json, body: '{}' }],
      ['parts DELETE', `${uploads}${partsId}`, { method: 'DELETE' }],
      ['parts events', `${uploads}${partsId}/events`, { method: 'GET' }],
      ['presign', `${uploads}${partsId}/presign`, { method: 'POST', headers: json, body: '{"parts":[1]}' }],
    ];
    for (const [name, url, options] of attempts) {
      const reply = await send(url, { ...options, headers: { ...options?.headers, ...bearer(bob) } });
      assert.equal(reply.status, 404, `${name}: ${reply.status} ${reply.body.toString()}`);
      if (options?.method !== 'HEAD') assert.equal(reply.code, 'ERR_NOT_FOUND', name);
    }
    // A download link with bob's token in the query string: the same 404.
    const link = await send(`${files}${finishedId}?token=${bob}`);
    assert.equal(link.status, 404);
    // The answers are those of an id that does not exist: nothing tells bob the uploads are there.
    const unknown = await send(`${files}${'A'.repeat(22)}`, {
      method: 'HEAD',
      headers: { ...TUS, ...bearer(bob) },
    });
    assert.equal(unknown.status, 404);

    // alice's uploads are as she left them, and she can finish them.
    const state = await head(`${files}${tusId}`, bearer(alice));
    assert.equal(state.headers['upload-offset'], '5');
    assert.equal((await patchAs(`${files}${tusId}`, alice, 5, 'world')).status, 204);
    assert.equal((await send(`${files}${tusId}`, { headers: bearer(alice) })).body.toString(), 'helloworld');
    assert.equal((await send(`${files}${finishedId}?token=${alice}`)).body.toString(), 'abc');
    const status = await jsonAs(`${uploads}${partsId}`, alice, 'GET');
    assert.deepEqual((status.json as { received: unknown }).received, []);
    const part = await send(`${uploads}${partsId}/parts/1`, {
      method: 'PUT',
      headers: bearer(alice),
      body: 'abcdefgh',
    });
    assert.equal(part.status, 200);
    assert.equal((await jsonAs(`${uploads}${partsId}/complete`, alice, 'POST', {})).status, 200);
  });

  it('a stranger is refused before the lock: a stalled PATCH of the owner does not yield to him', async () => {
    const location = await createAs(server.endpoint, alice, 10);
    const url = new URL(location);
    const answer = new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(
        url,
        {
          method: 'PATCH',
          agent: false,
          headers: { ...OCTETS, ...bearer(alice), 'upload-offset': '0', 'content-length': '10' },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.alloc(0),
              code: undefined,
              json: undefined,
            }),
          );
        },
      );
      req.on('error', reject);
      req.write('hello');
      // Silent past stallMs (200 ms): a lock request now would make this writer yield.
      setTimeout(async () => {
        try {
          const stranger = await head(location, bearer(bob));
          assert.equal(stranger.status, 404);
          const deletion = await send(location, { method: 'DELETE', headers: { ...TUS, ...bearer(bob) } });
          assert.equal(deletion.status, 404);
          req.end('world');
        } catch (error) {
          req.destroy();
          reject(error);
        }
      }, 600);
    });
    const reply = await answer;
    assert.equal(reply.status, 204);
    assert.equal(reply.headers['upload-offset'], '10');
  });

  it('GET /uploads and the feed show each owner only their own uploads', async () => {
    const carol = await tokenFor('carol');
    const dave = await tokenFor('dave');
    const daveFeed = await openSse(`${server.url}/uploads/events`, bearer(dave));
    const carolFeed = await openSse(`${server.url}/uploads/events`, bearer(carol));
    try {
      assert.equal(daveFeed.status, 200);
      assert.deepEqual((await daveFeed.next('snapshot')).data.uploads, []);
      assert.deepEqual((await carolFeed.next('snapshot')).data.uploads, []);
      const location = await createAs(server.endpoint, carol, 8);
      const id = idOf(location);
      assert.equal((await patchAs(location, carol, 0, 'half')).status, 204);
      await carolFeed.next('created', (data) => data.upload.id === id);
      const bobsOwn = await createAs(server.endpoint, dave, 4);
      // dave's stream carries dave's upload and nothing of carol's.
      await daveFeed.next('created', (data) => data.upload.id === idOf(bobsOwn));
      assert.ok(
        daveFeed.events.every((event) => !JSON.stringify(event.data).includes(id)),
        "dave's feed mentions carol's upload",
      );
      const carolList = await jsonAs(`${server.url}/uploads`, carol, 'GET');
      const daveList = await jsonAs(`${server.url}/uploads`, dave, 'GET');
      const ids = (reply: Reply) =>
        (reply.json as { uploads: { id: string }[] }).uploads.map((entry) => entry.id);
      assert.deepEqual(ids(carolList), [id]);
      assert.deepEqual(ids(daveList), [idOf(bobsOwn)]);
    } finally {
      daveFeed.close();
      carolFeed.close();
    }
  });

  it('an event stream ends when its token expires', async () => {
    // `exp` is in whole seconds, so a token of N seconds lives between N - 1 and N: with 1 second
    // it may be expired before the request arrives on a loaded machine.
    const shortLived = await tokenFor('erin', { ttlSeconds: 3 });
    const feed = await openSse(`${server.url}/uploads/events`, bearer(shortLived));
    try {
      assert.equal(feed.status, 200);
      await feed.next('snapshot');
      await feed.ended;
    } finally {
      feed.close();
    }
  });

  it('dedup never crosses namespaces', async () => {
    const file = randomBytes(3000);
    const digest = sha256(file);
    const created = await jsonAs(`${server.url}/uploads`, alice, 'POST', {
      size: file.length,
      sha256: digest,
    });
    const id = (created.json as { id: string }).id;
    await send(`${server.url}/uploads/${id}/parts/1`, { method: 'PUT', headers: bearer(alice), body: file });
    assert.equal((await jsonAs(`${server.url}/uploads/${id}/complete`, alice, 'POST', {})).status, 200);

    const again = await jsonAs(`${server.url}/uploads`, alice, 'POST', { size: file.length, sha256: digest });
    assert.equal(again.status, 200, 'the owner gets her own copy deduplicated');
    assert.equal((again.json as { deduplicated: boolean }).deduplicated, true);
    const other = await jsonAs(`${server.url}/uploads`, bob, 'POST', { size: file.length, sha256: digest });
    assert.equal(other.status, 201, 'bob must not learn that alice has this file');
  });

  it('a token for one upload reaches that upload only', async () => {
    const { tusId, finishedId } = await aliceUploads();
    const forTus = await tokenFor('alice', { uploadId: tusId });
    const forFile = await tokenFor('alice', { uploadId: finishedId });
    assert.equal((await head(`${server.endpoint}${tusId}`, bearer(forTus))).status, 200);
    assert.equal((await head(`${server.endpoint}${finishedId}`, bearer(forTus))).status, 404);
    assert.equal((await patchAs(`${server.endpoint}${tusId}`, forTus, 5, 'world')).status, 204);
    const link = await send(`${server.endpoint}${finishedId}?token=${forFile}`);
    assert.equal(link.body.toString(), 'abc');
    assert.equal((await send(`${server.endpoint}${tusId}?token=${forFile}`)).status, 404);

    const create = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...bearer(forTus), 'upload-length': '1' },
    });
    assert.equal(create.status, 403);
    assert.equal(create.code, 'ERR_TOKEN_SCOPE');
    const partsCreate = await jsonAs(`${server.url}/uploads`, forTus, 'POST', { size: 1 });
    assert.equal(partsCreate.code, 'ERR_TOKEN_SCOPE');
    const list = await jsonAs(`${server.url}/uploads`, forTus, 'GET');
    assert.equal(list.status, 403);
    assert.equal(list.code, 'ERR_TOKEN_SCOPE');
    const feed = await send(`${server.url}/uploads/events`, { headers: bearer(forTus) });
    assert.equal(feed.code, 'ERR_TOKEN_SCOPE');
    // The same id under another subject is still someone else's upload.
    const bobForTus = await tokenFor('bob', { uploadId: tusId });
    assert.equal((await head(`${server.endpoint}${tusId}`, bearer(bobForTus))).status, 404);
  });

  it('tus concatenation only takes the partial uploads of the same owner', async () => {
    const partial = await createAs(server.endpoint, alice, 2, { 'upload-concat': 'partial' });
    assert.equal((await patchAs(partial, alice, 0, 'hi')).status, 204);
    const final = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...bearer(bob), 'upload-concat': `final;${partial}` },
    });
    // The answer for a partial that does not exist.
    assert.equal(final.code, 'ERR_CONCAT_PARTIAL_NOT_FOUND', final.body.toString());
    const own = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...bearer(alice), 'upload-concat': `final;${partial}` },
    });
    assert.equal(own.status, 201, own.body.toString());
  });
});
