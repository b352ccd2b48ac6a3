// The client section of the bench: upload clients side by side against a real `ferry serve`, on
// plain loopback and through the fault proxy emulating a long link (50 ms round trip, 1 MiB in
// flight per connection). Every upload runs in a fresh client process against a fresh server, and
// the stored file is hashed against the source afterwards. See docs/benchmarks.md ("Client").
import { type ChildProcess, fork } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FaultProxyStats, FaultRules } from '@ferry/testing';
import type { ProxyCommand, ProxyReply, ProxyRequest } from '../client/link-proxy.ts';
import type { ClientKind, UploadJob, UploadReply } from '../client/upload-client.ts';
import { cpuSeconds, startMeter } from './proc.ts';
import type { ClientCell, ClientLinkResult, ClientSample, ClientSectionResult, LinkId } from './results.ts';
import { type FerryProbe, type RunningServer, repoRoot, serverDefs, startServer, track } from './servers.ts';
import { formatBytes, GiB, MiB } from './workloads.ts';

export type { ClientKind };

/** The clients, in the order the report lists them. */
export const clientKinds: readonly ClientKind[] = [
  'raw',
  'ferry-tus',
  'ferry-parts-4',
  'ferry-parts-8',
  'tusjs',
  'tusjs-parallel-4',
];

export const clientLabels: Record<ClientKind, string> = {
  raw: 'single stream: node:http, one PATCH (baseline)',
  'ferry-tus': 'Ferry client, tus (one stream)',
  'ferry-parts-4': 'Ferry client, parts, parallel 4',
  'ferry-parts-8': 'Ferry client, parts, parallel 8',
  tusjs: 'tus-js-client, defaults',
  'tusjs-parallel-4': 'tus-js-client, parallelUploads 4',
  'ferry-presigned-4': 'Ferry client, parts presigned direct-to-bucket, parallel 4',
  'lib-storage': '@aws-sdk/lib-storage Upload straight to the bucket',
};

/**
 * The clients each link runs. On the long link one stream is capped by the link at about 20 MB/s
 * whoever sends it (tus-js-client's defaults are one stream), so the bare single stream is left out
 * there: it would add a minute and say nothing new.
 */
export const clientKindsOn: Record<LinkId, readonly ClientKind[]> = {
  loopback: clientKinds,
  'long-link': clientKinds.filter((kind) => kind !== 'raw'),
};

/** The long link: 25 ms each way (50 ms round trip) and a 1 MiB window per connection and direction. */
export const longLinkFaults: FaultRules = { latencyMs: 25, maxInFlightBytes: MiB };

export const linkTitles: Record<LinkId, string> = {
  loopback: 'Plain loopback',
  'long-link':
    'Emulated long link: 50 ms round trip, at most 1 MiB in flight per connection (≈ 20 MB/s per connection)',
};

export interface ClientBenchOptions {
  size: number;
  /** Runs per client on each link. */
  runs: Record<LinkId, number>;
  /** Scratch directory (removed by the caller). */
  tempDir: string;
  ferry: FerryProbe;
  log(line: string): void;
}

/** Node flag that resolves the workspace packages to their TypeScript sources. */
const fromSources = ['--conditions=ferry-source'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * How the client processes load `@ferry/client`: its compiled build, as an application would, when
 * `dist/` is at least as new as every Node source file of the client and of @ferry/protocol; else
 * the TypeScript sources (type stripping adds about 30 MiB to the process and its hashing worker).
 */
export function ferryClientBuild(): { execArgv: string[]; description: string } {
  const stale: string[] = [];
  for (const pkg of ['client', 'protocol']) {
    const root = path.join(repoRoot, 'packages', pkg);
    for (const file of tsFiles(path.join(root, 'src'))) {
      const relative = path.relative(root, file);
      if (relative.startsWith(path.join('src', 'browser'))) continue;
      const built = path.join(root, 'dist', relative.replace(/\.ts$/, '.js'));
      try {
        if (statSync(built).mtimeMs >= statSync(file).mtimeMs) continue;
      } catch {
        // Not built.
      }
      stale.push(`packages/${pkg}/${relative}`);
    }
  }
  if (stale.length === 0) return { execArgv: [], description: 'compiled build (dist/)' };
  return {
    execArgv: fromSources,
    description: `TypeScript sources (dist/ is older than ${stale[0]}${stale.length > 1 ? ` and ${stale.length - 1} more` : ''}; run \`npm run build\` to measure the compiled build)`,
  };
}

/** Forks a bench child and resolves once it said it is ready (every module loaded). */
function forkReady(
  script: string,
  args: string[],
  execArgv: string[],
  env = process.env,
): Promise<ChildProcess> {
  const child = fork(path.join(repoRoot, script), args, {
    cwd: repoRoot,
    execPath: process.execPath,
    execArgv,
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`${script} exited (${signal ?? `code ${code}`}) before it was ready`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', () => {
      child.off('exit', onExit);
      resolve(child);
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
  });
}

interface LinkProxy {
  pid: number;
  /** (Re)starts the proxy in front of `target`; resolves to the proxy's origin. */
  start(target: string): Promise<string>;
  stats(): Promise<FaultProxyStats>;
  close(): Promise<void>;
}

async function startLinkProxy(): Promise<LinkProxy> {
  const child = await forkReady('bench/client/link-proxy.ts', [], fromSources);
  let nextId = 0;
  const ask = (request: ProxyCommand): Promise<ProxyReply & { ok: true }> => {
    const id = ++nextId;
    return new Promise((resolve, reject) => {
      const onMessage = (reply: ProxyReply) => {
        if (reply.id !== id) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (reply.ok) resolve(reply);
        else reject(new Error(`proxy: ${reply.error}`));
      };
      const onExit = () => {
        child.off('message', onMessage);
        reject(new Error('the proxy process exited'));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ ...request, id } satisfies ProxyRequest);
    });
  };
  return {
    pid: child.pid!,
    async start(target) {
      const reply = await ask({ op: 'start', target, faults: longLinkFaults });
      return reply.url!;
    },
    async stats() {
      return (await ask({ op: 'stats' })).stats!;
    },
    close: () => stopChild(child),
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

async function sha256Of(files: string[]): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for (const file of files) {
    for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  }
  return { size, sha256: hash.digest('hex') };
}

/**
 * The finished file of upload `id` in Ferry's data directory: `files/<id>`, or for a tus
 * concatenation (tus-js-client's `parallelUploads`) `files/<id>.parts/`, whose entries in name
 * order are the partial uploads. Returns why it does not match the source, or undefined when it does.
 */
async function checkStored(
  dataDir: string,
  id: string,
  expected: { size: number; sha256: string },
): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return `the client reported an unexpected file id "${id}"`;
  const file = path.join(dataDir, 'files', id);
  let files: string[];
  try {
    if ((await stat(file)).isFile()) files = [file];
    else return `${file} is not a file`;
  } catch {
    const parts = `${file}.parts`;
    try {
      files = (await readdir(parts)).sort().map((name) => path.join(parts, name));
    } catch {
      return `no stored file for ${id} (neither files/${id} nor files/${id}.parts/)`;
    }
  }
  const stored = await sha256Of(files);
  if (stored.size === expected.size && stored.sha256 === expected.sha256) return undefined;
  return `stored ${stored.size} bytes with SHA-256 ${stored.sha256}; the source has ${expected.size} bytes with SHA-256 ${expected.sha256}`;
}

function failedSample(error: string): ClientSample {
  return {
    ok: false,
    error,
    seconds: 0,
    throughput: 0,
    clientCpuSeconds: 0,
    clientStartRssMiB: 0,
    clientPeakRssMiB: 0,
    peakMethod: 'poll',
    serverCpuSeconds: 0,
    proxyCpuSeconds: 0,
    otherLoad: 0,
    retries: 0,
    verified: false,
  };
}

/** Sends one job to a ready client process; kills it when it takes longer than `timeoutMs`. */
function runJob(child: ChildProcess, job: UploadJob, timeoutMs: number): Promise<UploadReply> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      child.kill('SIGKILL');
      resolve({ ok: false, elapsedMs: timeoutMs, error: `no answer within ${timeoutMs / 1000} s` });
    }, timeoutMs);
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      resolve({ ok: false, elapsedMs: 0, error: `client process exited (${signal ?? `code ${code}`})` });
    };
    child.once('exit', onExit);
    child.once('message', (reply: UploadReply) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(reply);
    });
    child.send(job);
  });
}

interface RunContext {
  options: ClientBenchOptions;
  source: { file: string; size: number; sha256: string };
  proxy: LinkProxy | undefined;
  clientEnv: NodeJS.ProcessEnv;
  clientExecArgv: string[];
}

interface PreparedRun {
  kind: ClientKind;
  dataDir: string;
  server: RunningServer;
  client: ChildProcess;
  /** Where the client sends its requests: the server, or the proxy in front of it. */
  origin: string;
}

/** A fresh server in a fresh directory (behind the proxy on the long link) and a ready client process. */
async function prepareRun(
  context: RunContext,
  kind: ClientKind,
  link: LinkId,
): Promise<PreparedRun | ClientSample> {
  const { options, proxy } = context;
  const dataDir = mkdtempSync(path.join(options.tempDir, `${link}-${kind}-`));
  let server: RunningServer;
  try {
    server = await startServer(serverDefs(options.ferry).ferry, dataDir);
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    return failedSample(`server did not start: ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    const target = new URL(server.endpoint).origin;
    const origin = proxy === undefined ? target : await proxy.start(target);
    const client = await forkReady(
      'bench/client/upload-client.ts',
      [kind],
      context.clientExecArgv,
      context.clientEnv,
    );
    return { kind, dataDir, server, client, origin };
  } catch (error) {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    return failedSample(`could not start the client: ${(error as Error).message}`);
  }
}

/**
 * Runs one prepared upload under the meters, then stops its client and server. `finish` checks the
 * stored file and removes the directory; it never rejects, and it may overlap the next run's start-up
 * (the next run is measured only once it is done).
 */
async function measureRun(
  context: RunContext,
  run: PreparedRun,
): Promise<{ sample: ClientSample; finish: Promise<void> }> {
  const { source, proxy } = context;
  const { server, client } = run;
  const removeDir = () => rmSync(run.dataDir, { recursive: true, force: true });
  let sample: ClientSample;
  let storedId: string | undefined;
  try {
    const ownPids = [...server.pids, ...(proxy === undefined ? [] : [proxy.pid])];
    const serverCpu = () => server.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const proxyCpu = () => (proxy === undefined ? 0 : cpuSeconds(proxy.pid));
    const serverStart = serverCpu();
    const proxyStart = proxyCpu();
    const meter = startMeter([client.pid!], ownPids);
    // A single stream over the long link moves about 20 MB/s; allow four times as long, at least 2 minutes.
    const timeoutMs = Math.max(120_000, (4 * source.size) / 20e3);
    const job: UploadJob = { kind: run.kind, origin: run.origin, file: source.file, size: source.size };
    const reply = await runJob(client, job, timeoutMs);
    const usage = meter.stop();
    const serverCpuSeconds = serverCpu() - serverStart;
    const proxyCpuSeconds = proxyCpu() - proxyStart;
    if (!reply.ok) {
      const gone = server.exited();
      sample = failedSample(
        `${reply.error}${gone ? ` (server ${gone}: ${server.logTail().slice(-300)})` : ''}`,
      );
    } else {
      const seconds = reply.elapsedMs / 1000;
      sample = {
        ok: true,
        seconds,
        throughput: source.size / 1e6 / seconds,
        clientCpuSeconds: usage.cpuSeconds,
        clientStartRssMiB: usage.startRssMiB,
        clientPeakRssMiB: usage.peakRssMiB,
        peakMethod: usage.peakMethod,
        serverCpuSeconds,
        proxyCpuSeconds,
        otherLoad: usage.otherLoad,
        retries: reply.retries,
        ...(reply.firstByteMs !== undefined ? { firstByteSeconds: reply.firstByteMs / 1000 } : {}),
        ...(reply.completeMs !== undefined ? { completeSeconds: reply.completeMs / 1000 } : {}),
        verified: false,
      };
      storedId = reply.id;
      if (proxy !== undefined) {
        const stats = await proxy.stats();
        sample.bodyBytesThroughProxy = stats.bodyBytesToServer;
        if (stats.bodyBytesToServer < source.size) {
          sample.failure = `only ${stats.bodyBytesToServer} body bytes went through the proxy, fewer than the file's ${source.size}`;
          storedId = undefined;
        }
      }
    }
  } catch (error) {
    sample = failedSample(String(error));
  } finally {
    await stopChild(client);
    await server.stop();
  }
  const id = storedId;
  const verify = async () => {
    if (id === undefined) return;
    const mismatch = await checkStored(run.dataDir, id, source).catch((error: unknown) => String(error));
    if (mismatch === undefined) sample.verified = true;
    else sample.failure = mismatch;
  };
  return { sample, finish: verify().finally(removeDir) };
}

function describe(sample: ClientSample, size: number): string {
  if (!sample.ok) return `FAILED: ${sample.error}`;
  const parts = [`${sample.throughput.toFixed(1)} MB/s`, `${sample.seconds.toFixed(1)} s`];
  if (sample.firstByteSeconds !== undefined)
    parts.push(`first byte after ${sample.firstByteSeconds.toFixed(2)} s`);
  if (sample.completeSeconds !== undefined) parts.push(`complete ${sample.completeSeconds.toFixed(2)} s`);
  parts.push(
    `client CPU ${(sample.clientCpuSeconds / (size / GiB)).toFixed(2)} s/GiB`,
    `client RSS ${sample.clientStartRssMiB.toFixed(0)} → ${sample.clientPeakRssMiB.toFixed(0)} MiB`,
    `server CPU ${sample.serverCpuSeconds.toFixed(1)} s`,
  );
  if (sample.proxyCpuSeconds > 0) parts.push(`proxy CPU ${sample.proxyCpuSeconds.toFixed(1)} s`);
  parts.push(`other load ${(100 * sample.otherLoad).toFixed(0)} %`);
  if (sample.retries > 0) parts.push(`${sample.retries} retries`);
  parts.push(sample.verified ? 'verified' : `*** NOT VERIFIED: ${sample.failure} ***`);
  return parts.join(', ');
}

export async function runClientSection(options: ClientBenchOptions): Promise<ClientSectionResult> {
  const started = performance.now();
  const result: ClientSectionResult = {
    size: options.size,
    sourceSha256: '',
    runs: options.runs,
    links: [],
    seconds: 0,
  };
  if (!options.ferry.available) {
    result.unavailable = options.ferry.reason;
    options.log(`CLIENT: unavailable — ${options.ferry.reason}`);
    return result;
  }
  const file = path.join(options.tempDir, 'client-source.bin');
  options.log(`CLIENT: writing a ${formatBytes(options.size)} source file of random bytes`);
  const sha256 = writeSource(file, options.size);
  result.sourceSha256 = sha256;
  const stateDir = path.join(options.tempDir, 'client-state');
  mkdirSync(stateDir, { recursive: true });
  // The Ferry client's default resume store is a JSON file under $XDG_STATE_HOME: keep it in scratch.
  const clientEnv = { ...process.env, XDG_STATE_HOME: stateDir };
  const build = ferryClientBuild();
  result.ferryClientBuild = build.description;
  options.log(`CLIENT: @ferry/client runs from its ${build.description}`);
  const rotate = <T>(list: readonly T[], by: number) => list.map((_, i) => list[(i + by) % list.length]!);
  try {
    for (const link of ['loopback', 'long-link'] as const) {
      options.log(`\nCLIENT ${link}: ${linkTitles[link]}`);
      const kinds = clientKindsOn[link];
      const cells: ClientCell[] = kinds.map((kind) => ({
        client: kind,
        label: clientLabels[kind],
        samples: [],
      }));
      result.links.push({ link, title: linkTitles[link], cells } satisfies ClientLinkResult);
      const proxy = link === 'long-link' ? await startLinkProxy() : undefined;
      const context: RunContext = {
        options,
        source: { file, size: options.size, sha256 },
        proxy,
        clientEnv,
        clientExecArgv: build.execArgv,
      };
      try {
        const runs = options.runs[link];
        // The previous run's stored file is checked while the next server and client start.
        let finishing: Promise<void> = Promise.resolve();
        for (let round = 0; round < runs; round++) {
          for (const kind of rotate(kinds, round)) {
            const [prepared] = await Promise.all([prepareRun(context, kind, link), finishing]);
            const { sample, finish } =
              'client' in prepared
                ? await measureRun(context, prepared)
                : { sample: prepared, finish: Promise.resolve() };
            cells.find((cell) => cell.client === kind)!.samples.push(sample);
            const what = `CLIENT ${link} run ${round + 1}/${runs} ${clientLabels[kind]}`;
            finishing = finish.then(() => options.log(`${what}: ${describe(sample, options.size)}`));
          }
        }
        await finishing;
      } finally {
        await proxy?.close();
      }
    }
  } finally {
    rmSync(file, { force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
