// `ferry serve` as a real child process: the ready line, a real tus request over loopback, the exit
// statuses, and the signals.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));
const READY = /^Ferry listening on (http:\/\/127\.0\.0\.1:(\d+))$/;

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-cli-serve-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The environment of the test run without any FERRY_* variable, so only the test's options apply. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FERRY_')));
}

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[], node = process.execPath): Running {
  const child = spawn(node, [BIN, ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits for the ready line; fails with what the process said if it exits or stays silent. */
async function ready(running: Running): Promise<{ url: string; port: number }> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const match = READY.exec(running.stdout().split('\n')[0] ?? '');
    if (match && running.stdout().endsWith('\n')) return { url: match[1]!, port: Number(match[2]) };
    if (running.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  running.child.kill('SIGKILL');
  assert.fail(`no ready line; stdout: ${running.stdout()} stderr: ${running.stderr()}`);
}

/** A Node.js too old to strip types (the machine's own, if it is one), which makes bin/ferry.js re-exec. */
function olderNode(): string | undefined {
  const candidate = '/usr/bin/node';
  const result = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  const [major = 0, minor = 0] = result.stdout.trim().split('.').map(Number);
  return major < 22 || (major === 22 && minor < 18) ? candidate : undefined;
}

function dataDir(): string {
  return mkdtempSync(join(root, 'data-'));
}

describe('ferry serve (child process)', () => {
  it('prints only the ready line, answers tus OPTIONS, logs JSON to stderr and exits 0 on SIGTERM', {
    timeout: 30_000,
  }, async () => {
    const running = start(['serve', '--port', '0', '--data-dir', dataDir()]);
    const { url, port } = await ready(running);
    assert.notEqual(port, 0);

    const response = await fetch(`${url}/files/`, { method: 'OPTIONS' });
    assert.ok(response.status === 204 || response.status === 200, `status ${response.status}`);
    assert.match(response.headers.get('tus-version') ?? '', /1\.0\.0/);

    running.child.kill('SIGTERM');
    const { code, signal } = await running.exited;
    assert.equal(signal, null);
    assert.equal(code, 0, running.stderr());
    assert.equal(running.stdout(), `Ferry listening on ${url}\n`);
    const logs = running.stderr().trim().split('\n');
    assert.ok(logs.length > 0);
    for (const line of logs) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
  });

  it('serves the web app from --web-dir at /, warns once while it is not built, and --no-web turns it off', {
    timeout: 30_000,
  }, async () => {
    const web = mkdtempSync(join(root, 'web-'));
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>app</title>');
    const common = ['serve', '--port', '0', '--log-level', 'warn'];
    const [built, missing, off] = [
      start([...common, '--data-dir', dataDir(), '--web-dir', web]),
      start([...common, '--data-dir', dataDir(), '--web-dir', join(root, 'never-built')]),
      start([...common, '--data-dir', dataDir(), '--web-dir', web, '--no-web']),
    ];
    try {
      const app = await fetch(`${(await ready(built)).url}/`);
      assert.equal(app.status, 200);
      assert.equal(await app.text(), '<!doctype html><title>app</title>');
      assert.match(app.headers.get('content-security-policy') ?? '', /default-src 'self'/);

      const placeholder = await fetch(`${(await ready(missing)).url}/`);
      assert.equal(placeholder.status, 200);
      assert.match(await placeholder.text(), /npm run build -w apps\/web/);

      const api = await fetch(`${(await ready(off)).url}/`);
      assert.equal(api.status, 404);
      assert.equal(((await api.json()) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND');
    } finally {
      for (const running of [built, missing, off]) running.child.kill('SIGTERM');
    }
    for (const running of [built, missing, off]) assert.equal((await running.exited).code, 0);
    assert.equal(built.stderr(), '');
    assert.equal(off.stderr(), '');
    const warnings = missing
      .stderr()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    assert.equal(warnings.length, 1, missing.stderr());
    assert.match(warnings[0]!.msg, /web app is not built/);
  });

  it('exits 0 on SIGINT too', { timeout: 30_000 }, async () => {
    const running = start(['serve', '--port', '0', '--data-dir', dataDir(), '--log-level', 'silent']);
    await ready(running);
    running.child.kill('SIGINT');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    assert.equal(running.stderr(), '');
  });

  it('exits 1 at once on a second signal while a request holds the shutdown open', {
    timeout: 30_000,
  }, async () => {
    const running = start([
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir(),
      '--shutdown-timeout-ms',
      '60s',
      '--log-level',
      'warn',
    ]);
    const { url } = await ready(running);
    // A finished 16 MiB upload, then a download of it that is never read: the response cannot
    // finish, so the graceful close waits for it (up to the 60 s shutdown timeout).
    const size = 16 * 1024 * 1024;
    const created = await fetch(`${url}/files/`, {
      method: 'POST',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-length': String(size),
        'content-type': 'application/offset+octet-stream',
      },
      body: new Uint8Array(size),
    });
    assert.equal(created.status, 201);
    const location = new URL(created.headers.get('location')!, url);
    const stalled = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const get = request(location, { method: 'GET' }, (response) => {
        response.pause();
        resolve(response);
      });
      get.on('error', reject);
      get.end();
    });
    assert.equal(stalled.statusCode, 200);
    stalled.on('error', () => {});

    running.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(running.child.exitCode, null, 'the first signal should wait for the download');
    const second = Date.now();
    running.child.kill('SIGTERM');
    const { code } = await running.exited;
    assert.equal(code, 1);
    assert.ok(Date.now() - second < 5000, 'the second signal should exit at once');
    assert.match(running.stderr(), /SIGTERM again while shutting down; exiting now/);
    stalled.destroy();
  });

  const old = olderNode();
  it('re-runs on the pinned Node from an older one, and passes SIGTERM on to the server', {
    timeout: 30_000,
    skip: old ? false : 'no Node.js older than 22.18 on this machine',
  }, async () => {
    const running = start(['serve', '--port', '0', '--data-dir', dataDir(), '--log-level', 'silent'], old);
    const { url } = await ready(running);
    assert.equal((await fetch(`${url}/files/`, { method: 'OPTIONS' })).status, 204);
    running.child.kill('SIGTERM');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    // The server itself is gone too, not only the wrapper: nothing answers any more.
    await assert.rejects(fetch(`${url}/files/`, { method: 'OPTIONS' }));
  });

  it('exits 1 with a clear message when the port is taken', { timeout: 30_000 }, async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as import('node:net').AddressInfo;
    try {
      const running = start(['serve', '--port', String(port), '--data-dir', dataDir()]);
      const { code } = await running.exited;
      assert.equal(code, 1);
      assert.equal(running.stdout(), '');
      assert.match(
        running.stderr(),
        new RegExp(`ferry: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`),
      );
    } finally {
      blocker.close();
    }
  });

  it('exits 2 on a bad option before starting anything', { timeout: 30_000 }, async () => {
    const running = start(['serve', '--data-dir', dataDir(), '--max-size', 'plenty']);
    const { code } = await running.exited;
    assert.equal(code, 2);
    assert.equal(running.stdout(), '');
    assert.match(running.stderr(), /^ferry: --max-size: "plenty" is not a size/);
  });

  it('exits 2 on an unknown flag with a hint to --help', { timeout: 30_000 }, async () => {
    const running = start(['serve', '--verbose']);
    const { code } = await running.exited;
    assert.equal(code, 2);
    assert.match(running.stderr(), /unknown option --verbose\nRun "ferry serve --help"/);
  });
});
