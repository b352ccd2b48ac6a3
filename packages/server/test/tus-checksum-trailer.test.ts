/** tus checksum-trailer: the checksum of a PATCH body sent as an HTTP trailer after the body. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createUpload, head, send, startServer, type TestServer, TUS } from './tus-helpers.ts';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** A chunked PATCH whose `Upload-Checksum` comes as a trailer (or not at all). */
function patchWithTrailer(location: string, body: Buffer, trailer: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(location, {
      method: 'PATCH',
      headers: {
        ...TUS,
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
        trailer: 'Upload-Checksum',
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write(body.subarray(0, 3));
    req.write(body.subarray(3));
    if (trailer !== undefined) req.addTrailers({ 'Upload-Checksum': trailer });
    req.end();
  });
}

const digest = (algorithm: string, body: Buffer) => createHash(algorithm).update(body).digest('base64');

describe('checksum-trailer', () => {
  it('is advertised in Tus-Extension', async () => {
    const reply = await send(server.endpoint, { method: 'OPTIONS' });
    assert.match(reply.headers['tus-extension'] as string, /(^|,)checksum-trailer(,|$)/);
  });

  for (const algorithm of ['sha1', 'md5', 'sha256']) {
    it(`accepts a body whose ${algorithm} trailer matches`, async () => {
      const body = Buffer.from('hello trailer');
      const location = await createUpload(server.endpoint, body.length);
      assert.equal(await patchWithTrailer(location, body, `${algorithm} ${digest(algorithm, body)}`), 204);
      assert.equal((await send(location)).body.toString(), 'hello trailer');
    });
  }

  it('discards a body whose trailer does not match (460, offset unchanged)', async () => {
    const body = Buffer.from('hello trailer');
    const location = await createUpload(server.endpoint, body.length);
    const wrong = digest('sha1', Buffer.from('something else'));
    assert.equal(await patchWithTrailer(location, body, `sha1 ${wrong}`), 460);
    assert.equal((await head(location)).headers['upload-offset'], '0');
  });

  it('discards a body whose announced trailer never came (400 ERR_INVALID_CHECKSUM)', async () => {
    const body = Buffer.from('hello trailer');
    const location = await createUpload(server.endpoint, body.length);
    assert.equal(await patchWithTrailer(location, body, undefined), 400);
    assert.equal((await head(location)).headers['upload-offset'], '0');
  });

  it('refuses an unknown algorithm in the trailer and keeps nothing', async () => {
    const body = Buffer.from('hello trailer');
    const location = await createUpload(server.endpoint, body.length);
    assert.equal(await patchWithTrailer(location, body, 'sha512 AAAA'), 400);
    assert.equal((await head(location)).headers['upload-offset'], '0');
  });
});
