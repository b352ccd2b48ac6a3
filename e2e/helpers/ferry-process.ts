/**
 * Runs `ferry serve` as a real child process for end-to-end tests: port 0 (or a given port, to
 * restart on the same one), a fresh temporary data directory, the listening URL parsed from the
 * ready line, and stops by SIGTERM (then SIGKILL) or SIGKILL at once.
 *
 * Cleanup is the group's job: every process and directory a group made is removed by
 * `group.cleanup()` (call it from `after`), also when a test failed half-way. A process that is
 * still alive when the test process exits is killed by an exit hook as a last resort.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../packages/cli/bin/ferry.js', import.meta.url));
const READY = /Ferry listening on (http:\/\/\S+)/;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

const alive = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of alive) child.kill('SIGKILL');
  });
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FerryProcess {
  readonly url: string;
  /** `url` + the tus endpoint path. */
  readonly endpoint: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Everything the process wrote to stderr so far (its logs): shown when a test fails. */
  readonly stderr: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. */
  stop(timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL now (a crash: nothing is flushed or closed). */
  kill(): Promise<ExitStatus>;
}

export interface StartOptions {
  /** Reuse a data directory (a restart); default: a fresh temporary one owned by the group. */
  dataDir?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Extra `ferry serve` flags, e.g. `['--expiry-seconds', '1']`. */
  args?: string[];
  /** Default `warn`. */
  logLevel?: string;
  /** Extra environment variables (the AWS credentials of `--storage s3`). */
  env?: Record<string, string>;
}

export interface FerryGroup {
  start(options?: StartOptions): Promise<FerryProcess>;
  /** A fresh temporary directory removed by `cleanup`. */
  makeDir(prefix?: string): Promise<string>;
  /** Kills every process still running and removes every directory this group made. */
  cleanup(): Promise<void>;
}

export function createFerryGroup(): FerryGroup {
  const processes = new Set<FerryProcess>();
  const dirs = new Set<string>();

  async function makeDir(prefix = 'ferry-e2e-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.add(dir);
    return dir;
  }

  return {
    makeDir,
    async start(options = {}) {
      const dataDir = options.dataDir ?? (await makeDir());
      const started = await startFerryProcess({ ...options, dataDir });
      processes.add(started);
      void started.exited.then(() => processes.delete(started));
      return started;
    },
    async cleanup() {
      await Promise.all([...processes].map((running) => running.kill()));
      await Promise.all([...dirs].map((dir) => rm(dir, { recursive: true, force: true })));
      dirs.clear();
    },
  };
}

async function startFerryProcess(options: StartOptions & { dataDir: string }): Promise<FerryProcess> {
  installExitHook();
  const args = [
    CLI,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port ?? 0),
    '--data-dir',
    options.dataDir,
    '--log-level',
    options.logLevel ?? 'warn',
    ...(options.args ?? []),
  ];
  // The pinned Node that runs the tests runs the server too; a clean environment keeps FERRY_*
  // variables of the developer's shell out of the test.
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FERRY_'))),
    ...options.env,
  };
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  alive.add(child);
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      alive.delete(child);
      resolve({ code, signal });
    });
  });

  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`ferry serve printed no ready line within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.stdout?.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
        const match = READY.exec(stdout);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      void exited.then((status) => {
        clearTimeout(timer);
        reject(new Error(`ferry serve exited before it was ready (${status.code ?? status.signal})`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(error as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  }

  const stopWith = async (signal: NodeJS.Signals, timeoutMs: number): Promise<ExitStatus> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const port = Number(new URL(url).port);
  return {
    url,
    endpoint: `${url}/files/`,
    port,
    dataDir: options.dataDir,
    pid: child.pid ?? -1,
    get stderr() {
      return stderr;
    },
    exited,
    stop: (timeoutMs = STOP_TIMEOUT_MS) => stopWith('SIGTERM', timeoutMs),
    kill: () => stopWith('SIGKILL', STOP_TIMEOUT_MS),
  };
}
