// The web section of the bench: the web app as `ferry serve` ships it (apps/web/dist).
//
// - Size: the JavaScript the app loads at start, gzipped (and the hashing worker, loaded once a
//   file is picked), from the build's index.html.
// - Throughput: one file (1 GiB by default) picked in the app in Chromium and uploaded to a fresh
//   local `ferry serve`, against @ferry/client in Node uploading the same file to another fresh
//   server, in the same run; parts (the app's default) and tus. Every stored file is hashed
//   against the source.
// - Responsiveness: every main-thread task over 50 ms while the page uploads and hashes the file
//   (PerformanceObserver 'longtask').
//
// See docs/benchmarks.md ("Web app").
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { UploadJob, UploadReply } from '../client/upload-client.ts';
import { type CdpPage, chromiumPath, launchChromium } from './cdp.ts';
import { ferryClientBuild } from './client-bench.ts';
import { processTree, startMeter } from './proc.ts';
import { type FerryProbe, type RunningServer, repoRoot, serverDefs, startServer, track } from './servers.ts';
import { median } from './stats.ts';
import { formatBytes, MiB } from './workloads.ts';

export type WebProtocol = 'parts' | 'tus';
export type WebClient = 'chromium' | 'node';

export const webProtocols: readonly WebProtocol[] = ['parts', 'tus'];

/** What the budget counts: 120 kB (10^3 bytes) of gzipped JavaScript at start. */
export const JS_BUDGET_BYTES = 120_000;
/** Chromium's throughput over the Node client's, parts, on loopback. */
export const THROUGHPUT_TARGET = 0.7;
/** No main-thread task longer than this while uploading and hashing, in ms. */
export const LONG_TASK_TARGET_MS = 100;

export interface WebAsset {
  /** Path under dist/, e.g. `assets/index-C4Y5tvqX.js`. */
  file: string;
  bytes: number;
  gzipBytes: number;
  /** `start`: loaded with the page; `worker`: the hashing worker; `other`: anything else. */
  role: 'start' | 'worker' | 'other';
}

export interface WebSizes {
  assets: WebAsset[];
  /** Gzipped bytes of the JavaScript loaded at start. */
  startJsGzip: number;
  /** Gzipped bytes of every JavaScript file of the build. */
  allJsGzip: number;
  cssGzip: number;
  /** Whether any of the build's files mentions Uppy (it must not: Uppy is the interop page's). */
  containsUppy: boolean;
}

export interface LongTasks {
  /** Tasks over 50 ms (the Long Tasks API's threshold). */
  count: number;
  /** Of those, how many took longer than `LONG_TASK_TARGET_MS`. */
  overTarget: number;
  longestMs: number;
  totalMs: number;
}

export interface WebSample {
  /** 1-based. */
  run: number;
  client: WebClient;
  protocol: WebProtocol;
  ok: boolean;
  error?: string;
  seconds: number;
  /** 10^6 bytes per second, from the pick (or the start) until the upload was done. */
  throughput: number;
  /** Chromium only. */
  longTasks?: LongTasks;
  /** Share of the machine's CPU used by other processes during the upload. */
  otherLoad: number;
  verified: boolean;
  failure?: string;
}

export interface WebSectionResult {
  size: number;
  runs: number;
  sizes?: WebSizes;
  samples: WebSample[];
  seconds: number;
  /** Why the uploads were not measured (no Chromium, Ferry not runnable, no build). */
  unavailable?: string;
  /** How the Node client was loaded (its compiled build or its sources). */
  nodeClientBuild?: string;
}

export interface WebBenchOptions {
  size: number;
  runs: number;
  tempDir: string;
  ferry: FerryProbe;
  log(line: string): void;
}

const dist = path.join(repoRoot, 'apps', 'web', 'dist');

/** Builds the app when its build is missing or older than its sources (as `npm start` does). */
function ensureBuilt(): string | undefined {
  const result = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'ensure-web.mjs')], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(repoRoot, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}`,
    },
  });
  if (result.status !== 0 || /did not build/.test(result.stderr))
    return `the web app did not build: ${result.stderr}`;
  if (!existsSync(path.join(dist, 'index.html'))) return 'apps/web has no build (apps/web/dist/index.html)';
  return undefined;
}

export function measureSizes(): WebSizes {
  const html = readFileSync(path.join(dist, 'index.html'), 'utf8');
  const atStart = new Set<string>();
  for (const match of html.matchAll(/<script[^>]*\ssrc="\/([^"]+\.js)"/g)) atStart.add(match[1]!);
  for (const match of html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="\/([^"]+\.js)"/g))
    atStart.add(match[1]!);
  const assets: WebAsset[] = [];
  let containsUppy = false;
  for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.relative(dist, path.join(entry.parentPath, entry.name));
    const bytes = readFileSync(path.join(dist, file));
    if (/uppy/i.test(bytes.toString('latin1'))) containsUppy = true;
    if (!/\.(js|css)$/.test(file)) continue;
    const role = atStart.has(file) ? 'start' : /hash-worker/.test(file) ? 'worker' : 'other';
    assets.push({ file, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length, role });
  }
  assets.sort((a, b) => a.file.localeCompare(b.file));
  const js = assets.filter((asset) => asset.file.endsWith('.js'));
  return {
    assets,
    startJsGzip: js
      .filter((asset) => asset.role === 'start')
      .reduce((sum, asset) => sum + asset.gzipBytes, 0),
    allJsGzip: js.reduce((sum, asset) => sum + asset.gzipBytes, 0),
    cssGzip: assets
      .filter((asset) => asset.file.endsWith('.css'))
      .reduce((sum, asset) => sum + asset.gzipBytes, 0),
    containsUppy,
  };
}

/** Writes `size` pseudo-random bytes to `file` and returns their SHA-256 (hex). */
function writeSource(file: string, size: number): string {
  const block = Buffer.allocUnsafe(16 * MiB);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < size; ) {
      const view = block.subarray(0, Math.min(block.length, size - written));
      randomFillSync(view);
      hash.update(view);
      for (let at = 0; at < view.length; ) at += writeSync(fd, view, at, view.length - at);
      written += view.length;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Why the stored file of upload `id` differs from the source, or undefined when it matches. */
async function checkStored(dataDir: string, id: string, sha256: string): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return `unexpected file id "${id}"`;
  const file = path.join(dataDir, 'files', id);
  if (!existsSync(file)) return `no stored file files/${id}`;
  const stored = await sha256Of(file);
  return stored === sha256 ? undefined : `stored SHA-256 ${stored}, the source has ${sha256}`;
}

/**
 * Installed before the file is picked: long tasks (start and length), and when the pick and the
 * finished link happened. Only tasks that end after the pick count: the page's start and the
 * protocol switch before it are not "while uploading".
 */
const INSTRUMENT = `(() => {
  const seen = { tasks: [], pickedAt: undefined, doneAt: undefined };
  globalThis.benchSeen = seen;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) seen.tasks.push({ start: entry.startTime, ms: entry.duration });
  }).observe({ type: 'longtask', buffered: true });
  document.addEventListener('change', () => { seen.pickedAt ??= performance.now(); }, true);
  new MutationObserver(() => {
    if (seen.doneAt === undefined && document.querySelector('.finished .file a') !== null) seen.doneAt = performance.now();
  }).observe(document.body, { childList: true, subtree: true });
  return true;
})()`;

interface PageSeen {
  tasks: { start: number; ms: number }[];
  pickedAt?: number;
  doneAt?: number;
  href?: string;
  failed?: string;
}

function summarize(tasks: readonly number[]): LongTasks {
  return {
    count: tasks.length,
    overTarget: tasks.filter((ms) => ms > LONG_TASK_TARGET_MS).length,
    longestMs: tasks.reduce((longest, ms) => Math.max(longest, ms), 0),
    totalMs: tasks.reduce((sum, ms) => sum + ms, 0),
  };
}

function failed(client: WebClient, protocol: WebProtocol, error: string): WebSample {
  return {
    run: 0,
    client,
    protocol,
    ok: false,
    error,
    seconds: 0,
    throughput: 0,
    otherLoad: 0,
    verified: false,
  };
}

interface Source {
  file: string;
  size: number;
  sha256: string;
}

async function freshServer(
  options: WebBenchOptions,
  name: string,
): Promise<{ server: RunningServer; dataDir: string }> {
  const dataDir = mkdtempSync(path.join(options.tempDir, `web-${name}-`));
  const server = await startServer(serverDefs(options.ferry).ferry, dataDir);
  return { server, dataDir };
}

async function chromiumRun(
  options: WebBenchOptions,
  protocol: WebProtocol,
  source: Source,
): Promise<WebSample> {
  const { server, dataDir } = await freshServer(options, `chromium-${protocol}`);
  const browser = await launchChromium();
  let page: CdpPage | undefined;
  try {
    const origin = new URL(server.endpoint).origin;
    page = await browser.open(`${origin}/`);
    const opened = page;
    await waitFor(
      () => opened.evaluate<boolean>(`document.querySelector('.ferry-dropzone input[type=file]') !== null`),
      30_000,
    );
    if (protocol === 'tus')
      await page.evaluate(`document.querySelector('input[name=protocol][value=tus]').click(), true`);
    await page.evaluate(INSTRUMENT);
    const meter = startMeter(processTree(browser.pid), server.pids);
    await page.setFiles('.ferry-dropzone input[type=file]', [source.file]);
    const timeoutMs = Math.max(300_000, source.size / 5e3);
    const deadline = Date.now() + timeoutMs;
    let seen: PageSeen;
    for (;;) {
      seen = await page.evaluate<PageSeen>(`({
        ...globalThis.benchSeen,
        href: document.querySelector('.finished .file a')?.getAttribute('href') ?? undefined,
        failed: document.querySelector('.ferry-upload[data-state=failed]')?.textContent ?? undefined,
      })`);
      if (seen.href !== undefined || seen.failed !== undefined) break;
      if (Date.now() > deadline) {
        meter.stop();
        return failed('chromium', protocol, `not done within ${timeoutMs / 1000} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const usage = meter.stop();
    if (seen.failed !== undefined) return failed('chromium', protocol, `the page says: ${seen.failed}`);
    const seconds = ((seen.doneAt ?? 0) - (seen.pickedAt ?? 0)) / 1000;
    const id = seen.href?.split('/').pop() ?? '';
    const mismatch = await checkStored(dataDir, id, source.sha256);
    return {
      run: 0,
      client: 'chromium',
      protocol,
      ok: true,
      seconds,
      throughput: source.size / 1e6 / seconds,
      longTasks: summarize(
        seen.tasks.filter((task) => task.start + task.ms >= (seen.pickedAt ?? 0)).map((task) => task.ms),
      ),
      otherLoad: usage.otherLoad,
      verified: mismatch === undefined,
      ...(mismatch === undefined ? {} : { failure: mismatch }),
    };
  } catch (error) {
    return failed('chromium', protocol, String(error));
  } finally {
    await page?.close();
    await browser.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the app did not render');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Forks bench/client/upload-client.ts for `kind` and resolves once it said it is ready. */
function forkClient(
  kind: UploadJob['kind'],
  env: NodeJS.ProcessEnv,
  execArgv: string[],
): Promise<ChildProcess> {
  const child = fork(path.join(repoRoot, 'bench/client/upload-client.ts'), [kind], {
    cwd: repoRoot,
    execArgv,
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`upload client exited (${signal ?? code}) before it was ready`)),
    );
    child.once('message', () => resolve(child));
  });
}

async function nodeRun(
  options: WebBenchOptions,
  protocol: WebProtocol,
  source: Source,
  client: { env: NodeJS.ProcessEnv; execArgv: string[] },
): Promise<WebSample> {
  const { server, dataDir } = await freshServer(options, `node-${protocol}`);
  const kind: UploadJob['kind'] = protocol === 'parts' ? 'ferry-parts-4' : 'ferry-tus';
  let child: ChildProcess | undefined;
  try {
    child = await forkClient(kind, client.env, client.execArgv);
    const running = child;
    const meter = startMeter([running.pid!], server.pids);
    const job: UploadJob = {
      kind,
      origin: new URL(server.endpoint).origin,
      file: source.file,
      size: source.size,
    };
    const reply = await new Promise<UploadReply>((resolve) => {
      running.once('message', (message: UploadReply) => resolve(message));
      running.once('exit', () => resolve({ ok: false, elapsedMs: 0, error: 'the upload client exited' }));
      running.send(job);
    });
    const usage = meter.stop();
    if (!reply.ok) return failed('node', protocol, reply.error);
    const seconds = reply.elapsedMs / 1000;
    const mismatch = await checkStored(dataDir, reply.id, source.sha256);
    return {
      run: 0,
      client: 'node',
      protocol,
      ok: true,
      seconds,
      throughput: source.size / 1e6 / seconds,
      otherLoad: usage.otherLoad,
      verified: mismatch === undefined,
      ...(mismatch === undefined ? {} : { failure: mismatch }),
    };
  } catch (error) {
    return failed('node', protocol, String(error));
  } finally {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.disconnect();
      await exited;
    }
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function describeSample(sample: WebSample): string {
  if (!sample.ok) return `FAILED: ${sample.error}`;
  const parts = [`${sample.throughput.toFixed(1)} MB/s`, `${sample.seconds.toFixed(1)} s`];
  if (sample.longTasks !== undefined) {
    const tasks = sample.longTasks;
    parts.push(
      `${tasks.count} main-thread tasks over 50 ms (${tasks.overTarget} over ${LONG_TASK_TARGET_MS} ms, longest ${tasks.longestMs.toFixed(0)} ms)`,
    );
  }
  parts.push(`other load ${(100 * sample.otherLoad).toFixed(0)} %`);
  parts.push(sample.verified ? 'verified' : `*** NOT VERIFIED: ${sample.failure} ***`);
  return parts.join(', ');
}

/** Median throughput of a client and protocol's successful runs (0 when none). */
export function medianThroughput(
  samples: readonly WebSample[],
  client: WebClient,
  protocol: WebProtocol,
): number {
  const good = samples.filter((s) => s.ok && s.verified && s.client === client && s.protocol === protocol);
  return good.length === 0 ? 0 : median(good.map((s) => s.throughput));
}

export function webFailed(result: WebSectionResult | undefined): boolean {
  return result?.samples.some((sample) => !sample.ok || !sample.verified) ?? false;
}

export async function runWebSection(options: WebBenchOptions): Promise<WebSectionResult> {
  const started = performance.now();
  const result: WebSectionResult = { size: options.size, runs: options.runs, samples: [], seconds: 0 };
  const notBuilt = ensureBuilt();
  if (notBuilt !== undefined) {
    result.unavailable = notBuilt;
    options.log(`WEB: unavailable — ${notBuilt}`);
    return result;
  }
  result.sizes = measureSizes();
  options.log(
    `WEB: JavaScript at start ${result.sizes.startJsGzip} bytes gzipped (budget ${JS_BUDGET_BYTES}), all JavaScript ${result.sizes.allJsGzip} bytes`,
  );
  const missing = !existsSync(chromiumPath)
    ? `no Chromium at ${chromiumPath} (set FERRY_CHROMIUM)`
    : !options.ferry.available
      ? options.ferry.reason
      : undefined;
  if (missing !== undefined) {
    result.unavailable = missing;
    options.log(`WEB: uploads not measured — ${missing}`);
    return result;
  }
  const file = path.join(options.tempDir, 'web-source.bin');
  options.log(`WEB: writing a ${formatBytes(options.size)} source file of random bytes`);
  const source: Source = { file, size: options.size, sha256: writeSource(file, options.size) };
  const stateDir = mkdtempSync(path.join(options.tempDir, 'web-client-state-'));
  const build = ferryClientBuild();
  result.nodeClientBuild = build.description;
  const client = { env: { ...process.env, XDG_STATE_HOME: stateDir }, execArgv: build.execArgv };
  try {
    for (let run = 0; run < options.runs; run++) {
      for (const protocol of webProtocols) {
        // Alternate who goes first, so neither always meets a warmer page cache.
        const order: WebClient[] = run % 2 === 0 ? ['chromium', 'node'] : ['node', 'chromium'];
        for (const who of order) {
          const sample =
            who === 'chromium'
              ? await chromiumRun(options, protocol, source)
              : await nodeRun(options, protocol, source, client);
          result.samples.push({ ...sample, run: run + 1 });
          options.log(`WEB run ${run + 1}/${options.runs} ${who} ${protocol}: ${describeSample(sample)}`);
        }
      }
    }
  } finally {
    rmSync(file, { force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
