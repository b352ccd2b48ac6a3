/**
 * `ferry download` end to end against a real Ferry: JSON progress lines, verification, exit codes,
 * and Ctrl-C (SIGINT to the real command) followed by the same command resuming the file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFerry, type Ferry } from '@ferry/server';
import { runCli as ferry } from './run-cli.ts';

const MiB = 1024 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('ferry download', () => {
  let server: Ferry;
  let origin: string;
  let dataDir: string;
  let work: string;
  const file = randomBytes(20 * MiB + 5);
  let url: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-cli-download-server-'));
    work = await mkdtemp(join(tmpdir(), 'ferry-cli-download-'));
    server = await createFerry({ dataDir, logLevel: 'silent' });
    origin = (await server.listen({ host: '127.0.0.1', port: 0 })).url;
    const created = await fetch(`${origin}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: file.length, name: 'big.bin', sha256: sha256(file) }),
    });
    const upload = (await created.json()) as { url: string; partSize: number; partCount: number };
    for (let n = 1; n <= upload.partCount; n++) {
      const part = new Uint8Array(file.subarray((n - 1) * upload.partSize, n * upload.partSize));
      assert.equal((await fetch(`${upload.url}/parts/${n}`, { method: 'PUT', body: part })).status, 200);
    }
    const done = await fetch(`${upload.url}/complete`, { method: 'POST' });
    url = ((await done.json()) as { file: { url: string } }).file.url;
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('downloads, verifies and reports as JSON lines', async () => {
    const { code, stdout, stderr } = await ferry(
      work,
      'download',
      url,
      '-o',
      'a.bin',
      '--json',
      '--parallel',
      '3',
    );
    assert.equal(code, 0, stderr);
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const last = lines.at(-1);
    assert.equal(last.type, 'done');
    assert.equal(last.sha256, sha256(file));
    assert.equal(last.verifiedBy, 'repr-digest');
    assert.ok(lines.some((line) => line.type === 'progress' && line.totalBytes === file.length));
    assert.equal(sha256(await readFile(join(work, 'a.bin'))), sha256(file));
  });

  it('prints a plain summary without --json', async () => {
    const { code, stdout } = await ferry(work, 'download', url, '--output', 'b.bin');
    assert.equal(code, 0);
    assert.match(stdout, /b\.bin: 20971525 bytes, SHA-256 verified/);
  });

  it('exits 2 on a bad command line and 1 when the server refuses', async () => {
    assert.equal((await ferry(work, 'download', url)).code, 2, 'no --output');
    assert.equal((await ferry(work, 'download', '-o', 'x.bin')).code, 2, 'no URL');
    assert.equal((await ferry(work, 'download', url, '-o', 'x', '--parallel', '0')).code, 2);
    assert.equal((await ferry(work, 'download', url, '-o', 'x', '--chunk-size', 'lots')).code, 2);
    assert.equal((await ferry(work, 'download', url, '-o', 'x', '--bogus')).code, 2);
    const missing = await ferry(work, 'download', `${origin}/files/AAAAAAAAAAAAAAAAAAAAAA`, '-o', 'x.bin');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
  });

  it('stops on Ctrl-C keeping FILE.part, and the same command resumes it', async () => {
    const bin = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        bin,
        'download',
        url,
        '-o',
        'c.bin',
        '--json',
        '--limit-rate',
        '4MB',
        '--chunk-size',
        '1MiB',
        '--parallel',
        '2',
      ],
      { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    let buffer = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const progressed = buffer
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .some((line) => JSON.parse(line).bytesDownloaded > 4 * MiB);
        if (progressed) resolve();
      });
      exited.then(() => reject(new Error(`the download ended before it was interrupted: ${stderr}`)));
    });
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /run the same command again to resume/);
    assert.ok(existsSync(join(work, 'c.bin.part')));
    assert.equal(existsSync(join(work, 'c.bin')), false);

    const { code, stdout } = await ferry(work, 'download', url, '-o', 'c.bin', '--json');
    assert.equal(code, 0);
    const last = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    assert.equal(last.resumed, true);
    assert.equal(sha256(await readFile(join(work, 'c.bin'))), sha256(file));
  });
});
