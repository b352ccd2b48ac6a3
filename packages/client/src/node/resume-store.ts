/**
 * The Node resume store: one JSON file, `{ "version": 1, "entries": { "<key>": ResumeEntry } }`.
 *
 * - Default location: `$XDG_STATE_HOME/ferry/uploads.json`, else `~/.local/state/ferry/uploads.json`
 *   (Linux and other Unixes); `~/Library/Application Support/ferry/uploads.json` (macOS);
 *   `%LOCALAPPDATA%\ferry\uploads.json` (Windows).
 * - Every change is a read-modify-write under a lock file (`uploads.json.lock`, created exclusively;
 *   a lock older than `staleLockMs` is taken over), written to a temporary file and renamed over the
 *   old one, so two processes never lose each other's entries and a reader never sees half a file.
 * - Entries past their server expiry or older than `maxAgeMs` are pruned on every write.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { sleep } from '../core/retry.ts';
import type { ResumeEntry, ResumeStore } from '../core/seams.ts';

interface StoreFile {
  version: 1;
  entries: Record<string, ResumeEntry>;
}

/** Where the resume store lives by default on this platform (see the file header). */
export function defaultResumeStorePath(
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  if (platform === 'win32')
    return join(env['LOCALAPPDATA'] ?? join(home, 'AppData', 'Local'), 'ferry', 'uploads.json');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'ferry', 'uploads.json');
  const state = env['XDG_STATE_HOME'];
  // The XDG spec: a relative path is invalid and must be ignored.
  return join(state?.startsWith('/') ? state : join(home, '.local', 'state'), 'ferry', 'uploads.json');
}

export interface FileResumeStoreOptions {
  /** The JSON file. Default `defaultResumeStorePath()`. */
  path?: string;
  /** Entries older than this are pruned, in ms. Default 7 days. */
  maxAgeMs?: number;
  /** How long a change waits for another process's lock, in ms. Default 10000. */
  lockTimeoutMs?: number;
  /** A lock file older than this belongs to a process that died; it is taken over, in ms. Default 10000. */
  staleLockMs?: number;
}

export interface FileResumeStore extends ResumeStore {
  readonly path: string;
}

export function createFileResumeStore(options: FileResumeStoreOptions = {}): FileResumeStore {
  const path = options.path ?? defaultResumeStorePath();
  const lockPath = `${path}.lock`;
  const maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  const staleLockMs = options.staleLockMs ?? 10_000;

  function live(entry: ResumeEntry, now: number): boolean {
    const created = Date.parse(entry.createdAt);
    if (Number.isNaN(created) || now - created > maxAgeMs) return false;
    if (entry.expiresAt != null) {
      const expires = Date.parse(entry.expiresAt);
      if (!Number.isNaN(expires) && expires <= now) return false;
    }
    return true;
  }

  async function load(): Promise<Record<string, ResumeEntry>> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as Partial<StoreFile>;
      return parsed.version === 1 && typeof parsed.entries === 'object' && parsed.entries !== null
        ? parsed.entries
        : {};
    } catch {
      // A file that is not ours (or damaged by hand): start over rather than refuse every upload.
      return {};
    }
  }

  async function lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + lockTimeoutMs;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      try {
        const handle = await open(lockPath, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => unlink(lockPath).catch(() => {});
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const info = await stat(lockPath).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs > staleLockMs) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the resume store ${path} stays locked by ${lockPath}`);
      await sleep(wait + Math.floor(Math.random() * wait));
    }
  }

  async function change(apply: (entries: Record<string, ResumeEntry>) => void): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const unlock = await lock();
    try {
      const entries = await load();
      apply(entries);
      const now = Date.now();
      for (const [key, entry] of Object.entries(entries)) if (!live(entry, now)) delete entries[key];
      const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      const file: StoreFile = { version: 1, entries };
      try {
        const handle = await open(temporary, 'w', 0o600);
        try {
          await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temporary, path);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
    } finally {
      await unlock();
    }
  }

  return {
    path,
    async get(key) {
      const entry = (await load())[key];
      return entry !== undefined && live(entry, Date.now()) ? entry : undefined;
    },
    set(key, entry) {
      return change((entries) => {
        entries[key] = entry;
      });
    },
    async remove(key) {
      if ((await load())[key] === undefined) return;
      await change((entries) => {
        delete entries[key];
      });
    },
    async list() {
      const now = Date.now();
      return Object.entries(await load())
        .filter(([, entry]) => live(entry, now))
        .map(([key, entry]) => ({ key, entry }));
    },
  };
}
