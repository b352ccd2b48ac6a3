/**
 * The client against a Ferry whose app hooks refuse or stumble: a refusal (ERR_HOOK_REJECTED, with
 * the app's status and message) fails the upload at once with that message; a hook that fails
 * (503 ERR_HOOK_FAILED with Retry-After) is retried, and the upload completes once the hook works.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { HookRejection } from '@ferry/server';
import { ClientError, createUpload, type Protocol, type RetryEvent } from '../src/index.ts';
import { MiB, sha256, startFerry, type TestServer } from './helpers.ts';

const PROTOCOLS: Protocol[] = ['tus', 'parts'];

describe('the client and the app hooks', () => {
  let server: TestServer;
  const endpoints: Record<Protocol, string> = { tus: '', parts: '' };
  /** File names whose `beforeFinish` fails this many more times. */
  const flaky = new Map<string, number>();

  before(async () => {
    server = await startFerry({
      hooks: {
        beforeCreate(request) {
          if (request.name?.endsWith('.exe')) {
            throw new HookRejection('executables are not accepted here', { status: 422 });
          }
          return undefined;
        },
        beforeFinish(upload) {
          const left = flaky.get(upload.name ?? '') ?? 0;
          if (left > 0) {
            flaky.set(upload.name ?? '', left - 1);
            throw new Error('the review service is restarting');
          }
        },
      },
    });
    endpoints.tus = server.endpoint;
    endpoints.parts = `${server.origin}/uploads`;
  });
  after(() => server?.stop());

  for (const protocol of PROTOCOLS) {
    it(`${protocol}: a refusal fails the upload at once with the app's status and message`, async () => {
      const retries: RetryEvent[] = [];
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: randomBytes(1000),
        metadata: { filename: 'setup.exe' },
        resumeStore: false,
      });
      upload.on('retry', (event) => retries.push(event));
      const error = await upload.start().then(
        () => assert.fail('the upload should have been refused'),
        (reason: unknown) => reason,
      );
      assert.ok(error instanceof ClientError);
      assert.equal(error.status, 422);
      assert.equal(error.serverCode, 'ERR_HOOK_REJECTED');
      assert.match(error.message, /executables are not accepted here/);
      assert.equal(retries.length, 0, 'a refusal is not retried');
    });

    it(`${protocol}: a failing beforeFinish is retried and the upload completes`, async () => {
      const name = `report-${protocol}.bin`;
      flaky.set(name, 1);
      const bytes = randomBytes(2 * MiB + 3);
      const retries: RetryEvent[] = [];
      const upload = createUpload({
        endpoint: endpoints[protocol],
        protocol,
        source: bytes,
        metadata: { filename: name },
        resumeStore: false,
      });
      upload.on('retry', (event) => retries.push(event));
      const result = await upload.start();
      assert.equal(result.sha256, sha256(bytes));
      assert.deepEqual(await server.stored(result.url), { sha256: sha256(bytes), size: bytes.length });
      assert.equal(flaky.get(name), 0, 'the hook failed once first');
      if (protocol === 'parts') {
        // tus may send the bytes with the creation request, whose answer keeps the upload (201 with
        // the offset stored) and leaves the finish to the next request; `complete` answers the 503.
        const failed = retries.filter(
          (event) => (event.error as ClientError).serverCode === 'ERR_HOOK_FAILED',
        );
        assert.equal(failed.length, 1, `retries: ${retries.map((event) => event.operation).join(', ')}`);
        assert.equal(failed[0]?.delayMs, 5000, "the server's Retry-After is honoured");
      }
    });
  }
});
