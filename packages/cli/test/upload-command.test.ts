/**
 * `ferry upload` end to end against a real Ferry: tus and parts, JSON lines with the download URL,
 * exit codes, and Ctrl-C (SIGINT to the real command) followed by the same command continuing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFerry, type Ferry } from '@ferry/server';
import { runCli as ferry } from './run-cli.ts';

const MiB = 1024 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));

describe('ferry upload', () => {
  let server: Ferry;
  let origin: string;
  let dataDir: string;
  let work: string;
  const small = randomBytes(300_000);
  const medium = randomBytes(12 * MiB + 1);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-cli-upload-server-'));
    work = await mkdtemp(join(tmpdir(), 'ferry-cli-upload-'));
    // The client's resume store lives under XDG_STATE_HOME: keep it inside this test's directory.
    process.env['XDG_STATE_HOME'] = join(work, 'state');
    server = await createFerry({ dataDir, logLevel: 'silent' });
    origin = (await server.listen({ host: '127.0.0.1', port: 0 })).url;
    await writeFile(join(work, 'small.bin'), small);
    await writeFile(join(work, 'medium.bin'), medium);
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  async function downloaded(url: string): Promise<string> {
    const reply = await fetch(url);
    assert.equal(reply.status, 200);
    return sha256(new Uint8Array(await reply.arrayBuffer()));
  }

  for (const protocol of ['tus', 'parts'] as const) {
    it(`uploads several files with ${protocol} and prints each download URL as JSON`, async () => {
      const endpoint = protocol === 'tus' ? `${origin}/files/` : `${origin}/uploads`;
      const { code, stdout, stderr } = await ferry(
        work,
        'upload',
        'small.bin',
        'medium.bin',
        '--endpoint',
        endpoint,
        '--protocol',
        protocol,
        '--json',
      );
      assert.equal(code, 0, stderr);
      const done = jsonLines(stdout).filter((line) => line.type === 'done');
      assert.equal(done.length, 2);
      assert.equal(done[0].sha256, sha256(small));
      assert.equal(done[1].sha256, sha256(medium));
      assert.equal(await downloaded(done[0].url), sha256(small));
      assert.equal(await downloaded(done[1].url), sha256(medium));
      const progress = jsonLines(stdout).filter((line) => line.type === 'progress');
      assert.ok(
        progress.some((line) => line.totalBytes === medium.length && line.bytesUploaded === medium.length),
      );
    });
  }

  it('prints plain lines without --json', async () => {
    const { code, stdout } = await ferry(work, 'upload', 'small.bin', '--endpoint', `${origin}/files/`);
    assert.equal(code, 0);
    assert.match(stdout, /small\.bin: uploaded 300000 bytes → http:\/\/127\.0\.0\.1:\d+\/files\/\S+/);
  });

  it('exits 2 on a bad command line, before sending anything', async () => {
    const endpoint = `${origin}/files/`;
    assert.equal((await ferry(work, 'upload', '--endpoint', endpoint)).code, 2, 'no file');
    assert.equal((await ferry(work, 'upload', 'small.bin')).code, 2, 'no endpoint');
    assert.equal((await ferry(work, 'upload', 'nope.bin', '--endpoint', endpoint)).code, 2, 'missing file');
    assert.equal(
      (await ferry(work, 'upload', 'small.bin', '--endpoint', endpoint, '--protocol', 'ftp')).code,
      2,
    );
    assert.equal(
      (await ferry(work, 'upload', 'small.bin', '--endpoint', endpoint, '--limit-rate', '0')).code,
      2,
    );
  });

  it('exits 1 with the reason when the server refuses', async () => {
    const { code, stderr } = await ferry(
      work,
      'upload',
      'small.bin',
      '--endpoint',
      `${origin}/nothing-here/`,
    );
    assert.equal(code, 1);
    assert.match(stderr, /small\.bin: upload failed: .*404/);
  });

  it('stops on Ctrl-C, and the same command continues without starting over', async () => {
    const big = randomBytes(24 * MiB);
    await writeFile(join(work, 'big.bin'), big);
    const bin = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));
    const args = ['upload', 'big.bin', '--endpoint', `${origin}/uploads`, '--protocol', 'parts', '--json'];
    const child = spawn(process.execPath, [bin, ...args, '--limit-rate', '4MB'], {
      cwd: work,
      env: { ...process.env, XDG_STATE_HOME: join(work, 'state') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    let buffer = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        if (jsonLines(buffer).some((line) => line.type === 'progress' && line.bytesUploaded >= 5 * MiB))
          resolve();
      });
      exited.then(() => reject(new Error(`the upload ended before it was interrupted: ${stderr}`)));
    });
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /run the same command again/);

    const before = ((await (await fetch(`${origin}/metrics`)).text()).match(
      /^ferry_received_bytes_total (\d+)/m,
    ) ?? [])[1];
    const { code, stdout, stderr: errors } = await ferry(work, ...args);
    assert.equal(code, 0, errors);
    const done = jsonLines(stdout).find((line) => line.type === 'done');
    assert.equal(done.sha256, sha256(big));
    assert.equal(await downloaded(done.url), sha256(big));
    const afterBytes = ((await (await fetch(`${origin}/metrics`)).text()).match(
      /^ferry_received_bytes_total (\d+)/m,
    ) ?? [])[1];
    if (before !== undefined && afterBytes !== undefined) {
      assert.ok(
        Number(afterBytes) - Number(before) < big.length,
        'the second run sent less than the whole file',
      );
    }
  });
});
