/**
 * The tus extensions end to end over real loopback: checksum (every advertised algorithm),
 * X-HTTP-Method-Override, creation-defer-length, concatenation (absolute and relative partial
 * URLs) and creation-with-upload. Each flow ends by downloading the file and comparing bytes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  createUpload,
  head,
  idOf,
  OCTETS,
  patch,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

let server: TestServer;

before(async () => {
  server = await startServer();
});
after(() => server.stop());

function checksumOf(algorithm: string, data: Buffer): string {
  if (algorithm === 'crc32') {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(crc32(data) >>> 0);
    return out.toString('base64');
  }
  return createHash(algorithm).update(data).digest('base64');
}

async function download(location: string): Promise<Buffer> {
  const reply = await send(location);
  assert.equal(reply.status, 200, reply.body.toString());
  return reply.body;
}

describe('checksum extension', () => {
  for (const algorithm of ['sha1', 'md5', 'sha256', 'crc32']) {
    it(`accepts a right ${algorithm} checksum and refuses a wrong one with 460`, async () => {
      const first = randomBytes(1000);
      const second = randomBytes(777);
      const location = await createUpload(server.endpoint, first.length + second.length);
      const right = await patch(location, 0, first, {
        'upload-checksum': `${algorithm} ${checksumOf(algorithm, first)}`,
      });
      assert.equal(right.status, 204, right.body.toString());
      assert.equal(right.headers['upload-offset'], String(first.length));

      const wrong = await patch(location, first.length, second, {
        'upload-checksum': `${algorithm} ${checksumOf(algorithm, first)}`,
      });
      assert.equal(wrong.status, 460);
      assert.equal(wrong.code, 'ERR_CHECKSUM_MISMATCH');
      assert.equal((await head(location)).headers['upload-offset'], String(first.length));

      const last = await patch(location, first.length, second, {
        'upload-checksum': `${algorithm} ${checksumOf(algorithm, second)}`,
      });
      assert.equal(last.status, 204, last.body.toString());
      assert.deepEqual(await download(location), Buffer.concat([first, second]));
    });
  }

  it('a checksum over a body that is longer than the upload discards the body', async () => {
    const location = await createUpload(server.endpoint, 4);
    const body = Buffer.from('abcdef');
    const reply = await send(location, {
      method: 'PATCH',
      headers: {
        ...OCTETS,
        'upload-offset': '0',
        'upload-checksum': `sha1 ${checksumOf('sha1', body)}`,
      },
      body,
    });
    assert.equal(reply.status, 413);
    assert.equal((await head(location)).headers['upload-offset'], '0');
  });
});

describe('X-HTTP-Method-Override', () => {
  it('POST overridden to PATCH appends', async () => {
    const location = await createUpload(server.endpoint, 6);
    const reply = await send(location, {
      method: 'POST',
      headers: { ...OCTETS, 'upload-offset': '0', 'x-http-method-override': 'PATCH' },
      body: 'abcdef',
    });
    assert.equal(reply.status, 204, reply.body.toString());
    assert.equal(reply.headers['upload-offset'], '6');
    assert.equal((await download(location)).toString(), 'abcdef');
  });

  it('POST overridden to DELETE terminates with 204', async () => {
    const location = await createUpload(server.endpoint, 6);
    const reply = await send(location, {
      method: 'POST',
      headers: { ...TUS, 'x-http-method-override': 'DELETE' },
    });
    assert.equal(reply.status, 204, reply.body.toString());
    assert.equal((await head(location)).status, 404);
  });

  it('POST overridden to HEAD reports the state', async () => {
    const location = await createUpload(server.endpoint, 6);
    const reply = await send(location, {
      method: 'POST',
      headers: { ...TUS, 'x-http-method-override': 'HEAD' },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['upload-offset'], '0');
    assert.equal(reply.headers['upload-length'], '6');
  });

  it('an override on a non-POST request is ignored', async () => {
    const location = await createUpload(server.endpoint, 6);
    const reply = await send(location, {
      method: 'HEAD',
      headers: { ...TUS, 'x-http-method-override': 'DELETE' },
    });
    assert.equal(reply.status, 200);
    assert.equal((await head(location)).status, 200);
  });
});

describe('creation-defer-length', () => {
  it('takes the length with a later PATCH and finishes when it is reached', async () => {
    const parts = [randomBytes(300), randomBytes(200), randomBytes(100)];
    const total = 600;
    const location = await createUpload(server.endpoint, 'deferred');
    let state = await head(location);
    assert.equal(state.headers['upload-defer-length'], '1');
    assert.equal(state.headers['upload-length'], undefined);

    let offset = 0;
    for (const [index, part] of parts.entries()) {
      const last = index === parts.length - 1;
      const reply = await patch(location, offset, part, last ? { 'upload-length': String(total) } : {});
      assert.equal(reply.status, 204, reply.body.toString());
      offset += part.length;
      assert.equal(reply.headers['upload-offset'], String(offset));
      if (!last) {
        state = await head(location);
        assert.equal(state.headers['upload-defer-length'], '1');
      }
    }
    state = await head(location);
    assert.equal(state.headers['upload-length'], String(total));
    assert.equal(state.headers['upload-defer-length'], undefined);
    assert.deepEqual(await download(location), Buffer.concat(parts));
  });

  it('the length may be declared on a PATCH without bytes, then cannot change', async () => {
    const location = await createUpload(server.endpoint, 'deferred');
    assert.equal((await patch(location, 0, 'abc')).status, 204);
    const declared = await patch(location, 3, '', { 'upload-length': '5' });
    assert.equal(declared.status, 204, declared.body.toString());
    assert.equal((await head(location)).headers['upload-length'], '5');
    const changed = await patch(location, 3, 'de', { 'upload-length': '6' });
    assert.equal(changed.status, 400);
    assert.equal(changed.code, 'ERR_LENGTH_ALREADY_SET');
    assert.equal((await patch(location, 3, 'de', { 'upload-length': '5' })).status, 204);
    assert.equal((await download(location)).toString(), 'abcde');
  });

  it('declaring the length equal to the bytes already received with an empty PATCH finishes the upload', async () => {
    // What tus-js-client sends when a stream of unknown length ends exactly at a chunk boundary.
    const location = await createUpload(server.endpoint, 'deferred');
    assert.equal((await patch(location, 0, 'abc')).status, 204);
    const declared = await patch(location, 3, '', { 'upload-length': '3' });
    assert.equal(declared.status, 204, declared.body.toString());
    assert.equal(declared.headers['upload-offset'], '3');
    assert.equal((await download(location)).toString(), 'abc');
  });

  it('a deferred upload declared empty (Upload-Length 0 on the first PATCH) is finished', async () => {
    const location = await createUpload(server.endpoint, 'deferred');
    const declared = await patch(location, 0, '', { 'upload-length': '0' });
    assert.equal(declared.status, 204, declared.body.toString());
    assert.equal((await download(location)).length, 0);
  });

  it('a declared length below the bytes already received is 400', async () => {
    const location = await createUpload(server.endpoint, 'deferred');
    assert.equal((await patch(location, 0, 'abcdef')).status, 204);
    const reply = await patch(location, 6, 'g', { 'upload-length': '3' });
    assert.equal(reply.status, 400);
    assert.equal(reply.code, 'ERR_INVALID_LENGTH');
    assert.equal((await head(location)).headers['upload-offset'], '6');
  });
});

describe('concatenation', () => {
  const pieces = [randomBytes(5000), randomBytes(1), randomBytes(12345)];

  async function partials(): Promise<string[]> {
    const locations: string[] = [];
    for (const piece of pieces) {
      locations.push(await uploadWhole(server.endpoint, piece, { 'upload-concat': 'partial' }));
    }
    return locations;
  }

  for (const form of ['absolute', 'relative'] as const) {
    it(`a final upload from ${form} partial URLs downloads as their concatenation`, async () => {
      const locations = await partials();
      const urls = form === 'absolute' ? locations : locations.map((url) => new URL(url).pathname);
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-concat': `final;${urls.join(' ')}` },
      });
      assert.equal(reply.status, 201, reply.body.toString());
      const final = new URL(String(reply.headers.location), server.endpoint).href;
      const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
      const state = await head(final);
      assert.equal(state.status, 200);
      assert.equal(state.headers['upload-offset'], String(total));
      assert.equal(state.headers['upload-length'], String(total));
      assert.equal(state.headers['upload-concat'], `final;${locations.join(' ')}`);
      assert.deepEqual(await download(final), Buffer.concat(pieces));
      // The fs layout: a finished concatenation is a directory of links, one per partial.
      const dir = join(server.ferry.config.dataDir, 'files', `${idOf(final)}.parts`);
      assert.equal((await readdir(dir)).length, pieces.length);
      assert.ok((await stat(dir)).isDirectory());
    });
  }

  it('a final upload may repeat a partial', async () => {
    const one = await uploadWhole(server.endpoint, 'ab', { 'upload-concat': 'partial' });
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-concat': `final;${one} ${one}` },
    });
    assert.equal(reply.status, 201, reply.body.toString());
    assert.equal(
      (await download(new URL(String(reply.headers.location), server.endpoint).href)).toString(),
      'abab',
    );
  });

  it('terminating the partials afterwards leaves the final upload whole', async () => {
    const locations = await partials();
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-concat': `final;${locations.join(' ')}` },
    });
    assert.equal(reply.status, 201, reply.body.toString());
    for (const location of locations) {
      assert.equal((await send(location, { method: 'DELETE', headers: { ...TUS } })).status, 204);
    }
    const final = new URL(String(reply.headers.location), server.endpoint).href;
    assert.deepEqual(await download(final), Buffer.concat(pieces));
  });

  const refusals = [
    {
      name: 'an unfinished partial',
      code: 'ERR_CONCAT_PARTIAL_UNFINISHED',
      make: () => createUpload(server.endpoint, 10, { 'upload-concat': 'partial' }),
    },
    {
      name: 'an upload that is not partial',
      code: 'ERR_CONCAT_NOT_PARTIAL',
      make: () => uploadWhole(server.endpoint, 'abc'),
    },
    {
      name: 'an unknown upload',
      code: 'ERR_CONCAT_PARTIAL_NOT_FOUND',
      make: async () => `${server.endpoint}AAAAAAAAAAAAAAAAAAAAAA`,
    },
    {
      name: 'a URL outside the tus endpoint',
      code: 'ERR_CONCAT_PARTIAL_NOT_FOUND',
      make: async () => `${server.url}/elsewhere/AAAAAAAAAAAAAAAAAAAAAA`,
    },
  ];
  for (const refusal of refusals) {
    it(`a final upload naming ${refusal.name} is 400 ${refusal.code}`, async () => {
      const good = await uploadWhole(server.endpoint, 'ok', { 'upload-concat': 'partial' });
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-concat': `final;${good} ${await refusal.make()}` },
      });
      assert.equal(reply.status, 400);
      assert.equal(reply.code, refusal.code);
    });
  }

  it('a final upload must not declare Upload-Length', async () => {
    const good = await uploadWhole(server.endpoint, 'ok', { 'upload-concat': 'partial' });
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '2', 'upload-concat': `final;${good}` },
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.code, 'ERR_INVALID_CONCAT');
  });

  it('a partial upload is not downloadable as a file until finished, a final one at once', async () => {
    const partial = await createUpload(server.endpoint, 4, { 'upload-concat': 'partial' });
    const early = await send(partial);
    assert.equal(early.status, 404);
    assert.equal(early.code, 'ERR_UPLOAD_NOT_FINISHED');
  });
});

describe('creation-with-upload', () => {
  it('the whole file in the POST finishes the upload', async () => {
    const content = randomBytes(64 * 1024);
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': String(content.length) },
      body: content,
    });
    assert.equal(reply.status, 201, reply.body.toString());
    assert.equal(reply.headers['upload-offset'], String(content.length));
    const location = new URL(String(reply.headers.location), server.endpoint).href;
    assert.deepEqual(await download(location), content);
  });

  it('part of the file in the POST, the rest by PATCH', async () => {
    const content = randomBytes(10_000);
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': String(content.length) },
      body: content.subarray(0, 4000),
    });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers['upload-offset'], '4000');
    const location = new URL(String(reply.headers.location), server.endpoint).href;
    assert.equal((await patch(location, 4000, content.subarray(4000))).status, 204);
    assert.deepEqual(await download(location), content);
  });

  it('with a checksum: a right one is kept, a wrong one leaves an empty upload', async () => {
    const body = Buffer.from('checked bytes');
    const right = await send(server.endpoint, {
      method: 'POST',
      headers: {
        ...OCTETS,
        'upload-length': '100',
        'upload-checksum': `sha256 ${checksumOf('sha256', body)}`,
      },
      body,
    });
    assert.equal(right.status, 201);
    assert.equal(right.headers['upload-offset'], String(body.length));

    const wrong = await send(server.endpoint, {
      method: 'POST',
      headers: {
        ...OCTETS,
        'upload-length': '100',
        'upload-checksum': `sha256 ${checksumOf('sha256', Buffer.from('other'))}`,
      },
      body,
    });
    // The upload exists; the client learns where it is and that nothing of the body was kept.
    assert.equal(wrong.status, 201);
    assert.equal(wrong.headers['upload-offset'], '0');
    const location = new URL(String(wrong.headers.location), server.endpoint).href;
    assert.equal((await head(location)).headers['upload-offset'], '0');
  });

  it('a body longer than Upload-Length is refused before anything is created', async () => {
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': '3' },
      body: 'abcdef',
    });
    assert.equal(reply.status, 413);
    assert.equal(reply.code, 'ERR_EXCEEDS_LENGTH');
    assert.equal(reply.headers.location, undefined);
  });

  it('an empty upload (Upload-Length 0) is finished at creation', async () => {
    const location = await createUpload(server.endpoint, 0);
    const state = await head(location);
    assert.equal(state.headers['upload-offset'], '0');
    assert.equal(state.headers['upload-length'], '0');
    assert.equal((await download(location)).length, 0);
  });
});
