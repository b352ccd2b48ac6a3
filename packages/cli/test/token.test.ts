/**
 * `ferry token`: prints only the token, signed with the secret from --auth-secret, FERRY_AUTH_SECRET
 * or the config file, with the claims the flags give; refuses a missing or short secret and bad
 * flags with status 2. A server with the same secret accepts the token; `ferry serve` says at start
 * whether it is open, and warns loudly when it is open on a non-local address.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFerry } from '@ferry/server';
import { run } from '../src/cli.ts';
import { isLoopbackHost } from '../src/serve.ts';

const SECRET = 'a-secret-for-the-token-command-tests-0123';
const BIN = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-cli-token-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

interface Claims {
  sub?: string;
  exp?: number;
  iat?: number;
  maxSize?: number;
  types?: string[];
  uploadId?: string;
}

/** The header and claims of an HS256 JWT whose signature `secret` made (fails otherwise). */
function verified(token: string, secret: string): { header: unknown; payload: Claims } {
  const [header = '', payload = '', signature = ''] = token.split('.');
  const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  assert.equal(signature, expected, 'signed with this secret by HMAC-SHA256');
  const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  return { header: decode(header), payload: decode(payload) as Claims };
}

async function ferryToken(args: string[], env: Record<string, string> = {}, cwd = root) {
  let stdout = '';
  let stderr = '';
  const code = await run(['token', ...args], {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    cwd,
    exit: (status) => assert.fail(`exit(${status}) called`),
  });
  return { code, stdout, stderr };
}

describe('ferry token', () => {
  it('prints only the token: HS256, with sub, exp, maxSize, types and uploadId from the flags', async () => {
    const before = Math.floor(Date.now() / 1000);
    const result = await ferryToken(
      [
        '--sub',
        'alice',
        '--ttl',
        '15m',
        '--max-size',
        '10MiB',
        '--types',
        'image/*,application/pdf',
        '--types',
        'Text/Plain',
        '--upload-id',
        'AAAAAAAAAAAAAAAAAAAAAA',
      ],
      { FERRY_AUTH_SECRET: SECRET },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = result.stdout.trim();
    const { header, payload } = verified(token, SECRET);
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
    assert.equal(payload.sub, 'alice');
    assert.ok(payload.exp! >= before + 900 && payload.exp! <= before + 902, `exp ${payload.exp}`);
    assert.equal(payload.maxSize, 10 * 1024 * 1024);
    assert.deepEqual(payload.types, ['image/*', 'application/pdf', 'text/plain']);
    assert.equal(payload.uploadId, 'AAAAAAAAAAAAAAAAAAAAAA');
  });

  it('takes the secret from --auth-secret first, then FERRY_AUTH_SECRET, then the config file', async () => {
    const other = `${SECRET}-other`;
    const flag = await ferryToken(['--sub', 'a', '--auth-secret', other], { FERRY_AUTH_SECRET: SECRET });
    verified(flag.stdout.trim(), other);
    const dir = mkdtempSync(join(root, 'config-'));
    writeFileSync(join(dir, 'ferry.config.json'), JSON.stringify({ authSecret: other, port: 0 }));
    const fromFile = await ferryToken(['--sub', 'a'], {}, dir);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    verified(fromFile.stdout.trim(), other);
    const envWins = await ferryToken(['--sub', 'a'], { FERRY_AUTH_SECRET: SECRET }, dir);
    // The default lifetime is an hour.
    const { exp, iat } = verified(envWins.stdout.trim(), SECRET).payload;
    assert.equal(exp! - iat!, 3600);
  });

  it('exits 2 with a clear message and prints nothing on stdout when it cannot mint', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--sub', 'alice'], {}, /no auth secret: set FERRY_AUTH_SECRET/],
      [['--sub', 'alice'], { FERRY_AUTH_SECRET: 'short' }, /at least 32 bytes/],
      [[], { FERRY_AUTH_SECRET: SECRET }, /--sub <owner> is required/],
      [['--sub', 'a', '--ttl', '0'], { FERRY_AUTH_SECRET: SECRET }, /--ttl must be from 1 second/],
      [['--sub', 'a', '--ttl', '30d'], { FERRY_AUTH_SECRET: SECRET }, /--ttl must be from 1 second/],
      [
        ['--sub', 'a', '--max-size', 'lots'],
        { FERRY_AUTH_SECRET: SECRET },
        /--max-size: "lots" is not a size/,
      ],
      [['--sub', 'a', '--types', 'images'], { FERRY_AUTH_SECRET: SECRET }, /types must be/],
      [['--sub', 'a', '--upload-id', '../x'], { FERRY_AUTH_SECRET: SECRET }, /not an upload id/],
      [['--sub', 'a', '--bogus'], { FERRY_AUTH_SECRET: SECRET }, /bogus/],
    ];
    for (const [args, env, message] of cases) {
      const result = await ferryToken(args, env);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '', args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
    }
  });

  it('mints a token the server with the same secret accepts, and no other server does', async () => {
    const dataDir = mkdtempSync(join(root, 'data-'));
    const ferry = await createFerry({ dataDir, authSecret: SECRET, logLevel: 'silent' });
    const otherDir = mkdtempSync(join(root, 'data-'));
    const other = await createFerry({ dataDir: otherDir, authSecret: `${SECRET}-2`, logLevel: 'silent' });
    try {
      const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
      const { url: otherUrl } = await other.listen({ host: '127.0.0.1', port: 0 });
      const minted = await ferryToken(['--sub', 'alice', '--max-size', '5'], { FERRY_AUTH_SECRET: SECRET });
      const headers = {
        authorization: `Bearer ${minted.stdout.trim()}`,
        'tus-resumable': '1.0.0',
      };
      const ok = await fetch(`${url}/files/`, {
        method: 'POST',
        headers: { ...headers, 'upload-length': '5' },
      });
      assert.equal(ok.status, 201);
      const tooBig = await fetch(`${url}/files/`, {
        method: 'POST',
        headers: { ...headers, 'upload-length': '6' },
      });
      assert.equal(tooBig.status, 413);
      const elsewhere = await fetch(`${otherUrl}/files/`, {
        method: 'POST',
        headers: { ...headers, 'upload-length': '5' },
      });
      assert.equal(elsewhere.status, 401);
    } finally {
      await ferry.close();
      await other.close();
    }
  });

  it('ferry serve refuses a short secret with status 2 before opening anything', async () => {
    const dataDir = join(root, 'never-created');
    let stderr = '';
    const code = await run(['serve', '--port', '0', '--data-dir', dataDir, '--no-web'], {
      stdout: { write: () => {} },
      stderr: { write: (text: string) => (stderr += text) },
      env: { FERRY_AUTH_SECRET: 'too-short' },
      cwd: root,
      exit: () => assert.fail('exit called'),
    });
    assert.equal(code, 2);
    assert.match(stderr, /"authSecret" must be at least 32 bytes/);
    assert.equal(existsSync(dataDir), false);
  });

  it('is listed in ferry --help and has its own help', async () => {
    let out = '';
    const io = {
      stdout: { write: (text: string) => (out += text) },
      stderr: { write: () => {} },
      env: {},
      cwd: root,
      exit: () => assert.fail('exit called'),
    };
    assert.equal(await run(['--help'], io), 0);
    assert.match(out, /token\s+mint an upload token/);
    out = '';
    assert.equal(await run(['token', '--help'], io), 0);
    assert.match(out, /Usage: ferry token --sub <owner>/);
  });
});

describe('ferry serve: who may use it', () => {
  it('tells loopback addresses from others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['0.0.0.0', '::', '192.0.2.1', 'example.com', '128.0.0.1'])
      assert.equal(isLoopbackHost(host), false, host);
  });

  /** Starts `ferry serve`, waits for the ready line, stops it; returns its JSON log lines. */
  async function serveLogs(args: string[], env: Record<string, string> = {}) {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('FERRY_')),
    );
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--data-dir', mkdtempSync(join(root, 'd-')), '--no-web', ...args],
      {
        env: { ...clean, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    const deadline = Date.now() + 15_000;
    while (!out.includes('\n') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.match(out, /^Ferry listening on http:\/\//, err);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    return err
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: number; msg: string; host?: string });
  }

  it('without a secret: open, on 127.0.0.1, and says so', { timeout: 30_000 }, async () => {
    const logs = await serveLogs([]);
    const notice = logs.find((line) => line.msg.startsWith('auth is off'));
    assert.ok(notice, JSON.stringify(logs));
    assert.equal(notice.host, '127.0.0.1');
    assert.match(notice.msg, /local address only/);
  });

  it('without a secret on a non-local address: a warning', { timeout: 30_000 }, async () => {
    const logs = await serveLogs(['--host', '0.0.0.0']);
    const warning = logs.find((line) => line.msg.startsWith('AUTH IS OFF'));
    assert.ok(warning, JSON.stringify(logs));
    assert.equal(warning.level, 40);
  });

  it('with a secret: tokens required, the secret never logged', { timeout: 30_000 }, async () => {
    const logs = await serveLogs([], { FERRY_AUTH_SECRET: SECRET });
    assert.ok(logs.some((line) => line.msg.startsWith('upload tokens required')));
    assert.ok(!logs.some((line) => line.msg.startsWith('auth is off') || line.msg.startsWith('AUTH IS OFF')));
    assert.ok(!JSON.stringify(logs).includes(SECRET));
  });

  it("with a hook URL: says where webhooks go, without the URL's credentials, query or the secret", {
    timeout: 30_000,
  }, async () => {
    const hookSecret = 'h'.repeat(40);
    const logs = await serveLogs(
      [
        '--hook-url',
        'https://user:pa55word@hooks.example.com/ferry?token=abc123',
        '--hook-events',
        'finished',
      ],
      { FERRY_HOOK_SECRET: hookSecret },
    );
    const line = logs.find((entry) => entry.msg.startsWith('webhooks are signed')) as
      | { hookUrl?: string; hookEvents?: string[] }
      | undefined;
    assert.ok(line, JSON.stringify(logs));
    assert.equal(line.hookUrl, 'https://hooks.example.com/ferry');
    assert.deepEqual(line.hookEvents, ['finished']);
    const text = JSON.stringify(logs);
    for (const secret of ['pa55word', 'abc123', hookSecret]) assert.ok(!text.includes(secret), secret);
  });
});
