/**
 * A server that refuses the file for its content — `403 ERR_TYPE_NOT_ALLOWED` from the server's
 * allow-list or a token's `types` — is reported as the client's own `ERR_TYPE_NOT_ALLOWED`: final,
 * never retried, never mistaken for a refused token (`ERR_UNAUTHORIZED`) or a vanished upload.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { exeBytes, PNG_1X1 } from '@ferry/testing';
import { ClientError } from '../src/core/errors.ts';
import { DEFAULT_RETRY_POLICY, isRetryable, normalizeRetryPolicy } from '../src/core/retry.ts';
import { responseError } from '../src/core/transport.ts';
import { createUpload, type Protocol, type RetryEvent } from '../src/index.ts';
import { startFerry, type TestServer, tempResumeStore } from './helpers.ts';

const answer = (status: number, code?: string, extra: Record<string, unknown> = {}) => ({
  status,
  headers: { 'content-type': 'application/json' },
  body:
    code === undefined ? '' : JSON.stringify({ error: { code, message: `server says ${code}`, ...extra } }),
});

describe('content refusals: the mapping', () => {
  it('403 ERR_TYPE_NOT_ALLOWED is ERR_TYPE_NOT_ALLOWED, with the server code, details and message', () => {
    const details = { sniffed: 'application/x-msdownload', declared: 'image/png', allowed: ['image/*'] };
    for (const operation of ['create', 'PATCH', 'complete']) {
      const error = responseError(answer(403, 'ERR_TYPE_NOT_ALLOWED', { details }), operation);
      assert.equal(error.code, 'ERR_TYPE_NOT_ALLOWED');
      assert.equal(error.status, 403);
      assert.equal(error.serverCode, 'ERR_TYPE_NOT_ALLOWED');
      assert.deepEqual(error.details, details);
      assert.equal(error.retryable, false);
      assert.equal(
        error.message,
        `${operation}: the server does not accept this type of file (server says ERR_TYPE_NOT_ALLOWED)`,
      );
    }
  });

  it('real token refusals stay ERR_UNAUTHORIZED; a bare 403 on a resume is still a vanished upload', () => {
    for (const [status, code] of [
      [401, 'ERR_TOKEN_MISSING'],
      [401, 'ERR_TOKEN_EXPIRED'],
      [403, 'ERR_TOKEN_SCOPE'],
      [413, 'ERR_TOKEN_MAX_SIZE'],
    ] as const) {
      assert.equal(responseError(answer(status, code), 'PATCH').code, 'ERR_UNAUTHORIZED', code);
    }
    assert.equal(responseError(answer(401), 'HEAD').code, 'ERR_UNAUTHORIZED');
    assert.equal(responseError(answer(403), 'HEAD').code, 'ERR_UPLOAD_GONE');
    assert.equal(responseError(answer(403, 'ERR_MODIFY_FINAL'), 'PATCH').code, 'ERR_UPLOAD_GONE');
  });

  it('is never retried, even with 403 among the retried statuses', () => {
    const error = responseError(answer(403, 'ERR_TYPE_NOT_ALLOWED'), 'PATCH');
    assert.equal(isRetryable(DEFAULT_RETRY_POLICY, error), false);
    assert.equal(isRetryable(normalizeRetryPolicy({ statusCodes: [403] }), error), false);
    assert.equal(
      isRetryable(normalizeRetryPolicy({ statusCodes: [403] }), new ClientError('ERR_TYPE_NOT_ALLOWED')),
      false,
    );
  });
});

describe("content refusals against Ferry's allow-list (no token)", () => {
  let server: TestServer;
  const endpoints: Record<Protocol, string> = { tus: '', parts: '' };

  before(async () => {
    server = await startFerry({ allowTypes: ['image/*'] });
    endpoints.tus = server.endpoint;
    endpoints.parts = `${server.origin}/uploads`;
  });
  after(() => server?.stop());

  for (const protocol of ['tus', 'parts'] as const) {
    it(`${protocol}: EXE bytes named .png fail with ERR_TYPE_NOT_ALLOWED at once, and are forgotten; a PNG passes`, async () => {
      const { store: resumeStore, dir } = await tempResumeStore();
      try {
        const upload = createUpload({
          endpoint: endpoints[protocol],
          protocol,
          source: exeBytes(),
          name: 'cat.png',
          type: 'image/png',
          resumeStore,
          fingerprintFirst: true,
          retry: { statusCodes: [403, 500], limit: 3, backoff: { initialMs: 1 } },
        });
        const retries: RetryEvent[] = [];
        const restarts: unknown[] = [];
        upload.on('retry', (event) => retries.push(event));
        upload.on('restart', (event) => restarts.push(event));
        await assert.rejects(upload.start(), (error: unknown) => {
          assert.ok(error instanceof ClientError, String(error));
          assert.equal(error.code, 'ERR_TYPE_NOT_ALLOWED', error.message);
          assert.equal(error.serverCode, 'ERR_TYPE_NOT_ALLOWED');
          assert.equal(error.details?.['sniffed'], 'application/x-msdownload');
          assert.match(error.message, /does not accept this type of file/);
          return true;
        });
        assert.deepEqual(retries, []);
        assert.deepEqual(restarts, []);
        assert.deepEqual(await resumeStore.list(), [], 'the deleted upload is not kept for resuming');

        const png = await createUpload({
          endpoint: endpoints[protocol],
          protocol,
          source: PNG_1X1,
          name: 'cat.png',
          type: 'image/png',
          resumeStore: false,
        }).start();
        assert.ok(png.url);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
