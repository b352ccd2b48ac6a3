/** The Node resume store: default location per platform, atomic writes, two processes at once, pruning, locks. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ResumeEntry, resumeKey } from '../src/index.ts';
import { createFileResumeStore, defaultResumeStorePath } from '../src/node-api.ts';
import { makeTempDir } from './helpers.ts';

function entry(overrides: Partial<ResumeEntry> = {}): ResumeEntry {
  return {
    protocol: 'tus',
    endpoint: 'http://127.0.0.1:1080/files/',
    uploadUrl: 'http://127.0.0.1:1080/files/abc',
    size: 10,
    name: 'a.bin',
    sha256: 'ab'.repeat(32),
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

describe('defaultResumeStorePath', () => {
  it('Linux: $XDG_STATE_HOME, else ~/.local/state; a relative XDG_STATE_HOME is ignored', () => {
    assert.equal(
      defaultResumeStorePath({ XDG_STATE_HOME: '/x/state' }, 'linux', '/home/u'),
      '/x/state/ferry/uploads.json',
    );
    assert.equal(defaultResumeStorePath({}, 'linux', '/home/u'), '/home/u/.local/state/ferry/uploads.json');
    assert.equal(
      defaultResumeStorePath({ XDG_STATE_HOME: 'relative' }, 'freebsd', '/home/u'),
      '/home/u/.local/state/ferry/uploads.json',
    );
  });

  it('macOS: Application Support; Windows: %LOCALAPPDATA%', () => {
    assert.equal(
      defaultResumeStorePath({}, 'darwin', '/Users/u'),
      '/Users/u/Library/Application Support/ferry/uploads.json',
    );
    assert.match(
      defaultResumeStorePath({ LOCALAPPDATA: 'C:/Users/u/AppData/Local' }, 'win32', 'C:/Users/u'),
      /Local.ferry.uploads\.json$/,
    );
  });
});

describe('createFileResumeStore', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps, lists and removes entries; writes leave no temporary file behind', async () => {
    const path = join(dir, 'nested', 'uploads.json');
    const store = createFileResumeStore({ path });
    const key = resumeKey(entry());
    assert.equal(await store.get(key), undefined);
    await store.set(key, entry());
    assert.deepEqual(await store.get(key), entry({ createdAt: (await store.get(key))?.createdAt as string }));
    assert.equal((await store.list()).length, 1);
    const file = JSON.parse(await readFile(path, 'utf8'));
    assert.equal(file.version, 1);
    assert.ok(file.entries[key]);
    await store.remove(key);
    assert.equal(await store.get(key), undefined);
    assert.deepEqual(await readdir(join(dir, 'nested')), ['uploads.json']);
  });

  it('three processes writing at once lose nothing (lock + merge on write)', async () => {
    const path = join(dir, 'shared.json');
    // All writers start at the same moment, so their read-modify-write cycles overlap.
    const startAt = Date.now() + 1500;
    const script = (who: string) => `
      import { createFileResumeStore } from '@ferry/client/node';
      const store = createFileResumeStore({ path: ${JSON.stringify(path)} });
      await new Promise((resolve) => setTimeout(resolve, ${startAt} - Date.now()));
      for (let i = 0; i < 30; i++) {
        await store.set('${who}-' + i, { protocol: 'tus', endpoint: 'e', uploadUrl: 'u' + i, size: i, name: null,
          sha256: '0', createdAt: new Date().toISOString() });
      }`;
    const run = (who: string) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--conditions=ferry-source', '--input-type=module', '-e', script(who)],
          {
            stdio: ['ignore', 'inherit', 'inherit'],
          },
        );
        child.on('error', reject);
        child.on('close', resolve);
      });
    assert.deepEqual(await Promise.all([run('a'), run('b'), run('c')]), [0, 0, 0]);
    const keys = (await createFileResumeStore({ path }).list()).map((item) => item.key);
    assert.equal(keys.length, 90);
  });

  it('prunes entries past their expiry or older than maxAgeMs', async () => {
    const path = join(dir, 'prune.json');
    const store = createFileResumeStore({ path, maxAgeMs: 60_000 });
    await store.set('expired', entry({ expiresAt: new Date(Date.now() - 1000).toISOString() }));
    await store.set('old', entry({ createdAt: new Date(Date.now() - 120_000).toISOString() }));
    await store.set('fresh', entry());
    assert.equal(await store.get('expired'), undefined);
    assert.deepEqual(Object.keys(JSON.parse(await readFile(path, 'utf8')).entries), ['fresh']);
  });

  it('takes over the lock of a process that died; a damaged file starts over', async () => {
    const path = join(dir, 'locked.json');
    await writeFile(`${path}.lock`, '99999');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    await writeFile(path, '{ this is not json');
    const store = createFileResumeStore({ path, lockTimeoutMs: 2000 });
    await store.set('k', entry());
    assert.ok(await store.get('k'));
  });

  it('a live lock makes a write wait, then fail clearly after lockTimeoutMs', async () => {
    const path = join(dir, 'busy.json');
    await writeFile(`${path}.lock`, String(process.pid));
    const store = createFileResumeStore({ path, lockTimeoutMs: 200 });
    await assert.rejects(store.set('k', entry()), /stays locked/);
    await rm(`${path}.lock`);
  });
});
