/**
 * The limits a token carries, over real HTTP: `maxSize` (413 ERR_TOKEN_MAX_SIZE at creation, for a
 * deferred length when it is declared or the bytes sent pass it, for a concatenation) and `types`
 * (403 ERR_TYPE_NOT_ALLOWED for a type no pattern matches, or none declared).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { typeAllowed } from '../src/auth/grant.ts';
import { bearer, createAs, jsonAs, patchAs, SECRET, tokenFor } from './auth-helpers.ts';
import { metadataHeader, send, startServer, type TestServer, TUS } from './tus-helpers.ts';

describe('token limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ authSecret: SECRET });
  });
  after(() => server?.stop());

  function tusCreate(token: string, headers: Record<string, string>, body?: string) {
    return send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...bearer(token), ...headers },
      ...(body === undefined ? {} : { body }),
    });
  }

  it('maxSize: a declared size above it is 413 ERR_TOKEN_MAX_SIZE (tus and parts); at it, accepted', async () => {
    const token = await tokenFor('alice', { maxSize: 10 });
    const above = await tusCreate(token, { 'upload-length': '11' });
    assert.equal(above.status, 413);
    assert.equal(above.code, 'ERR_TOKEN_MAX_SIZE');
    assert.deepEqual((above.json as { error: { details: unknown } }).error.details, { maxSize: 10 });
    assert.equal((await tusCreate(token, { 'upload-length': '10' })).status, 201);
    const parts = await jsonAs(`${server.url}/uploads`, token, 'POST', { size: 11 });
    assert.equal(parts.status, 413);
    assert.equal(parts.code, 'ERR_TOKEN_MAX_SIZE');
    assert.equal((await jsonAs(`${server.url}/uploads`, token, 'POST', { size: 10 })).status, 201);
    // The server's own limit still applies to tokens without one.
    const unlimited = await tokenFor('alice');
    assert.equal((await tusCreate(unlimited, { 'upload-length': '11' })).status, 201);
  });

  it('maxSize with a deferred length: the final length and the bytes sent are bounded', async () => {
    const token = await tokenFor('alice', { maxSize: 10 });
    const deferred = await tusCreate(token, { 'upload-defer-length': '1' });
    assert.equal(deferred.status, 201);
    const location = new URL(String(deferred.headers.location), server.endpoint).href;
    assert.equal((await patchAs(location, token, 0, '123456')).status, 204);
    // 6 stored + 5 more would pass 10 bytes.
    const tooMuch = await patchAs(location, token, 6, '78901');
    assert.equal(tooMuch.status, 413);
    assert.equal(tooMuch.code, 'ERR_TOKEN_MAX_SIZE');
    const declared = await send(location, {
      method: 'PATCH',
      headers: {
        ...TUS,
        ...bearer(token),
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '6',
        'upload-length': '11',
      },
      body: '7',
    });
    assert.equal(declared.status, 413);
    assert.equal(declared.code, 'ERR_TOKEN_MAX_SIZE');
    // Declaring a length within the limit finishes the upload.
    const fine = await send(location, {
      method: 'PATCH',
      headers: {
        ...TUS,
        ...bearer(token),
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '6',
        'upload-length': '10',
      },
      body: '7890',
    });
    assert.equal(fine.status, 204, fine.body.toString());
    assert.equal((await send(location, { headers: bearer(token) })).body.toString(), '1234567890');
  });

  it('maxSize with a deferred length: a creation body past it is refused before anything is stored', async () => {
    const token = await tokenFor('alice', { maxSize: 4 });
    const reply = await tusCreate(
      token,
      { 'upload-defer-length': '1', 'content-type': 'application/offset+octet-stream' },
      '12345',
    );
    assert.equal(reply.status, 413);
    assert.equal(reply.code, 'ERR_TOKEN_MAX_SIZE');
    const list = await jsonAs(`${server.url}/uploads`, token, 'GET');
    const ids = (list.json as { uploads: { size: number | null }[] }).uploads.filter(
      (entry) => entry.size === null,
    );
    assert.deepEqual(ids, []);
  });

  it('maxSize bounds a concatenation of partial uploads', async () => {
    const token = await tokenFor('alice', { maxSize: 6 });
    const first = await createAs(server.endpoint, token, 4, { 'upload-concat': 'partial' });
    const second = await createAs(server.endpoint, token, 4, { 'upload-concat': 'partial' });
    assert.equal((await patchAs(first, token, 0, 'abcd')).status, 204);
    assert.equal((await patchAs(second, token, 0, 'efgh')).status, 204);
    const final = await tusCreate(token, { 'upload-concat': `final;${first} ${second}` });
    assert.equal(final.status, 413);
    assert.equal(final.code, 'ERR_TOKEN_MAX_SIZE');
    const wider = await tokenFor('alice', { maxSize: 8 });
    assert.equal((await tusCreate(wider, { 'upload-concat': `final;${first} ${second}` })).status, 201);
  });

  it('types: a declared type outside the patterns, or none, is 403 ERR_TYPE_NOT_ALLOWED', async () => {
    const token = await tokenFor('alice', { types: ['image/*', 'application/pdf'] });
    const withType = (type: Record<string, string>) =>
      tusCreate(token, {
        'upload-length': '1',
        'upload-metadata': metadataHeader({ filename: 'a', ...type }),
      });
    assert.equal((await withType({ filetype: 'image/png' })).status, 201);
    assert.equal((await withType({ filetype: 'IMAGE/JPEG; q=1' })).status, 201);
    assert.equal((await withType({ filetype: 'application/pdf' })).status, 201);
    const refused: Array<Record<string, string>> = [
      { filetype: 'text/html' },
      { filetype: 'application/pdfx' },
      {},
      { filetype: 'image/png', type: 'text/html' },
      { type: 'image' },
    ];
    for (const type of refused) {
      const reply = await withType(type);
      assert.equal(reply.status, 403, JSON.stringify(type));
      assert.equal(reply.code, 'ERR_TYPE_NOT_ALLOWED', JSON.stringify(type));
      assert.deepEqual((reply.json as { error: { details: { allowed: unknown } } }).error.details.allowed, [
        'image/*',
        'application/pdf',
      ]);
    }
    const parts = await jsonAs(`${server.url}/uploads`, token, 'POST', { size: 1, type: 'video/mp4' });
    assert.equal(parts.code, 'ERR_TYPE_NOT_ALLOWED');
    const viaMetadata = await jsonAs(`${server.url}/uploads`, token, 'POST', {
      size: 1,
      metadata: { filetype: 'text/plain' },
    });
    assert.equal(viaMetadata.code, 'ERR_TYPE_NOT_ALLOWED');
    assert.equal(
      (await jsonAs(`${server.url}/uploads`, token, 'POST', { size: 1, type: 'image/gif' })).status,
      201,
    );
  });

  it('type patterns: exact, type/*, */*; never a prefix of another type', () => {
    assert.equal(typeAllowed(['image/*'], 'image/svg+xml'), true);
    assert.equal(typeAllowed(['image/*'], 'imagex/png'), false);
    assert.equal(typeAllowed(['*/*'], 'text/plain'), true);
    assert.equal(typeAllowed(['*/*'], 'nonsense'), false);
    assert.equal(typeAllowed(['text/plain'], 'Text/Plain; charset=utf-8'), true);
    assert.equal(typeAllowed(['text/plain'], 'text/plain2'), false);
  });
});
