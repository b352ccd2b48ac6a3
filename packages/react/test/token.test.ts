/**
 * The hooks' stores pass `token` to the SDK against a real Ferry server with an auth secret, and
 * the SDK reads the option passed most recently: an upload that failed on an expired token
 * continues on Retry once the app hands a new one. Refusals read in plain words.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mintUploadToken } from '@ferry/server';
import { describeFailure } from '../src/failure.ts';
import { createUploadStore } from '../src/upload-store.ts';
import { createUploadsStore, type UploadsStore } from '../src/uploads-store.ts';
import { startFerry, type TestFerry } from './browser/services.ts';

const SECRET = 'react-token-tests-secret-0123456789abcdef';
const mint = (subject: string, ttlSeconds = 60) => mintUploadToken({ secret: SECRET, subject, ttlSeconds });

async function settled(store: UploadsStore, id: string, want: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const item = store.getSnapshot().items.find((candidate) => candidate.id === id);
    if (item?.state === want) return;
    if (item?.state === 'failed' && want !== 'failed') {
      assert.fail(`${item.name} failed: ${item.error?.message}`);
    }
    await sleep(10);
  }
  assert.fail(`${id} never reached ${want}`);
}

describe('token in the React stores', () => {
  let server: TestFerry;
  before(async () => {
    server = await startFerry({ authSecret: SECRET });
  });
  after(() => server?.stop());

  it('useUploads: an upload refused as expired continues on Retry with the token passed since', async () => {
    const expired = await mint('dana', 1);
    await sleep(2100);
    const options = {
      endpoint: `${server.origin}/uploads`,
      protocol: 'parts' as const,
      restore: false,
      resumeStore: false as const,
      token: expired,
    };
    const store = createUploadsStore(options);
    const file = new File([randomBytes(4000)], 'a.bin', { type: 'application/octet-stream' });
    store.add([file]);
    while (store.getSnapshot().items.length === 0) await sleep(5);
    const id = store.getSnapshot().items[0]?.id as string;
    await settled(store, id, 'failed');
    const failed = store.getSnapshot().items[0];
    assert.equal(failed?.error?.code, 'ERR_UNAUTHORIZED');
    assert.match(failed?.error?.message ?? '', /upload link has expired/);
    assert.equal(failed?.error?.retryable, true);

    store.setOptions({ ...options, token: () => mint('dana') });
    store.retry(id);
    // The store shows the retry on its next render.
    while (store.getSnapshot().items[0]?.state === 'failed') await sleep(5);
    await settled(store, id, 'done');
    const result = store.getSnapshot().items[0]?.result;
    assert.equal(result?.size, 4000);
  });

  it('useUpload: passes the token on; without one the server refusal is a clear failure', async () => {
    const failures: string[] = [];
    const bare = createUploadStore({
      endpoint: server.endpoint,
      resumeStore: false,
      onError: (failure) => failures.push(failure.message),
    });
    bare.start(new File([randomBytes(100)], 'b.bin'));
    for (let i = 0; i < 500 && bare.getSnapshot().state !== 'failed'; i++) await sleep(10);
    assert.equal(bare.getSnapshot().error?.code, 'ERR_UNAUTHORIZED');
    assert.match(failures[0] ?? '', /did not accept this upload link/);

    const withToken = createUploadStore({
      endpoint: server.endpoint,
      resumeStore: false,
      token: await mint('dana'),
    });
    withToken.start(new File([randomBytes(100)], 'c.bin'));
    for (let i = 0; i < 500 && withToken.getSnapshot().state !== 'done'; i++) await sleep(10);
    assert.equal(withToken.getSnapshot().state, 'done', withToken.getSnapshot().error?.message);
  });

  it('a limit of the token is final: no Retry', () => {
    const failure = describeFailure(
      { code: 'ERR_UNAUTHORIZED', status: 413, serverCode: 'ERR_TOKEN_MAX_SIZE' },
      'movie.mkv',
    );
    assert.equal(failure.retryable, false);
    assert.equal(failure.message, 'movie.mkv is larger than this upload link allows.');
  });

  it('a refused file type is its own final failure, not a refused upload link', () => {
    const type = describeFailure(
      { code: 'ERR_TYPE_NOT_ALLOWED', status: 403, serverCode: 'ERR_TYPE_NOT_ALLOWED' },
      'setup.png',
    );
    assert.equal(type.code, 'ERR_TYPE_NOT_ALLOWED');
    assert.equal(type.retryable, false);
    assert.equal(
      type.message,
      'The server does not accept this type of file, so setup.png was not uploaded. Choose another file.',
    );
    assert.doesNotMatch(type.message, /link/);
  });
});
