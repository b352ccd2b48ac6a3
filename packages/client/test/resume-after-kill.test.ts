/**
 * Resume after a crash: the upload runs in a child process that is SIGKILLed mid-upload; a second
 * run with the same resume store continues the same upload from the stored URL. Ferry's byte
 * counter proves what was sent twice: at most one chunk for tus (Ferry keeps every byte of a cut
 * PATCH), at most the parts that were in flight for the parts API.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ferryBytesReceived,
  fileDigest,
  MiB,
  makeTempDir,
  startFerry,
  type TestServer,
  writeRandomFile,
} from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/upload-child.ts', import.meta.url));

interface ChildLine {
  type: string;
  confirmed?: number;
  url?: string;
  code?: string;
  message?: string;
  result?: { url: string; sha256: string; size: number };
}

/** Runs the child; `until` may return true to SIGKILL it. Resolves with every line it printed. */
function runChild(
  options: object,
  until?: (line: ChildLine) => boolean,
): Promise<{ lines: ChildLine[]; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=ferry-source', CHILD, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: ChildLine[] = [];
    let killed = false;
    createInterface({ input: child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as ChildLine;
      lines.push(line);
      if (!killed && until?.(line)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', () => resolve({ lines, killed }));
  });
}

describe('resume after the process was killed (SIGKILL)', () => {
  let server: TestServer;
  let dir: string;

  before(async () => {
    server = await startFerry();
    dir = await makeTempDir();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const protocol of ['tus', 'parts'] as const) {
    it(`${protocol}: the rerun continues from the stored URL without re-sending confirmed bytes`, async (t) => {
      const size = 48 * MiB + 123;
      const chunkSize = protocol === 'tus' ? 4 * MiB : 5 * MiB;
      const parallel = 2;
      const path = join(dir, `${protocol}.bin`);
      await writeRandomFile(path, size);
      const expected = await fileDigest(path);
      const options = {
        endpoint: protocol === 'tus' ? server.endpoint : `${server.origin}/uploads`,
        protocol,
        path,
        storePath: join(dir, `${protocol}-store.json`),
        chunkSize,
        parallel,
      };
      const before = await ferryBytesReceived(server);

      const first = await runChild(
        { ...options, limitRate: 16 * MiB },
        (line) => (line.confirmed ?? 0) >= 16 * MiB,
      );
      assert.ok(first.killed, 'the first run was killed mid-upload');
      const created = first.lines.find((line) => line.type === 'created');
      assert.ok(created?.url);

      const second = await runChild(options);
      const done = second.lines.find((line) => line.type === 'done');
      assert.ok(done?.result, JSON.stringify(second.lines.filter((line) => line.type !== 'progress')));
      assert.deepEqual(
        second.lines.filter((line) => line.type === 'resumed').map((line) => line.url),
        [created.url],
        'the second run resumed the stored upload',
      );
      assert.ok(!second.lines.some((line) => line.type === 'created'), 'no new upload was created');
      const firstProgress = second.lines.find((line) => line.type === 'progress');
      assert.ok(
        (firstProgress?.confirmed ?? 0) >= 16 * MiB,
        'the rerun starts from what the server confirmed',
      );
      assert.equal(done.result.sha256, expected.sha256);
      assert.deepEqual(await server.stored(done.result.url), expected);

      const received = (await ferryBytesReceived(server)) - before;
      // tus: one PATCH at a time, and Ferry keeps what arrived of it; parts: the parts in flight are lost.
      const allowance = protocol === 'tus' ? chunkSize : parallel * chunkSize;
      t.diagnostic(`${protocol}: ${received - size} bytes were sent twice`);
      assert.ok(received >= size, `the server received ${received} bytes`);
      assert.ok(
        received - size <= allowance,
        `the server received ${received - size} bytes twice; at most ${allowance} allowed`,
      );
    });
  }
});
