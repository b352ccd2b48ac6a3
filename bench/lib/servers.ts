// The servers under test, each started as its own child process on a free loopback port, and the
// bookkeeping that lets the harness kill exactly its own children on any exit.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree } from './proc.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const benchDir = path.join(repoRoot, 'bench');
const ferryBin = path.join(repoRoot, 'packages/cli/bin/ferry.js');

export type ServerId = 'ferry' | 'ferry-sha256' | 'tus' | 'node-discard' | 'node-fs';

export const serverIds: readonly ServerId[] = ['ferry', 'ferry-sha256', 'tus', 'node-discard', 'node-fs'];

export interface ServerDef {
  id: ServerId;
  label: string;
  ferry: boolean;
  /** Node arguments that start the server on a free port, storing under `dataDir`. */
  args(dataDir: string): string[];
  /** Where the finished bytes of upload `id` are, or undefined for a server that keeps none. */
  storedFile(dataDir: string, id: string): string | undefined;
  /** Everything the server wrote for upload `id`, removed once it is verified. */
  leftovers(dataDir: string, id: string): string[];
}

/** What `ferry serve --help` told us; Ferry rows are reported unavailable while it fails. */
export interface FerryProbe {
  available: boolean;
  reason: string;
  /** Extra flags the help text shows support for (`--host 127.0.0.1`). */
  extraArgs: string[];
}

export function probeFerry(): FerryProbe {
  const result = spawnSync(process.execPath, [ferryBin, 'serve', '--help'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 20_000,
  });
  const help = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0 || !help.includes('--data-dir')) {
    const said = help.trim().split('\n').slice(0, 3).join(' / ') || `exit ${result.status}`;
    return { available: false, reason: `\`ferry serve --help\` did not work yet (${said})`, extraArgs: [] };
  }
  return { available: true, reason: '', extraArgs: help.includes('--host') ? ['--host', '127.0.0.1'] : [] };
}

export function serverDefs(ferry: FerryProbe): Record<ServerId, ServerDef> {
  const ferryDef = (id: ServerId, label: string, extra: string[]): ServerDef => ({
    id,
    label,
    ferry: true,
    args: (dataDir) => [
      ferryBin,
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      ...ferry.extraArgs,
      ...extra,
    ],
    storedFile: (dataDir, id) => path.join(dataDir, 'files', id),
    leftovers: (dataDir, id) => [path.join(dataDir, 'files', id)],
  });
  const script = (name: string) => path.join(benchDir, 'servers', name);
  return {
    ferry: ferryDef('ferry', 'Ferry', []),
    'ferry-sha256': ferryDef('ferry-sha256', 'Ferry --hash-uploads', ['--hash-uploads']),
    tus: {
      id: 'tus',
      label: '@tus/server + file-store',
      ferry: false,
      args: (dataDir) => [script('tus-server.ts'), '--port', '0', '--dir', dataDir],
      storedFile: (dataDir, id) => path.join(dataDir, id),
      leftovers: (dataDir, id) => [path.join(dataDir, id), path.join(dataDir, `${id}.json`)],
    },
    'node-discard': {
      id: 'node-discard',
      label: 'node:http discard (client ceiling)',
      ferry: false,
      args: () => [script('node-discard.ts'), '--port', '0'],
      storedFile: () => undefined,
      leftovers: () => [],
    },
    'node-fs': {
      id: 'node-fs',
      label: 'node:http → fs.createWriteStream',
      ferry: false,
      args: (dataDir) => [script('node-fs-append.ts'), '--port', '0', '--dir', dataDir],
      storedFile: (dataDir, id) => path.join(dataDir, id),
      leftovers: (dataDir, id) => [path.join(dataDir, id)],
    },
  };
}

export interface RunningServer {
  def: ServerDef;
  dataDir: string;
  /** The tus creation URL, e.g. http://127.0.0.1:PORT/files/ */
  endpoint: string;
  /** The server process and any process it started, measured together. */
  pids: number[];
  /** Why the process is gone, or undefined while it runs. */
  exited(): string | undefined;
  /** The last lines the server printed, for error reports. */
  logTail(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
const descendants = new Set<number>();

/** Kills every child this harness started (and what they started), immediately. */
export function killChildrenNow(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of descendants) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function startServer(def: ServerDef, dataDir: string, timeoutMs = 30_000): Promise<RunningServer> {
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, def.args(dataDir), {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  track(child);
  let tail = '';
  let exitReason: string | undefined;
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stderr!.on('data', keep);
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopChild(child, 1000);
      reject(new Error(`${def.label}: ${why}${tail.trim() ? `\n${tail.trim()}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no "listening on" line within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (error) => fail(String(error)));
    const onEarlyExit = (code: number | null, signal: string | null) => {
      exitReason = `exited (${signal ?? `code ${code}`})`;
      fail(exitReason);
    };
    child.once('exit', onEarlyExit);
    let pending = '';
    const onStdout = (chunk: Buffer) => {
      keep(chunk);
      pending += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(pending);
      if (match === null) return;
      child.stdout!.off('data', onStdout);
      // Keep draining stdout so a server that logs per request never blocks on a full pipe.
      child.stdout!.on('data', keep);
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.once('exit', (code, signal) => {
        exitReason = `exited (${signal ?? `code ${code}`})`;
      });
      const base = new URL(match[1]!);
      if (base.hostname === '0.0.0.0' || base.hostname === '[::]') base.hostname = '127.0.0.1';
      const pids = processTree(child.pid!);
      for (const pid of pids.slice(1)) descendants.add(pid);
      resolve({
        def,
        dataDir,
        endpoint: new URL('/files/', base).href,
        pids,
        exited: () => exitReason,
        logTail: () => tail.trim(),
        stop: () => stopChild(child, 5000),
      });
    };
    child.stdout!.on('data', onStdout);
  });
}
